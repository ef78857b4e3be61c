"""tables.xlsx: every table of the run as an Excel sheet, for analysts.

Header row frozen, autofilter on, column widths from the content (CJK characters count double),
Chinese shown as text. Cells are cleaned of characters XML forbids and cut at Excel's 32,767-char
limit; text starting with '=' stays text, never a formula (inline strings, never formulas).

Season scale (issue 8: 1,000 reports, ~450,000 sentences, reruns after one changed file): the
sentences sheet is made of per-file fragments — a file's rows as SpreadsheetML (rows and cells
without ``r`` attributes, so they do not depend on where the file lands in the season), compressed
once by :func:`document_part` and cached with the file — concatenated into the ZIP entry without
being decompressed (``zipparts``). The season tables (problems, figures, …) are generated column by
column (a few string operations per column, no call per cell), big ones in small content-cut blocks
that a memo keeps across runs (a rerun renders only the blocks holding changed rows, in one batch).
The same tables give the same bytes (no timestamps), whatever the memo holds.
``write_sheet`` still writes one table into an openpyxl write-only workbook (``pipeline.api.export``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype
from xlsxwriter.theme import THEME_XML_2007
from xlsxwriter.utility import xl_col_to_name

from ..season import FrameParts, docs_from_frames
from .common import XML_ILLEGAL, is_missing, source_names
from .zipparts import Deflated, ZipWriter, deflate, stored

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
ILLEGAL = XML_ILLEGAL  # control characters XML 1.0 forbids (PDFs paste them into text)


class _CharWidths(dict[str, int]):
    """Character → columns (2 for East Asian wide/full-width), filled on first sight of a character."""

    def __missing__(self, ch: str) -> int:
        w = self[ch] = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        return w


_CHAR_WIDTHS = _CharWidths()


def display_width(text: str) -> int:
    """Columns a string takes in Excel: wide (CJK) characters count two."""
    if text.isascii():  # (no ASCII character is wide)
        return len(text)
    # one C-level pass of dict lookups instead of a Python call per character (~0.1 s a season)
    return sum(map(_CHAR_WIDTHS.__getitem__, text))


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
        w = WIDE_TEXT if c == "text" else _width(name, values)  # (text: a fixed wide column)
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
    """One table as one sheet of an openpyxl write-only workbook (``pipeline.api.export``); returns
    the number of data rows. tables.xlsx itself is written by :func:`write_xlsx`."""
    df = _limit_rows(name, df)
    n = 0 if df is None else len(df)
    _write_openpyxl(wb, name, batches(df, columns), n)
    return n


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


# ------------------------------------------------------------------ tables.xlsx from XML fragments

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
HEADER_XF, WRAP_XF = 1, 2  # cell styles (styles.xml): bold on a fill; wrapped, top-aligned
# sentence-sheet columns that wrap; fixed by name (not from the widths of the season's first rows)
# because every file's fragment carries the cells' style
SENTENCE_WRAP = frozenset({"text", "section"})
EMPTY_CELL = "<c/>"  # no `r` attributes: cells and rows take the next position, so a gap needs a cell
MEMO_MIN_ROWS = 8192  # season tables from this size on are memoised in blocks (smaller: made whole)
# rows per memoised block (on average; cut by content) of a big season table (problems, figures).
# Small because one changed file has rows in most of the problem groups: at 1,000 reports it
# touches ~300 blocks, and each costs its rows (64: ~30,000 rows made again instead of ~230,000
# at 4,096; the price is ~15 % more compressed bytes for those sheets)
BLOCK_ROWS = 64
BATCH_ROWS = 16_384  # rows of missing blocks rendered at a time


@dataclass(frozen=True)
class SheetPart:
    """One file's rows of a sheet: its header, row count and the rows' XML as a deflate fragment."""

    columns: tuple[str, ...]
    rows: int
    body: Deflated


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ILLEGAL_RE2 = r"[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{fffe}\x{ffff}]"  # XML_ILLEGAL for Arrow (RE2)
_EDGE_SPACE = r"^[\s\p{Z}\x{85}]|[\s\p{Z}\x{85}]$"  # (RE2) what str.isspace sees at either end
_EITHER_RE2 = f"{_ILLEGAL_RE2}|{_EDGE_SPACE}"


def _text_data(arr: pa.Array) -> tuple[bytes, int]:
    """The UTF-8 bytes of all the values of a string array back to back (no copy per value), and
    the longest value's length in bytes."""
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if not len(arr) or arr.buffers()[2] is None:
        return b"", 0
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()
    return data, int(np.diff(offsets).max())


