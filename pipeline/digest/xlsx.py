"""tables.xlsx: every table of the run as an Excel sheet, for analysts.

Header row frozen, autofilter on, column widths from the content (CJK characters count double),
Chinese shown as text. Cells are cleaned of characters XML forbids and cut at Excel's 32,767-char
limit; text starting with '=' stays text, never a formula.

Speed at season scale (issue 8: ~450k sentences): the workbook is streamed by XlsxWriter in
``constant_memory`` mode — each row goes to disk as it is written, so memory stays flat — and a
cell costs about half of what openpyxl's write-only mode costs. The work per cell is one library
call: each column is prepared once, vectorised (type decided per column, cleaning only when a
regex over the joined column finds something to clean), and the sentences sheet carries the
contract's columns plus the few analysts filter on, not internal ones (token lists, offsets).
``write_sheet`` still accepts an openpyxl write-only workbook (``pipeline.api.export`` uses one).
"""

from __future__ import annotations

import itertools
import math
import sys
import unicodedata
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype
from xlsxwriter.utility import xl_col_to_name

from .common import XML_ILLEGAL, is_missing, source_names

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
# pipeline-internal columns of the sentences table: tokens (a list per sentence), character offsets,
# paragraph and physical page numbers, the full source path (doc_id and `file` name the document)
SENTENCE_INTERNAL = frozenset({"tokens", "start", "end", "para", "phys_page", "source"})
CELL_LIMIT = 32_767
MAX_ROWS = 1_048_576  # Excel's sheet limit, header included
MIN_WIDTH, MAX_WIDTH, WIDE_TEXT = 6, 60, 80
WIDTH_SAMPLE = 500  # rows whose text decides a column's width
CHUNK = 20_000  # rows prepared at a time
HEADER_STYLE = {"bold": True, "bg_color": "#F0E6E6", "pattern": 1}
ILLEGAL = XML_ILLEGAL  # control characters XML 1.0 forbids (PDFs paste them into text)


