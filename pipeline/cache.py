"""Content-addressed cache of per-document results.

Key = sha256(the file's bytes) + its source path (ids and provenance come from it) + the
pipeline's fingerprint (the source of every per-document stage, the dictionaries and the tag
model files).  Change any of those and the entry simply is not found, so a stale result can
never leak into a run; change one file of 1,000 and only that file is re-done.

Entries live in ``pipeline.season.EntryStore`` (written atomically: a run killed with SIGKILL
leaves either a whole entry or none; an unreadable entry counts as a miss).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import time
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

#: modules of the package that do not change per-document results (orchestration, season-level
#: stages, other verbs); everything else under pipeline/ is part of the fingerprint
_NOT_PER_DOCUMENT = {
    "run.py", "cli.py", "outputs.py", "executor.py", "cache.py", "progress.py", "lock.py",
    "evaluate.py", "__main__.py", "api.py", "season.py", "forked.py", "analyze", "digest",
    "server.py", "resources.py",  # when and where models load, not what they give
    "rowgroups.py",
}

#: bump when the layout of a cached entry changes
ENTRY_FORMAT = "2"
#: bump when the layout of cached per-file parts changes
PARTS_FORMAT = "1"
#: the season-level code whose per-file parts are cached (``parts_fingerprint``)
PARTS_PACKAGES = ("analyze", "digest")


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


@cache
def parts_fingerprint() -> str:
    """Hash of everything a file's parts depend on: its entry's pipeline plus the season-level
    code that builds parts from it (``pipeline/analyze``, ``pipeline/digest``)."""
    h = hashlib.sha256(f"{PARTS_FORMAT}\x1f{pipeline_fingerprint()}".encode())
    for pkg in PARTS_PACKAGES:
        for p in sorted((PACKAGE / pkg).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
                h.update(p.relative_to(PACKAGE).as_posix().encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
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


class DigestIndex:
    """The digests of the last run's input files by their stat signature (size, mtime, ctime,
    inode, device), as git's index and make use: a rerun hashes again only the files touched
    since (re-hashing a season of scanned PDFs would cost seconds per GB). Writing a file
    always moves its ctime, which nobody can set back, so an equal signature means equal bytes;
    a file touched within ``RACY_NS`` of the index being saved is hashed again anyway, because
    its timestamps may not tell two writes in the same tick apart."""

    RACY_NS = 2_000_000_000

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._old: dict[str, tuple[tuple[int, ...], str]] = {}
        self._saved_ns = 0
        self._new: dict[str, tuple[tuple[int, ...], str]] = {}
        self.hashed = 0
        if path is not None:
            try:
                with path.open("rb") as fh:
                    self._saved_ns, self._old = pickle.load(fh)
            except Exception:  # noqa: BLE001 - missing or damaged: every file is hashed
                self._old, self._saved_ns = {}, 0

    def digest(self, path: Path) -> str | None:
        """:func:`file_digest` of ``path``, read from the index when the file is untouched."""
        try:
            st = path.lstat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # symlinks and specials: file_digest refuses them too
        key = os.path.abspath(path)
        sig = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        old = self._old.get(key)
        if (old is not None and old[0] == sig
                and max(st.st_mtime_ns, st.st_ctime_ns) < self._saved_ns - self.RACY_NS):
            digest: str | None = old[1]
        else:
            digest = file_digest(path)
            self.hashed += 1
        if digest is not None:
            self._new[key] = (sig, digest)
        return digest

    def save(self) -> None:
        """Keep this run's files (only: a file gone is forgotten); an unwritable cache is fine."""
        if self.path is None:
            return
        from .season import atomic_write

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, pickle.dumps((time.time_ns(), self._new),
                                                 protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass


def entry_key(digest: str, source: str, extra: str = "") -> str:
    return hashlib.sha256("\x1f".join((pipeline_fingerprint(), digest, source, extra))
                          .encode("utf-8", "surrogateescape")).hexdigest()