@functools.cache
def _L(text: str) -> pa.Scalar:  # noqa: N802 - a literal for the Arrow kernels (one string type throughout)
    return pa.scalar(text, pa.large_string())


def column_cells(values: pd.Series | pa.Array | pa.ChunkedArray, wrap: bool) -> pa.Array:
    """The XML of a column's cells, one string per row, built by Arrow kernels (no call per cell):
    numbers stay numbers (the shortest text that reads back as the same value), text is an inline
    string (never a formula), cleaned of what XML forbids and cut at Excel's cell limit; missing and
    empty values are empty cells."""
    style = f' s="{WRAP_XF}"' if wrap else ""
    try:
        arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: decided per value
        return pa.array([_cell(cell_value(v), style) for v in values], pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_boolean(t):
        cells = pc.if_else(arr, _L(f'<c{style} t="b"><v>1</v></c>'), _L(f'<c{style} t="b"><v>0</v></c>'))
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        if pa.types.is_floating(t):  # infinite values (and NaN) are empty cells
            arr = pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, t))
        cells = pc.binary_join_element_wise(_L(f"<c{style}><v>"), pc.cast(arr, pa.large_string()), _L("</v></c>"), _L(""))
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        arr = arr.cast(pa.large_string())
        data, longest = _text_data(arr)
        # (bytes ≥ characters: a column whose longest value fits in bytes needs no cut)
        # one regex pass answers both checks below for most columns (neither): ~1 ms a report saved
        suspect = pc.any(pc.match_substring_regex(arr, _EITHER_RE2)).as_py()
        if longest > CELL_LIMIT or (suspect and pc.any(pc.match_substring_regex(arr, _ILLEGAL_RE2)).as_py()):
            arr = pa.array([None if v is None else clean_str(v) for v in arr.to_pylist()], pa.large_string())
            data = _text_data(arr)[0]
        text = arr
        for ch, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            if ch.encode() in data:  # most columns hold none of them
                text = pc.replace_substring(text, ch, entity)
        pre = _L(f'<c{style} t="inlineStr"><is><t>')
        # (cutting at the cell limit adds no edge space; dropping forbidden characters may: suspect)
        if suspect and pc.any(pc.match_substring_regex(arr, _EDGE_SPACE)).as_py():
            pre = pc.if_else(pc.match_substring_regex(arr, _EDGE_SPACE),
                             _L(f'<c{style} t="inlineStr"><is><t xml:space="preserve">'), pre)
        # empty text is an empty cell, as missing text is (null → filled below)
        cells = pc.if_else(pc.equal(arr, _L("")), _L(EMPTY_CELL),
                           pc.binary_join_element_wise(pre, text, _L("</t></is></c>"), _L("")))
    else:  # lists, dates, …: as text, per value
        return pa.array([_cell(cell_value(v), style) for v in arr.to_pylist()], pa.large_string())
    return pc.fill_null(cells.cast(pa.large_string()), _L(EMPTY_CELL))


def _cell(v: Any, style: str) -> str:
    """One cell of a mixed column (rare): its type decided per value."""
    if v is None:
        return EMPTY_CELL
    if isinstance(v, bool):
        return f'<c{style} t="b"><v>{int(v)}</v></c>'
    if isinstance(v, int | float):
        return f"<c{style}><v>{v!r}</v></c>"
    t = _escape(v)
    space = ' xml:space="preserve"' if t[:1].isspace() or t[-1:].isspace() else ""
    return f'<c{style} t="inlineStr"><is><t{space}>{t}</t></is></c>'


def row_cells(df: pd.DataFrame, wrap: frozenset[str] | set[str]) -> pa.Array:
    """A table's rows as SpreadsheetML, one string per row, built column by column (no call per
    cell)."""
    try:  # one conversion for the table; a column Arrow cannot type goes value by value
        columns: list[Any] = pa.Table.from_pandas(df, preserve_index=False).columns
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        columns = [df.iloc[:, i] for i in range(len(df.columns))]
    return _joined_cells(columns, [str(c) for c in df.columns], wrap)