def display_width(text: str) -> int:
    """Columns a string takes in Excel: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clean_str(text: str) -> str:
    """Text as a cell accepts it: forbidden characters dropped, cut at Excel's limit."""
    text = ILLEGAL.sub("", text)
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def cell_value(v: Any) -> Any:
    """One value as a cell holds it: numbers stay numbers, lists become text, text is cleaned."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, list | tuple | set | frozenset | np.ndarray):  # token lists and the like
        return cell_value(" ".join("" if is_missing(x) else str(x) for x in v))
    if isinstance(v, np.generic):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, int | float):
        return v
    return clean_str(str(v))


@dataclass
class Column:
    """One column ready to stream: its header, cell kind and values (None = empty cell)."""

    name: str
    kind: str  # "string", "number", "bool" or "any" (decided per cell)
    values: list[Any]
    width: int
    wrap: bool


def _strings(values: list[Any]) -> list[Any]:
    """Clean a column of str/None, touching cells only when the joined column needs it. Empty text
    becomes an empty cell (None): no library call at all (themes and sections are often empty)."""
    present = [v for v in values if v]
    joined = "\n".join(present)  # one regex pass and one length check for the whole column
    if ILLEGAL.search(joined) or max(map(len, present), default=0) > CELL_LIMIT:
        return [clean_str(v) if v else None for v in values]
    return [v or None for v in values]


def prepare(df: pd.DataFrame, column: str) -> tuple[str, list[Any]]:
    """(kind, values) of one column, decided once for the column rather than per cell."""
    s = df[column]
    if is_bool_dtype(s.dtype) and not s.hasnans:
        return "bool", s.astype(bool).tolist()
    if is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype):
        arr = s.to_numpy(dtype="float64", na_value=np.nan)
        ints = pd.api.types.is_integer_dtype(s.dtype)
        if ints and not s.hasnans:
            return "number", s.tolist()  # Python ints already
        vals = arr.astype(object)  # Python floats; missing and infinite cells left empty
        vals[~np.isfinite(arr)] = None
        if ints:  # show 12, not 12.0, to readers that keep the type
            return "number", [None if v is None else int(v) for v in vals]
        return "number", vals.tolist()
    inferred = infer_dtype(s, skipna=True)
    if inferred in ("string", "empty"):
        return "string", _strings(s.astype(object).where(s.notna(), None).tolist())
    return "any", [cell_value(v) for v in s.astype(object).tolist()]


def _width(name: str, values: list[Any]) -> int:
    sample = [display_width(str(v)) for v in values[:WIDTH_SAMPLE] if v is not None]
    w = display_width(name)
    if sample:
        w = max(w, int(np.quantile(sample, 0.9)))
    return max(MIN_WIDTH, min(w + 2, MAX_WIDTH))


def columns_of(df: pd.DataFrame | None, header: list[str]) -> list[Column]:
    if df is None:
        return [Column(c, "string", [], max(MIN_WIDTH, display_width(c) + 2), c == "text") for c in header]
    out = []
    for c in df.columns:
        kind, values = prepare(df, c)
        name = clean_str(str(c))
        w = _width(name, values)
        wrap = c == "text" or w >= MAX_WIDTH
        out.append(Column(name, kind, values, WIDE_TEXT if c == "text" else w, wrap))
    return out


def _limit_rows(name: str, df: pd.DataFrame | None) -> pd.DataFrame | None:
    if df is not None and len(df) > MAX_ROWS - 1:
        print(f"huibian: tables.xlsx sheet {name}: {len(df)} rows, Excel holds {MAX_ROWS - 1}; "
              "the rest are in the parquet file", file=sys.stderr)
        return df.iloc[: MAX_ROWS - 1]
    return df


def batches(df: pd.DataFrame | None, header: list[str]) -> Iterator[list[Column]]:
    """The table's columns ready to stream, CHUNK rows at a time: only one chunk's cells exist as
    Python objects at once (a season's sentences sheet is ~450,000 rows × 13 columns). Widths come
    from the first chunk."""
    if df is None or not len(df):
        yield columns_of(df, header)
        return
    for i in range(0, len(df), CHUNK):
        yield columns_of(df.iloc[i:i + CHUNK], header)


def write_sheet(wb: Any, name: str, df: pd.DataFrame | None, columns: list[str]) -> int:
    """One table as one sheet of a streaming workbook (XlsxWriter, or openpyxl write-only);
    returns the number of data rows."""
    df = _limit_rows(name, df)
    n = 0 if df is None else len(df)
    if isinstance(wb, xlsxwriter.Workbook):
        _write_xlsxwriter(wb, name, batches(df, columns), n)
    else:
        _write_openpyxl(wb, name, batches(df, columns), n)
    return n


_FORMATS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _formats(wb: xlsxwriter.Workbook) -> dict[str, Any]:
    # formats belong to a workbook; made once per workbook, not per sheet or cell
    if wb not in _FORMATS:
        _FORMATS[wb] = {"header": wb.add_format(HEADER_STYLE),
                        "wrap": wb.add_format({"text_wrap": True, "valign": "top"})}
    return _FORMATS[wb]


def _write_xlsxwriter(wb: xlsxwriter.Workbook, name: str, chunks: Iterator[list[Column]], n: int) -> None:
    ws = wb.add_worksheet(name[:31])
    cols = next(chunks)
    fmt = _formats(wb)
    for i, c in enumerate(cols):
        # a column's format applies to its cells written without one: wrap costs nothing per cell
        ws.set_column(i, i, c.width, fmt["wrap"] if c.wrap else None)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, n, max(len(cols), 1) - 1)
    for i, c in enumerate(cols):
        ws.write_string(0, i, c.name, fmt["header"])
    by_kind = {"string": ws.write_string, "number": ws.write_number, "bool": ws.write_boolean,
               "any": ws.write}
    first = 1
    for chunk in itertools.chain([cols], chunks):
        writers = [by_kind[c.kind] for c in chunk]  # per chunk: a text column may hold lists further down
        for r, row in enumerate(zip(*(c.values for c in chunk), strict=True), start=first):
            for j, v in enumerate(row):
                if v is not None:
                    writers[j](r, j, v)
        first += len(chunk[0].values) if chunk else 0


def _write_openpyxl(wb: Any, name: str, chunks: Iterator[list[Column]], n: int) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    ws = wb.create_sheet(title=name[:31])
    cols = next(chunks)
    wrap = Alignment(wrap_text=True, vertical="top")
    for i, c in enumerate(cols):
        ws.column_dimensions[xl_col_to_name(i)].width = c.width
    ws.freeze_panes = "A2"
    last = xl_col_to_name(max(len(cols), 1) - 1)
    ws.auto_filter.ref = f"A1:{last}{n + 1}"
    # a streamed sheet has no <dimension> unless told its size before the first row
    ws.calculate_dimension = lambda: f"A1:{last}{n + 1}"
    header = []
    for c in cols:
        cell = WriteOnlyCell(ws, value=c.name)
        cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="F0E6E6")
        header.append(cell)
    ws.append(header)
    for row in itertools.chain.from_iterable(zip(*(c.values for c in cs), strict=True)
                                             for cs in itertools.chain([cols], chunks)):
        out: list[Any] = []
        for c, v in zip(cols, row, strict=True):
            if c.wrap or (isinstance(v, str) and v.startswith("=")):
                cell = WriteOnlyCell(ws, value=v)
                if isinstance(v, str):
                    cell.data_type = "s"  # text, never a formula
                if c.wrap:
                    cell.alignment = wrap
                out.append(cell)
            else:
                out.append(v)
        ws.append(out)


def sentence_sheet(frames: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The sentences for analysts: contract columns first, then the useful rest, then `file`
    (the document's file name, so no lookup in the documents sheet is needed)."""
    s = frames.get("sentences")
    if not isinstance(s, pd.DataFrame):
        return None
    contract = [c for c in SHEETS["sentences"] if c in s.columns]
    rest = [c for c in s.columns if c not in contract and c not in SENTENCE_INTERNAL]
    out = s[contract + rest]  # a selection: the frame's columns are shared, not copied
    names = source_names(frames)
    if names and "doc_id" in s.columns and "file" not in out.columns:
        out = out.assign(file=s["doc_id"].astype(str).map(names))
    return out


def write_xlsx(frames: dict[str, pd.DataFrame], path: Path) -> dict[str, int]:
    """Every table as a sheet; returns rows written per sheet."""
    # constant_memory: rows stream to disk; formulas and URLs never inferred from report text
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False,
                                         "nan_inf_to_errors": True})
    counts = {}
    try:
        for name, columns in SHEETS.items():
            df = sentence_sheet(frames) if name == "sentences" else frames.get(name)
            counts[name] = write_sheet(wb, name, df if isinstance(df, pd.DataFrame) else None, columns)
        for name in EXTRA_SHEETS:
            df = frames.get(name)
            if isinstance(df, pd.DataFrame):
                counts[name] = write_sheet(wb, name, df, [])
    finally:
        wb.close()
    return counts
