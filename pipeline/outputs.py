"""Writing a run's outputs atomically.

Every file goes to a staging folder inside the output folder (same file system, so renames are
atomic) and is moved into place only when the whole set is complete, ``manifest.json`` last.  A
run killed at any moment therefore leaves the previous outputs readable (each file is either the
old or the new one, never half-written), and the next run clears the leftover staging folder.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

STAGING_PREFIX = ".staging-"
MANIFEST = "manifest.json"


class OutputError(Exception):
    """The output folder cannot be written; a one-line message for the user."""


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2  # glibc ≥ 2.28
    except (OSError, AttributeError):
        return None


def replace(src: Path, dst: Path) -> bool:
    """``os.replace(src, dst)``, except that an existing ``dst`` is *exchanged* with ``src``
    (``renameat2(RENAME_EXCHANGE)``, as atomic for readers of ``dst``): the previous file then
    lies at ``src`` for the caller to delete. Why: replacing a file by rename makes ext4 write
    the new file's data back at once and free the old one inside the rename (auto_da_alloc) —
    ~20 ms for a 50 MB file (measured), in the middle of a run. Returns whether it exchanged."""
    rename2 = _renameat2()
    if rename2 is not None:
        at_fdcwd, exchange = -100, 2
        if rename2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), exchange) == 0:
            return True
        if ctypes.get_errno() not in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EXDEV,
                                      errno.ENOTDIR, errno.EISDIR):
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(dst))
    os.replace(src, dst)
    return False


#: threads deleting old outputs and leftovers (see :func:`discard`)
_DISCARDING: list[threading.Thread] = []


def discard(folders: list[Path]) -> None:
    """Delete folders in a background thread (unlink and rmdir release the GIL): what a run
    replaced need not delay it. Whatever a process leaves undeleted when it exits is a leftover
    the next run's :func:`prepare` deletes."""
    if not folders:
        return
    t = threading.Thread(target=lambda: [shutil.rmtree(f, ignore_errors=True) for f in folders],
                         name="discard", daemon=True)
    t.start()
    _DISCARDING.append(t)


def finish_discarding() -> None:
    """Wait for :func:`discard`'s deletions (a process with time to spare before it exits)."""
    while _DISCARDING:
        _DISCARDING.pop().join()


def prepare(out_dir: Path) -> Path:
    """A fresh staging folder in ``out_dir``; leftovers of killed runs (and the previous outputs
    the last run swapped out) are deleted in the background.

    Call it while holding the run lock (``pipeline.lock``) so no live run's staging is removed.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        discard(sorted(out_dir.glob(f"{STAGING_PREFIX}*")))
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    except OSError as e:
        raise OutputError(f"cannot write to output folder {out_dir}: {e.strerror}") from None
    return staging


def write_table(df: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet; both are byte-identical for identical frames (no timestamps inside).

    Parquet is written as ``DataFrame.to_parquet`` writes it, but from one chunk per column:
    Parquet's pages follow the chunks an Arrow column comes in, and those depend on how the frame
    was made (a rerun patches the last run's table), while the same rows must give the same bytes.
    (Combining releases the GIL: the run writes its tables in a thread.)"""
    if path.suffix == ".csv":
        df.to_csv(path, index=False, encoding="utf-8")
    else:
        write_parquet(df, path)


def write_parquet(df: pd.DataFrame, where: Path | BinaryIO) -> None:
    """``df`` as Parquet the way :func:`write_table` writes it (one chunk per column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).combine_chunks(), where)


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def publish(staging: Path, out_dir: Path) -> list[str]:
    """Move every staged entry into the output folder (each move atomic), manifest last.

    Files the previous run published (listed in its manifest) that this run did not produce are
    removed, so the folder always holds one run's set; the replaced ones end up in the staging
    folder, deleted in the background with it.  Returns the names published.
    """
    names = sorted(p.name for p in staging.iterdir())
    names.sort(key=lambda n: n == MANIFEST)
    try:
        stale = set(_previous_files(out_dir)) - set(names)
        for name in names:
            src, dst = staging / name, out_dir / name
            if src.is_dir() and dst.is_dir():
                if not replace(src, dst):
                    # a folder cannot replace a non-empty folder: swap it in, drop the old one
                    old = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
                    os.replace(dst, old / name)
                    os.replace(src, dst)
            else:
                replace(src, dst)
        for name in sorted(stale):
            p = out_dir / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to output folder {out_dir}: {e.strerror}") from None
    discard(sorted(out_dir.glob(f"{STAGING_PREFIX}*")))
    return names


def _previous_files(out_dir: Path) -> list[str]:
    try:
        files = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    # only plain names inside the folder (never a path that escapes it)
    return [f for f in files if isinstance(f, str) and f and "/" not in f and not f.startswith(".")]
