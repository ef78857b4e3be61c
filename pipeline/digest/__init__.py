"""Digest: the season's findings as files people already open.

``digest.html`` (browser, self-contained), ``digest.docx`` (Word), ``tables.xlsx`` (Excel, pandas)
and ``corpus.qdpx`` (REFI-QDA: QualCoder, NVivo, ATLAS.ti, MAXQDA). ``huibian compile`` (in
``compile.py``) makes an anthology volume from a run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .common import ROLE_NAMES, ROLES, records, unit_profiles

__all__ = ["write_digest", "render_html", "ROLE_NAMES", "ROLES", "records", "unit_profiles"]


def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> str:
    from .html import render_html as _render

    return _render(frames, meta)


def _writers() -> list[tuple[str, Callable[[dict[str, pd.DataFrame], dict[str, Any], Path], None]]]:
    from .docx import write_docx
    from .html import write_html
    from .qdpx import write_qdpx
    from .xlsx import write_xlsx

    return [("digest.html", write_html), ("digest.docx", write_docx),
            ("tables.xlsx", lambda f, _m, p: write_xlsx(f, p)), ("corpus.qdpx", write_qdpx)]


def write_digest(frames: dict[str, pd.DataFrame], meta: dict[str, Any], folder: Path) -> list[str]:
    """Write every deliverable into ``folder``; returns the names written.

    One deliverable failing (say a table another stage is still reshaping) must not cost the others
    or the run: it is reported on stderr and left out.
    """
    written = []
    for name, write in _writers():
        try:
            write(frames, meta, folder / name)
            written.append(name)
        except Exception as e:  # noqa: BLE001 - a broken deliverable is reported, the run goes on
            (folder / name).unlink(missing_ok=True)
            print(f"huibian: could not write {name}: {type(e).__name__}: {e}", file=sys.stderr)
    return written