def _joined_cells(columns: list[Any], names: list[str], wrap: frozenset[str] | set[str]) -> pa.Array:
    cols = [column_cells(v, c in wrap) for v, c in zip(columns, names, strict=True)]
    return pc.binary_join_element_wise(_L("<row>"), *cols, _L("</row>"), _L(""))


def rows_xml(df: pd.DataFrame, wrap: frozenset[str] | set[str]) -> bytes:
    """A table's rows as SpreadsheetML (UTF-8), built column by column (no call per cell)."""
    if not len(df) or not len(df.columns):
        return b""
    return _text_data(row_cells(df, wrap))[0]


def file_name(doc: dict[str, pd.DataFrame]) -> str | None:
    """The file's short name from its documents row (what ``source_names`` gives for the season)."""
    docs = doc.get("documents")
    if not isinstance(docs, pd.DataFrame) or "source" not in docs.columns or not len(docs):
        return None
    return str(docs["source"].iloc[0]).replace("\\", "/").rsplit("/", 1)[-1]


def sentence_rows(s: pd.DataFrame, name: str | None, with_file: bool) -> pd.DataFrame:
    """The sentences for analysts: contract columns first, then the useful rest, then `file` (the
    document's file name, so no lookup in the documents sheet is needed)."""
    out = s[_sheet_columns(s)]  # a selection: the frame's columns are shared, not copied
    if with_file and "file" not in out.columns:
        out = out.assign(file=name)
    return out


def _sheet_columns(s: pd.DataFrame) -> list[str]:
    """``sentence_rows``' columns of the frame: contract columns first, then the useful rest."""
    contract = [c for c in SHEETS["sentences"] if c in s.columns]
    return contract + [c for c in s.columns if c not in contract and c not in SENTENCE_INTERNAL]


