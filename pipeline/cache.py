"""Content-addressed cache of per-document results.

Key = sha256(the file's bytes) + its source path (ids and provenance come from it) + the
pipeline's fingerprint (the source of every per-document stage, the dictionaries and the tag
model files).  Change any of those and the entry simply is not found, so a stale result can
never leak into a run; change one file of 1,000 and only that file is re-done.

Entries are pickles written atomically (temporary file + ``os.replace``): a run killed with
SIGKILL leaves either a whole entry or none.  An unreadable entry counts as a miss.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent

#: modules of the package that do not change per-document results (orchestration, season-level
#: stages, other verbs); everything else under pipeline/ is part of the fingerprint
_NOT_PER_DOCUMENT = {
    "run.py", "cli.py", "outputs.py", "executor.py", "cache.py", "progress.py", "lock.py",
    "evaluate.py", "__main__.py", "api.py", "analyze", "digest",
}

#: bump when the layout of a cached entry changes
ENTRY_FORMAT = "1"


def _fingerprint_files() -> list[tuple[str, Path]]:
    """(name independent of where the checkout lives, file) for every file results depend on."""
    from .dictionaries import dictionary_dirs

    files: list[tuple[str, Path]] = []
    for p in sorted(PACKAGE.rglob("*")):
        rel = p.relative_to(PACKAGE)
        if not p.is_file() or rel.parts[0] in _NOT_PER_DOCUMENT or "__pycache__" in rel.parts:
            continue
        if p.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"pipeline/{rel.as_posix()}", p))
    for i, d in enumerate(dictionary_dirs()):  # bundled dictionaries plus HUIBIAN_DICTIONARIES
        files += [(f"dict{i}/{f.relative_to(d).as_posix()}", f)
                  for f in sorted(d.rglob("*")) if f.is_file()]
    return files


@cache
def pipeline_fingerprint() -> str:
    """Hash of everything a per-document result depends on besides the input file itself."""
    import importlib.metadata as md

    h = hashlib.sha256(ENTRY_FORMAT.encode())
    for name, f in _fingerprint_files():
        h.update(name.encode("utf-8", "surrogateescape"))
        h.update(hashlib.sha256(f.read_bytes()).digest())
    # libraries whose version can change segmentation or conversion
    for pkg in ("jieba", "opencc", "scikit-learn", "pdfplumber", "pypdfium2", "python-docx",
                "trafilatura", "charset-normalizer"):
        try:
            h.update(f"{pkg}={md.version(pkg)}".encode())
        except md.PackageNotFoundError:
            pass
    for var in ("HUIBIAN_MODEL", "HUIBIAN_DICTIONARIES"):  # settings read by the stages
        h.update(f"{var}={os.environ.get(var, '')}".encode())
    return h.hexdigest()


def file_digest(path: Path) -> str | None:
    """sha256 of a regular file's bytes; None when it cannot be read (such files are not cached)."""
    try:
        if path.is_symlink() or not path.is_file():
            return None  # cheap to redo, and their outcome depends on more than the bytes
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def entry_key(digest: str, source: str, extra: str = "") -> str:
    return hashlib.sha256("\x1f".join((pipeline_fingerprint(), digest, source, extra))
                          .encode("utf-8", "surrogateescape")).hexdigest()


class Cache:
    """A folder of entries ``<fingerprint[:16]>/<key[:2]>/<key>.pkl``."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.folder = root / pipeline_fingerprint()[:16]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.pkl"

    def get(self, key: str | None) -> Any | None:
        if not self.enabled or key is None:
            return None
        try:
            with self._path(key).open("rb") as fh:
                return pickle.load(fh)
        except FileNotFoundError:
            return None
        except Exception:  # a damaged entry is only a miss; it is overwritten below
            return None

    def put(self, key: str | None, value: Any) -> None:
        if not self.enabled or key is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            return  # a full disk costs speed on the next run, not this run's outputs

    def prune_other_versions(self) -> None:
        """Drop entries written by other pipeline versions (they can never be hit again)."""
        if not self.enabled or not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if d.is_dir() and d != self.folder:
                shutil.rmtree(d, ignore_errors=True)
