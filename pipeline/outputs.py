"""Writing a run's outputs atomically.

Every file goes to a staging folder inside the output folder (same file system, so renames are
atomic) and is moved into place only when the whole set is complete, ``manifest.json`` last.  A
run killed at any moment therefore leaves the previous outputs readable (each file is either the
old or the new one, never half-written), and the next run clears the leftover staging folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

STAGING_PREFIX = ".staging-"
MANIFEST = "manifest.json"


class OutputError(Exception):
    """The output folder cannot be written; a one-line message for the user."""


def prepare(out_dir: Path) -> Path:
    """A fresh staging folder in ``out_dir``; leftovers of killed runs are removed first.

    Call it while holding the run lock (``pipeline.lock``) so no live run's staging is removed.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    except OSError as e:
        raise OutputError(f"cannot write to output folder {out_dir}: {e.strerror}") from None
    return staging


def write_table(df: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet; both are byte-identical for identical frames (no timestamps inside)."""
    if path.suffix == ".csv":
        df.to_csv(path, index=False, encoding="utf-8")
    else:
        df.to_parquet(path, index=False)


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def publish(staging: Path, out_dir: Path) -> list[str]:
    """Move every staged entry into the output folder (each move atomic), manifest last.

    Files the previous run published (listed in its manifest) that this run did not produce are
    removed, so the folder always holds one run's set.  Returns the names published.
    """
    names = sorted(p.name for p in staging.iterdir())
    names.sort(key=lambda n: n == MANIFEST)
    try:
        stale = set(_previous_files(out_dir)) - set(names)
        for name in names:
            src, dst = staging / name, out_dir / name
            if src.is_dir() and dst.is_dir():
                # a folder cannot replace a non-empty folder: swap it in, then drop the old one
                old = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
                os.replace(dst, old / name)
                os.replace(src, dst)
            else:
                os.replace(src, dst)
        for name in sorted(stale):
            p = out_dir / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to output folder {out_dir}: {e.strerror}") from None
    for leftover in out_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return names


def _previous_files(out_dir: Path) -> list[str]:
    try:
        files = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    # only plain names inside the folder (never a path that escapes it)
    return [f for f in files if isinstance(f, str) and f and "/" not in f and not f.startswith(".")]