def document_part(doc: dict[str, pd.DataFrame]) -> SheetPart:
    """One file's rows of the sentences sheet, compressed (cached with the file; issue 8)."""
    s = doc.get("sentences")
    if not isinstance(s, pd.DataFrame):
        s = pd.DataFrame(columns=SHEETS["sentences"])
    name = file_name(doc)
    with_file = isinstance(doc.get("documents"), pd.DataFrame)
    columns = _sheet_columns(s)
    if len(s) and name is not None and with_file and "file" not in columns:
        # Arrow straight from the file's frame, the file name a column of its own: what
        # ``rows_xml(sentence_rows(...))`` gives, without a pandas selection and assign
        try:
            t = pa.Table.from_pandas(s, columns=columns, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            t = None
        if t is not None:
            t = t.append_column("file", pa.array([name] * len(s), pa.large_string()))
            xml = _text_data(_joined_cells(t.columns, t.column_names, SENTENCE_WRAP))[0]
            return SheetPart(tuple(t.column_names), len(s), deflate(xml))
    rows = sentence_rows(s, name, with_file)
    return SheetPart(tuple(map(str, rows.columns)), len(rows),
                     deflate(rows_xml(rows, SENTENCE_WRAP)))


def _col_xml(cols: list[Column]) -> str:
    out = []
    for i, c in enumerate(cols, start=1):
        style = f' style="{WRAP_XF}"' if c.wrap else ""
        out.append(f'<col min="{i}" max="{i}" width="{c.width + 0.7109375}"{style} customWidth="1"/>')
    return f"<cols>{''.join(out)}</cols>" if out else ""


def _sheet_head(cols: list[Column], n: int, selected: bool) -> str:
    last = xl_col_to_name(max(len(cols), 1) - 1)
    header = "".join(f'<c s="{HEADER_XF}" t="inlineStr"><is><t>{_escape(c.name)}</t></is></c>' for c in cols)
    tab = ' tabSelected="1"' if selected else ""
    return (f'{XML_HEAD}<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><dimension ref="A1:{last}{n + 1}"/>'
            f'<sheetViews><sheetView{tab} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/>{_col_xml(cols)}<sheetData><row>{header}</row>')


def _sheet_tail(cols: list[Column], n: int) -> str:
    last = xl_col_to_name(max(len(cols), 1) - 1)
    return (f'</sheetData><autoFilter ref="A1:{last}{n + 1}"/><pageMargins left="0.7" right="0.7" '
            'top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>')


@dataclass
class Sheet:
    """A sheet ready to assemble: its columns (header, width, wrap), row count and body pieces."""

    name: str
    cols: list[Column]
    rows: int
    body: Iterable[Deflated]


def _content_hash(df: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(df, index=False).to_numpy()


def table_sheet(name: str, df: pd.DataFrame | None, header: list[str],
                memo: MutableMapping[str, Any] | None = None) -> Sheet:
    """A season table (problems, figures, …) as a sheet: widths and types from the table, rows as
    XML generated column by column. With ``memo``, a big table is cut into small blocks at rows
    chosen by content (so a change moves few block edges) and each block's compressed XML is kept
    in one memo entry per table, by a hash of the block's rows: a rerun after one changed file
    renders (in one batch) and compresses only the blocks it touched."""
    df = _limit_rows(name, df)
    cols = columns_of(None if df is None else df.head(WIDTH_SAMPLE), header)
    if df is None or not len(df):
        return Sheet(name, cols, 0, [])
    wrap = {c.name for c in cols if c.wrap}
    df = df.set_axis([c.name for c in cols], axis=1)
    if memo is None or len(df) < MEMO_MIN_ROWS or not len(df.columns):
        return Sheet(name, cols, len(df), [deflate(rows_xml(df, wrap))])
    row_hash = _content_hash(df)
    cuts = np.flatnonzero(row_hash % BLOCK_ROWS == 0) + 1  # a block ends after a row whose hash says so
    edges = np.unique(np.concatenate(([0], cuts, [len(df)])))
    # the block's XML depends on its rows, the columns' dtypes and which columns wrap
    schema = repr([(c, str(t), c in wrap) for c, t in df.dtypes.items()]).encode()
    memo_key = f"xlsx-blocks-{name}-" + hashlib.sha1(schema).hexdigest()  # (one entry per sheet)
    keys = [hashlib.sha1(row_hash[a:b].tobytes()).digest() for a, b in itertools.pairwise(edges)]

    def blocks() -> Iterator[Deflated]:
        try:
            kept: dict[bytes, tuple[bytes, int, int, int]] = memo.get(memo_key) or {}
        except Exception:  # noqa: BLE001 - an unreadable memo entry is a miss
            kept = {}
        used = {k: kept[k] for k in keys if k in kept}
        missing = [i for i, k in enumerate(keys) if k not in used]
        # blocks to make are rendered in batches: a few Arrow calls per batch, not per block
        for batch in _batches(missing, edges):
            for i, piece in zip(batch, _render_blocks(df, wrap, edges, batch), strict=True):
                used[keys[i]] = (piece.data, piece.crc, piece.size, piece.shift)
        for k in keys:
            yield Deflated(*used[k])
        if missing or len(used) != len(kept):
            memo[memo_key] = used  # this season's blocks only: the entry does not grow run by run
    return Sheet(name, cols, len(df), blocks())


def _batches(blocks: list[int], edges: np.ndarray) -> Iterator[list[int]]:
    """Block numbers grouped so that a batch holds at most BATCH_ROWS rows (bounded memory)."""
    batch: list[int] = []
    rows = 0
    for i in blocks:
        n = int(edges[i + 1] - edges[i])
        if batch and rows + n > BATCH_ROWS:
            yield batch
            batch, rows = [], 0
        batch.append(i)
        rows += n
    if batch:
        yield batch


def _render_blocks(df: pd.DataFrame, wrap: set[str], edges: np.ndarray, blocks: list[int]) -> list[Deflated]:
    """The given blocks' rows as XML in one pass, cut at the blocks' edges and compressed each."""
    take = np.concatenate([np.arange(edges[i], edges[i + 1]) for i in blocks])
    rows = row_cells(df.iloc[take], wrap)
    if rows.type != pa.large_string():
        rows = rows.cast(pa.large_string())
    data = _text_data(rows)[0]
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset:rows.offset + len(rows) + 1]
    offsets = offsets - offsets[0]
    out, r = [], 0
    for i in blocks:
        n = int(edges[i + 1] - edges[i])
        out.append(deflate(data[offsets[r]:offsets[r + n]]))
        r += n
    return out


def sentence_sheet(frames: dict[str, pd.DataFrame], parts: Sequence[Mapping[str, Any]], key: str) -> Sheet:
    """The sentences sheet from the files' fragments. Widths come from the season's first rows
    (read from the first files' Arrow tables); a file whose fragment has other columns than the
    first file's, or that crosses Excel's row limit, is rebuilt from its rows."""
    first: list[pd.DataFrame] = []
    header: tuple[str, ...] | None = None
    for p in parts:
        part = p[key]
        if header is None and part.rows:
            header = part.columns
        if sum(map(len, first)) < WIDTH_SAMPLE and part.rows:
            first.append(_rows_of(p, frames, header, WIDTH_SAMPLE))
        if header is not None and sum(map(len, first)) >= WIDTH_SAMPLE:
            break
    if header is None:  # no sentences at all: the header the columns would have
        empty = sentence_rows(pd.DataFrame(columns=SHEETS["sentences"]), None, "documents" in frames)
        return Sheet("sentences", columns_of(None, list(empty.columns)), 0, [])
    sample = pd.concat(first, ignore_index=True).head(WIDTH_SAMPLE)
    cols = columns_of(sample, list(header))
    for c in cols:
        c.wrap = c.name in SENTENCE_WRAP
    total = 0
    for p in parts:
        total += p[key].rows
    n = min(total, MAX_ROWS - 1)
    if total > n:
        print(f"huibian: tables.xlsx sheet sentences: {total} rows, Excel holds {n}; "
              "the rest are in the parquet file", file=sys.stderr)

    def body() -> Iterator[Deflated]:
        done = 0
        for p in parts:
            part: SheetPart = p[key]
            if done >= n:
                return
            if part.columns == header and done + part.rows <= n:
                yield part.body
            elif part.rows:  # rare: rebuilt from the file's own rows
                rows = _rows_of(p, frames, header, n - done)
                yield deflate(rows_xml(rows, SENTENCE_WRAP))
            done += part.rows
    return Sheet("sentences", cols, n, body())


def _rows_of(p: Mapping[str, Any], frames: dict[str, pd.DataFrame], header: tuple[str, ...] | None,
             limit: int) -> pd.DataFrame:
    """The first ``limit`` sheet rows of one file, from its Arrow table (only those rows converted)."""
    table = p["sentences"]
    s = table.slice(0, limit).to_pandas()
    names = source_names(frames)
    doc_id = str(s["doc_id"].iloc[0]) if len(s) and "doc_id" in s.columns else ""
    rows = sentence_rows(s, names.get(doc_id), "documents" in frames)
    return rows.reindex(columns=list(header)) if header is not None else rows


def _workbook_files(sheets: list[Sheet]) -> dict[str, str]:
    """Every part of the package but the sheets (the same for every season of these sheet names)."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, len(sheets) + 1))
    types = (f'{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.'
             'extended-properties+xml"/><Override PartName="/docProps/core.xml" ContentType="application/'
             'vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/xl/styles.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
             '<Override PartName="/xl/theme/theme1.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.theme+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
             f'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{overrides}</Types>')
    rels = (f'{XML_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/><Relationship Id="rId2" Type="http://schemas.'
            'openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'extended-properties" Target="docProps/app.xml"/></Relationships>')
    wb_rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1))
    k = len(sheets)
    wb_rels = (f'{XML_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
               f'{wb_rels}<Relationship Id="rId{k + 1}" Type="{REL_NS}/theme" Target="theme/theme1.xml"/>'
               f'<Relationship Id="rId{k + 2}" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>')
    sheet_list = "".join(f'<sheet name="{_escape(s.name)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, s in enumerate(sheets, start=1))
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">{_quote_sheet(s.name)}!$A$1:'
        f'${xl_col_to_name(max(len(s.cols), 1) - 1)}${s.rows + 1}</definedName>'
        for i, s in sorted(enumerate(sheets), key=lambda x: x[1].name))
    workbook = (f'{XML_HEAD}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><fileVersion appName="xl" '
                'lastEdited="4" lowestEdited="4" rupBuild="4505"/><workbookPr defaultThemeVersion="124226"/>'
                '<bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/>'
                f'</bookViews><sheets>{sheet_list}</sheets><definedNames>{filters}</definedNames>'
                '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')
    titles = "".join(f"<vt:lpstr>{_escape(s.name)}</vt:lpstr>" for s in sheets)
    app = (f'{XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-'
           'properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
           '<Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>'
           '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr>'
           f'</vt:variant><vt:variant><vt:i4>{k}</vt:i4></vt:variant></vt:vector></HeadingPairs><TitlesOfParts>'
           f'<vt:vector size="{k}" baseType="lpstr">{titles}</vt:vector></TitlesOfParts><Company></Company>'
           '<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc><HyperlinksChanged>false'
           '</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>')
    # no creation time: the same tables give the same bytes
    core = (f'{XML_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/'
            'terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/'
            'XMLSchema-instance"><dc:creator>huibian</dc:creator></cp:coreProperties>')
    return {"[Content_Types].xml": types, "_rels/.rels": rels, "docProps/app.xml": app,
            "docProps/core.xml": core, "xl/workbook.xml": workbook, "xl/_rels/workbook.xml.rels": wb_rels,
            "xl/styles.xml": STYLES, "xl/theme/theme1.xml": THEME_XML_2007}


def _quote_sheet(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) else "'" + name.replace("'", "''") + "'"


STYLES = (f'{XML_HEAD}<styleSheet xmlns="{MAIN_NS}"><fonts count="2"><font><sz val="11"/><color theme="1"/>'
          '<name val="Calibri"/><family val="2"/><scheme val="minor"/></font><font><b/><sz val="11"/>'
          '<color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts>'
          '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill '
          'patternType="gray125"/></fill><fill><patternFill patternType="solid"><fgColor rgb="FFF0E6E6"/>'
          '<bgColor indexed="64"/></patternFill></fill></fills><borders count="1"><border><left/><right/>'
          '<top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" '
          'fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" '
          'borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" '
          'applyFill="1"/><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
          '<alignment vertical="top" wrapText="1"/></xf></cellXfs><cellStyles count="1"><cellStyle '
          'name="Normal" xfId="0" builtinId="0"/></cellStyles><dxfs count="0"/><tableStyles count="0" '
          'defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/></styleSheet>')


PART_KEY = "xlsx"  # where a file's SheetPart sits in its part mapping (see ``season_parts``)


def season_parts(frames: dict[str, pd.DataFrame], build: Any, key: str) -> list[Mapping[str, Any]]:
    """Old callers (whole frames): per-file parts built from frames["sentences"] grouped by doc_id,
    in order of first appearance, each with its "sentences" Arrow table made only when read."""
    return [FrameParts({key: build(doc)}, doc["sentences"]) for doc in docs_from_frames(frames)]


def write_xlsx(frames: dict[str, pd.DataFrame], path: Path, parts: Sequence[Mapping[str, Any]] | None = None,
               memo: MutableMapping[str, Any] | None = None, key: str = PART_KEY) -> dict[str, int]:
    """Every table as a sheet; returns rows written per sheet.

    ``parts``: one mapping per input file, in input order, holding the file's :func:`document_part`
    under ``key`` and its "sentences" Arrow table; without them they are built from
    frames["sentences"]. ``memo`` (persistent across runs) keeps compressed blocks of the big season
    tables. The sentences sheet is the files' fragments concatenated, never decompressed.
    """
    if parts is None:
        parts = season_parts(frames, document_part, key)
    sheets: list[Sheet] = []
    for name, columns in SHEETS.items():
        if name == "sentences":
            sheets.append(sentence_sheet(frames, parts, key))
            continue
        df = frames.get(name)
        sheets.append(table_sheet(name, df if isinstance(df, pd.DataFrame) else None, columns, memo))
    for name in EXTRA_SHEETS:
        df = frames.get(name)
        if isinstance(df, pd.DataFrame):
            sheets.append(table_sheet(name, df, [], memo))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        z = ZipWriter(fh)
        for name, text in _workbook_files(sheets).items():
            z.write(name, text.encode("utf-8"))
        for i, sheet in enumerate(sheets, start=1):
            head = stored(_sheet_head(sheet.cols, sheet.rows, i == 1).encode("utf-8"))
            tail = stored(_sheet_tail(sheet.cols, sheet.rows).encode("utf-8"))
            z.write_pieces(f"xl/worksheets/sheet{i}.xml", itertools.chain([head], sheet.body, [tail]))
        z.close()
    tmp.replace(path)
    return {s.name: s.rows for s in sheets}
