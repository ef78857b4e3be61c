"""Writing a run's outputs atomically: every file goes to a temporary folder next to the output
folder and is moved into place only when complete, so a killed run leaves the previous outputs
readable."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


class OutputError(Exception):
    """The output folder cannot be written; a one-line message for the user."""


def prepare(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    except OSError as e:
        raise OutputError(f"cannot write to output folder {out_dir}: {e.strerror}") from None
    return staging


def write_table(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False, encoding="utf-8")
    else:
        df.to_parquet(path, index=False)


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def publish(staging: Path, out_dir: Path) -> None:
    """Move every staged file into the output folder (each move is atomic), manifest last."""
    names = sorted(p.name for p in staging.iterdir())
    names.sort(key=lambda n: n == "manifest.json")
    for name in names:
        os.replace(staging / name, out_dir / name)
    shutil.rmtree(staging, ignore_errors=True)
