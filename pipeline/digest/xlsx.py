"""tables.xlsx: every table of the run as an Excel sheet (openpyxl), for analysts.

Header row frozen, autofilter on, column widths from the content (CJK characters count double),
Chinese shown as text. Cells are cleaned of characters XML forbids and cut at Excel's 32,767-char
limit; text starting with '=' stays text (openpyxl would otherwise write it as a formula).
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .common import is_missing

# sheet name → columns CONTRACT.md promises, used for the header when the table is absent
SHEETS: dict[str, list[str]] = {
    "sentences": ["doc_id", "article_id", "unit", "section", "idx", "text", "label", "confidence",
                  "evidence", "theme", "page"],
    "matrix": ["unit", "theme", "label", "n", "share"],
    "problems": ["cluster_id", "cluster_name", "label", "unit", "doc_id", "article_id", "text", "page"],
    "copies": ["doc_id_a", "doc_id_b", "article_id_a", "article_id_b", "text", "share_a", "share_b"],
    "figures": ["unit", "doc_id", "subject", "value", "measure_unit", "is_target", "text", "page"],
    "keywords": ["unit", "word", "score"],
    "documents": ["doc_id", "source", "format", "status", "reason", "n_chars"],
    "articles": ["article_id", "doc_id", "title", "unit", "author", "kind", "page"],
    "toc": ["doc_id", "title", "unit", "author", "page"],
}
EXTRA_SHEETS = ("compare",)  # written when the run has them
CELL_LIMIT = 32_767
MIN_WIDTH, MAX_WIDTH, WIDE_TEXT = 6, 60, 80
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="F0E6E6")
WRAP = Alignment(wrap_text=True, vertical="top")


def display_width(text: str) -> int:
    """Columns a string takes in Excel: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cell_value(v: Any) -> Any:
    """A value openpyxl can write: numbers stay numbers, text is cleaned and cut."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, list | tuple | set | frozenset | np.ndarray):  # token lists and the like
        return cell_value(" ".join("" if is_missing(x) else str(x) for x in v))
    if isinstance(v, np.generic):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, int | float):
        return v
    text = ILLEGAL_CHARACTERS_RE.sub("", str(v))
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def _widths(df: pd.DataFrame, columns: list[str]) -> list[int]:
    out = []
    sample = df.head(500)
    for c in columns:
        w = display_width(str(c))
        if c in sample.columns and len(sample):
            lengths = [display_width("" if v is None or v is pd.NA else str(v))
                       for v in sample[c].astype(object)]
            w = max(w, int(pd.Series(lengths).quantile(0.9)))
        out.append(max(MIN_WIDTH, min(w + 2, MAX_WIDTH)))
    return out


def write_sheet(wb: Workbook, name: str, df: pd.DataFrame | None, columns: list[str]) -> int:
    """One table as one sheet of a write-only workbook; returns the number of data rows."""
    if df is not None:
        columns = [str(c) for c in df.columns]
    ws = wb.create_sheet(title=name[:31])
    widths = _widths(df if df is not None else pd.DataFrame(columns=columns), columns)
    wrapped = set()
    for i, (c, w) in enumerate(zip(columns, widths, strict=True), start=1):
        if c == "text" or w >= MAX_WIDTH:
            w = WIDE_TEXT if c == "text" else w
            wrapped.add(i - 1)
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    last = get_column_letter(max(len(columns), 1))
    n = 0 if df is None else len(df)
    ws.auto_filter.ref = f"A1:{last}{n + 1}"
    if getattr(wb, "write_only", False):
        # a streamed sheet has no <dimension> unless told its size before the first row; readers
        # such as openpyxl's read-only mode (max_row) rely on it, and here the size is known
        ws.calculate_dimension = lambda: f"A1:{last}{n + 1}"
    header = []
    for c in columns:
        cell = WriteOnlyCell(ws, value=cell_value(c))
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        header.append(cell)
    ws.append(header)
    if df is None:
        return 0
    for row in df.astype(object).itertuples(index=False, name=None):
        out: list[Any] = []
        for j, v in enumerate(row):
            value = cell_value(v)
            if j in wrapped or (isinstance(value, str) and value.startswith("=")):
                cell = WriteOnlyCell(ws, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # text, never a formula
                if j in wrapped:
                    cell.alignment = WRAP
                out.append(cell)
            else:
                out.append(value)
        ws.append(out)
    return n


def write_xlsx(frames: dict[str, pd.DataFrame], path: Path) -> dict[str, int]:
    """Every table as a sheet; returns rows written per sheet."""
    wb = Workbook(write_only=True)  # streams rows: ~10k sentences stay fast and small in memory
    counts = {}
    for name, columns in SHEETS.items():
        df = frames.get(name)
        counts[name] = write_sheet(wb, name, df if isinstance(df, pd.DataFrame) else None, columns)
    for name in EXTRA_SHEETS:
        df = frames.get(name)
        if isinstance(df, pd.DataFrame):
            counts[name] = write_sheet(wb, name, df, [])
    wb.save(str(path))
    return counts
