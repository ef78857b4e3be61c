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
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
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
from .zipparts import Deflated, ZipWriter, crc32_concat_many, crc32_shift, deflate, stored

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
# rows per memoised block (on average; cut by content) of a big season table (problems, figures);
# a power of 2 (a cut tests the row hash's low bits). Small because one changed file has rows in most
# of the problem groups: at 1,000 reports it touches ~300 blocks, and each costs its rows (32:
# ~17,000 rows made again, 64: ~33,000; the price is ~14 % more compressed bytes for those sheets
# than at 64, ~4 % for the workbook). Blocks are keyed in groups of GROUP_BLOCKS (on average) so
# that the per-block work (a zlib call per text column) is done only where rows changed.
BLOCK_ROWS = 32
GROUP_BLOCKS = 8
BATCH_ROWS = 4096  # rows of missing blocks rendered at a time


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
        columns: list[Any] = pa.Table.from_pandas(df, preserve_index=False, nthreads=1).columns
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


# ------------------------------------------------------------------ big season tables in memoised blocks
#
# A rerun after one changed file sees the big tables again (problems: 260,000 rows at 1,000 reports)
# but for a few hundred rows, spread over the whole table. The rows are cut by content into blocks of
# ~BLOCK_ROWS rows (a change makes its own block again, not the table) and the blocks into groups of
# ~GROUP_BLOCKS blocks. The memo keeps each block's compressed XML by a key of the block's rows, and
# each group's blocks (their keys, the group's CRC) by a key of the group's rows. Every run reads every
# row, so that reading is kept to what C does at memory speed: per row a 64-bit hash of its
# fixed-width content (numpy: numbers' bits, text lengths, short texts' first bytes; no Python object
# per value), per group one SHA-1 of each text column's bytes (they lie back to back in the Arrow
# buffers: one call a column, ~2 GB/s; a CRC-32 is 3x faster, but two same-length edits could share
# one and leave a stale block in the workbook); only groups the memo does not know are keyed block
# by block.

_U64 = np.uint64
_SEED = _U64(0x243F6A8885A308D3)
# odd multipliers, one per value folded into a row's hash (cycled): fixed, so every process and run agree
_MULTIPLIERS = tuple(_U64((0x9E3779B97F4A7C15 * (2 * i + 1)) & 0xFFFFFFFFFFFFFFFF) for i in range(61))
_NULL_MARK = _U64(0xD6E8FEB86659FD93)
SHORT_TEXT = 16  # text values up to this many bytes count in the row hash by their first 8 bytes
FEW_CHUNKS = 8  # text columns of more chunks are joined (their short values) to read first bytes
# rows alike in all the row hash sees (no cut among them, e.g. one row repeated) are cut every
# MAX_BLOCK_ROWS rows, and blocks into groups every MAX_GROUP_BLOCKS blocks
MAX_BLOCK_ROWS = 16 * BLOCK_ROWS
MAX_GROUP_BLOCKS = 4 * GROUP_BLOCKS
KEY_VERSION = 2  # of the keys (in the memo entries' names): keys of another version never meet these

Group = tuple[tuple[bytes, ...], tuple[int, ...], int, int, int]  # block keys, their rows, crc, size, shift


@dataclass
class _TextColumn:
    """A text column's bytes where Arrow holds them: one buffer per chunk (a season table made of the
    files' tables has ~1,000 chunks), nothing copied (in the forked child that writes the workbook
    every new page of memory costs a fault: ~0.4 ms an array of 260,000 rows). Where a row's bytes
    lie in its chunk's buffer: from the chunk's offsets when there are few chunks (or nulls), else
    from the chunk's first offset and the rows' lengths (no Python step per chunk and row)."""

    arr: pa.Array | pa.ChunkedArray
    data: list[memoryview]
    chunk_rows: np.ndarray  # the first row of each chunk, then the row count
    offsets: list[np.ndarray] | None  # per chunk: where its rows' bytes start in its buffer, then its end
    spans: list[tuple[int, int]]  # per chunk: where its rows' bytes start and end in its buffer
    base: np.ndarray | None = None  # (many chunks) each chunk's first offset
    ends: np.ndarray | None = None  # (many chunks) each row's end, counted over all chunks' bytes

    @classmethod
    def of(cls, arr: pa.Array | pa.ChunkedArray, lengths: np.ndarray) -> _TextColumn:
        """The column, and each row's length in bytes into ``lengths`` (0 for a null: the bytes
        under a null are no content)."""
        chunks = [c for c in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]) if len(c)]
        many = len(chunks) > FEW_CHUNKS and not arr.null_count
        if many:
            np.copyto(lengths, pc.binary_length(arr).to_numpy(zero_copy_only=False))
            if int(lengths.sum()) <= SHORT_TEXT * len(lengths):  # short values (ids): joined, a few MB
                return cls.of(arr.combine_chunks(), lengths)
        wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
        width, dtype = (8, np.int64) if wide else (4, np.int32)
        rows = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in chunks], out=rows[1:])
        buffers = [c.buffers() for c in chunks]
        data = [memoryview(b[2] or b"") for b in buffers]
        if not many:
            offsets = [np.frombuffer(b[1], dtype=dtype, count=len(c) + 1, offset=width * c.offset)
                       .astype(np.int64, copy=False) for c, b in zip(chunks, buffers, strict=True)]
            for o, r in zip(offsets, rows.tolist(), strict=False):
                np.subtract(o[1:], o[:-1], out=lengths[r:r + len(o) - 1])
            if arr.null_count:
                lengths[pc.is_null(arr).to_numpy(zero_copy_only=False)] = 0
            return cls(arr, data, rows, offsets, [(int(o[0]), int(o[-1])) for o in offsets])
        base = np.array([int.from_bytes(b[1][width * c.offset:width * (c.offset + 1)], "little")
                         for c, b in zip(chunks, buffers, strict=True)], dtype=np.int64)
        ends = np.cumsum(lengths)
        sizes = np.diff(ends[rows[1:] - 1], prepend=0)  # (chunks are not empty)
        return cls(arr, data, rows, None, list(zip(base.tolist(), (base + sizes).tolist(), strict=True)), base, ends)

    def _at(self, rows: np.ndarray, end: bool) -> tuple[list[int], list[int]]:
        """(chunk, byte position) of the start (or end) of each of these rows."""
        if self.offsets is not None and len(self.offsets) == 1:
            return [0] * len(rows), self.offsets[0][rows + 1 if end else rows].tolist()
        chunk = np.searchsorted(self.chunk_rows, rows, "right") - 1
        if self.offsets is not None:
            local = (rows - self.chunk_rows[chunk] + (1 if end else 0)).tolist()
            chunks = chunk.tolist()
            return chunks, [int(self.offsets[c][i]) for c, i in zip(chunks, local, strict=True)]
        assert self.base is not None and self.ends is not None
        first = self.chunk_rows[chunk]  # bytes of the chunk before the row: ends[row - 1] - ends[first - 1]
        before = np.where(first > 0, self.ends[np.maximum(first - 1, 0)], 0)
        upto = self.ends[rows] if end else np.where(rows > 0, self.ends[np.maximum(rows - 1, 0)], 0)
        return chunk.tolist(), (self.base[chunk] + upto - before).tolist()

    def digests(self, a: np.ndarray, b: np.ndarray) -> list[bytes]:
        """The SHA-1 of the bytes of rows [a, b) for each range, across chunk edges as if the
        chunks were one buffer."""
        ca, first = self._at(a, False)
        cb, last = self._at(b - 1, True)
        if len(self.data) == 1:
            data = self.data[0]
            return [hashlib.sha1(data[x:y]).digest() for x, y in zip(first, last, strict=True)]
        out = []
        for x, y, i, j in zip(first, last, ca, cb, strict=True):
            if i == j:
                out.append(hashlib.sha1(self.data[i][x:y]).digest())
                continue
            h = hashlib.sha1(self.data[i][x:self.spans[i][1]])
            for m in range(i + 1, j):
                h.update(self.chunk_bytes(m))
            h.update(self.data[j][self.spans[j][0]:y])
            out.append(h.digest())
        return out

    def chunk_bytes(self, m: int) -> memoryview:
        x, y = self.spans[m]
        return self.data[m][x:y]

    def heads(self, rows: np.ndarray | None, lengths: np.ndarray, work: _Scratch) -> np.ndarray:
        """:func:`_head_bytes` of the given rows (all: None; ascending; ``lengths``: theirs), in
        ``work``'s arrays."""
        k = len(lengths)
        out, hi, at = work.get("head", k, _U64), work.get("hi", k, _U64), work.get("at", k, np.int64)
        if self.offsets is not None and len(self.offsets) <= FEW_CHUNKS:  # chunk by chunk
            bounds = self.chunk_rows if rows is None else np.searchsorted(rows, self.chunk_rows)
            for c, (x, y) in enumerate(itertools.pairwise(bounds.tolist())):
                if y > x:
                    o = self.offsets[c]
                    starts = o[:-1] if rows is None else o[rows[x:y] - self.chunk_rows[c]]
                    _head_bytes(self.data[c], starts, lengths[x:y], out[x:y], hi[x:y], at[x:y])
            return out
        # many chunks: the picked values into one small array first (short values: a few MB at most)
        arr = self.arr
        if rows is not None:
            mask = np.zeros(int(self.chunk_rows[-1]), dtype=bool)
            mask[rows] = True
            arr = arr.filter(pa.array(mask))  # (a take from many chunks would join them all first)
        joined = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        picked = _TextColumn.of(joined, work.get("picked", len(joined), np.int64))
        assert picked.offsets is not None
        return _head_bytes(picked.data[0], picked.offsets[0][:-1], lengths, out, hi, at)


class _Scratch:
    """Work arrays for keying the big tables, made once (for the largest) and reused: a new array
    of 260,000 rows costs ~0.4 ms of page faults in the forked child that writes the workbook, and
    the row hashes of a season's tables took ~100 of them."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: Any) -> np.ndarray:
        got = self._arrays.get(name)
        if got is None or len(got) < n:
            got = self._arrays[name] = np.empty(n, dtype=dtype)
        return got[:n]


@dataclass
class _Keyed:
    """A big table's rows as the memo sees them: row hashes, text columns, block edges (rows) and
    group bounds (indices into the block edges)."""

    row_hash: np.ndarray
    texts: list[_TextColumn]
    edges: np.ndarray
    groups: np.ndarray

    def keys(self, starts: np.ndarray, ends: np.ndarray) -> list[bytes]:
        """The key of each row range [start, end): SHA-1 of its rows' hashes and of the SHA-1 of
        its bytes in each text column (a block's or a group's XML is a function of these rows)."""
        texts = [text.digests(starts, ends) for text in self.texts]
        out = []
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            digest = hashlib.sha1(self.row_hash[a:b])
            for column in texts:
                digest.update(column[i])
            out.append(digest.digest())
        return out


def _arrow_columns(df: pd.DataFrame) -> list[Any]:
    """The table's columns as Arrow arrays (one conversion; Arrow-backed text is not copied); a column
    Arrow cannot type stays a Series (its cells are then decided per value, as ``row_cells`` does)."""
    try:
        return [c.chunk(0) if c.num_chunks == 1 else c  # (chunks kept: a copy costs page faults)
                for c in pa.Table.from_pandas(df, preserve_index=False, nthreads=1).columns]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        out: list[Any] = []
        for i in range(len(df.columns)):
            s = df.iloc[:, i]
            try:
                out.append(pa.array(s, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                out.append(s)
        return out


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _keyable(col: Any) -> pa.Array | pa.ChunkedArray:
    """The column as an Arrow array the row hash reads: text, numbers or booleans. Other kinds (lists,
    dates, mixed objects) are keyed by their cells' XML itself, which is what the block holds."""
    arr = col
    if isinstance(arr, pa.Array | pa.ChunkedArray):
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_null(arr.type):
            return arr.cast(pa.large_string())
        t = arr.type
        if _is_text(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            return arr
    return column_cells(col, False)


def _head_bytes(data: memoryview, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray, hi: np.ndarray,
                at: np.ndarray) -> np.ndarray:
    """The values' first 8 bytes as little-endian integers (zero-padded when shorter), into ``out``
    (``hi``, ``at``: work arrays as long): the two aligned 8-byte words around each start gathered
    and shifted together (numpy, in place, no copy of the text). ``starts`` ascend, as offsets do."""
    words = np.frombuffer(data, dtype="<u8", count=data.nbytes // 8)
    n = len(starts)
    whole = 0
    if len(words) >= 2:
        whole = int(np.searchsorted(starts, (len(words) - 1) * 8))  # rows whose two words both exist
        np.right_shift(starts, 3, out=at)
        np.take(words, at, out=out, mode="clip")
        at += 1
        np.take(words, at, out=hi, mode="clip")
        np.bitwise_and(starts, 7, out=at)
        np.left_shift(at, 3, out=at)
        shift = at.view(_U64)
        np.right_shift(out, shift, out=out)
        np.left_shift(hi, _U64(1), out=hi)
        np.subtract(_U64(63), shift, out=shift)
        np.left_shift(hi, shift, out=hi)  # (shift 0: hi shifted out whole)
        np.bitwise_or(out, hi, out=out)
    for i in range(whole, n):  # values starting past the last whole word but one
        s = int(starts[i])
        out[i] = int.from_bytes(bytes(data[s:s + 8]), "little")
    # only the value's own bytes: mask ~(ones << 8·len), shifted in two halves (a shift by 64 is
    # undefined) with len capped at 8 (all ones)
    np.minimum(lengths, 8, out=at)
    np.left_shift(at, 2, out=at)
    half = at.view(_U64)
    np.left_shift(_U64(0xFFFFFFFFFFFFFFFF), half, out=hi)
    np.left_shift(hi, half, out=hi)
    np.invert(hi, out=hi)
    np.bitwise_and(out, hi, out=out)
    return out


def _row_keys(columns: Sequence[Any], n: int, work: _Scratch | None = None) -> tuple[np.ndarray, list[_TextColumn]]:
    """Per row a 64-bit hash of its numbers, booleans, nulls, text lengths and short texts' first
    bytes, which decides where blocks end; and the text columns, whose bytes the keys read whole
    (long texts are not read per row: even 8 bytes a value cost ~3 ms a column of 260,000 rows in
    cache misses). What marks a row (a null, a short text) is marked in that row only: no other
    row's hash depends on it. Folded in place, in ``work``'s arrays (see _Scratch)."""
    work = work or _Scratch()
    h = np.full(n, _SEED, dtype=_U64)
    scratch = work.get("scratch", n, _U64)
    lengths = work.get("lengths", n, np.int64)
    texts: list[_TextColumn] = []
    multipliers = itertools.cycle(_MULTIPLIERS)

    def fold(values: np.ndarray | None) -> None:  # (in place: h is the one array all along)
        if values is not None:  # (None: zeros)
            np.bitwise_xor(h, values, out=h)
        np.multiply(h, next(multipliers), out=h)
        np.right_shift(h, _U64(29), out=scratch)
        np.bitwise_xor(h, scratch, out=h)

    for col in columns:
        arr = _keyable(col)
        t = arr.type
        nulls = arr.null_count
        if _is_text(t):
            text = _TextColumn.of(arr, lengths)
            # short values (ids, names) also by their first bytes: rows of the same template sentence
            # from different files differ in little else
            short = np.less_equal(lengths, SHORT_TEXT, out=work.get("short", n, bool))
            if short.all():  # (an id column: no row picking)
                h ^= text.heads(None, lengths, work)
            elif short.any():
                rows = np.flatnonzero(short)
                h[rows] ^= text.heads(rows, lengths[rows], work)
            fold(lengths.view(_U64))
            texts.append(text)
        elif nulls == n:  # (all missing: zeros, then every row marked)
            fold(None)
        else:
            vals = (pc.fill_null(arr, False if pa.types.is_boolean(t) else 0) if nulls else arr)
            v = vals.to_numpy(zero_copy_only=False)
            fold(v.astype("<f8", copy=False).view(_U64) if v.dtype.kind == "f"
                 else v.astype("<i8", copy=False).view(_U64))
        if nulls == n:
            np.bitwise_xor(h, _NULL_MARK, out=h)
        elif nulls:
            h[pc.is_null(arr).to_numpy(zero_copy_only=False)] ^= _NULL_MARK
    # (splitmix64's finaliser: the low bits that decide the cuts depend on every bit folded in)
    for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, 0)):
        np.right_shift(h, _U64(shift), out=scratch)
        np.bitwise_xor(h, scratch, out=h)
        if multiplier:
            np.multiply(h, _U64(multiplier), out=h)
    return h, texts


def _cuts(bounds: np.ndarray, most: int) -> np.ndarray:
    """``bounds`` (ascending, first and last included) with a cut every ``most`` past each start
    of a longer gap: cuts of positions, of block numbers alike."""
    long = np.flatnonzero(np.diff(bounds) > most)
    if not len(long):
        return bounds
    return np.unique(np.concatenate([bounds, *(np.arange(bounds[i] + most, bounds[i + 1], most) for i in long)]))


def _keyed(columns: Sequence[Any], n: int, work: _Scratch | None = None) -> _Keyed:
    """Row hashes, text columns, block edges and group bounds of a big table. A block ends after a
    row whose hash is 0 modulo BLOCK_ROWS, a group after one whose hash is 0 modulo its rows (such a
    row ends a block too), so an inserted or changed row moves no edge but its own."""
    work = work or _Scratch()
    row_hash, texts = _row_keys(columns, n, work)
    low = np.bitwise_and(row_hash, _U64(BLOCK_ROWS - 1), out=work.get("scratch", n, _U64))
    ends = np.flatnonzero(low == 0) + 1  # (BLOCK_ROWS: a power of 2)
    edges = _cuts(np.unique(np.concatenate(([0], ends, [n]))), MAX_BLOCK_ROWS)
    inner = edges[1:-1]
    ends_group = (row_hash[inner - 1] & _U64(BLOCK_ROWS * GROUP_BLOCKS - 1)) == 0
    groups = np.concatenate(([0], np.flatnonzero(ends_group) + 1, [len(edges) - 1]))
    return _Keyed(row_hash, texts, edges, _cuts(groups, MAX_GROUP_BLOCKS))


def table_sheet(name: str, df: pd.DataFrame | None, header: list[str],
                memo: MutableMapping[str, Any] | None = None, headers: _Headers | None = None,
                work: _Scratch | None = None) -> Sheet:
    """A season table (problems, figures, …) as a sheet: widths and types from the table, rows as
    XML generated column by column. With ``memo``, a big table's blocks come from the memo where it
    has them (see above): a rerun after one changed file renders (in one batch) and compresses only
    the blocks it touched."""
    df = _limit_rows(name, df)
    if df is None or not len(df):
        return Sheet(name, columns_of(None if df is None else df.head(WIDTH_SAMPLE), header), 0, [])
    columns = _arrow_columns(df)  # (one conversion for the headers' key, the XML and the keys)
    if len(df) < MEMO_MIN_ROWS:  # (a small table over ~1,000 chunks costs more to walk than to join)
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
    cols = (headers or _Headers(None)).columns(df, columns, header)
    wrap = {c.name for c in cols if c.wrap}
    names = [c.name for c in cols]
    if memo is None or len(df) < MEMO_MIN_ROWS or not len(df.columns):
        xml = _text_data(_joined_cells(columns, names, wrap))[0] if len(df.columns) else b""
        return Sheet(name, cols, len(df), [deflate(xml)])
    keyed = _keyed(columns, len(df), work)
    # a block's XML depends on its rows, the columns' dtypes and which columns wrap
    schema = repr([(c, str(t), c in wrap) for c, t in zip(names, df.dtypes, strict=True)]).encode()
    memo_key = f"xlsx-blocks{KEY_VERSION}-{name}-" + hashlib.sha1(schema).hexdigest()

    def render(blocks: list[int]) -> list[Deflated]:
        return _render_blocks(columns, names, wrap, keyed.edges, blocks)
    return Sheet(name, cols, len(df), _memo_blocks(memo, memo_key, keyed, render))


Pack = tuple[list[bytes], bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# how the memo keeps blocks: their keys, compressed bytes back to back, where each ends in them, and
# their CRCs, sizes and shifts (a few objects to unpickle, not one per block: ~3x faster to read)


def _pack(keys: list[bytes], pieces: Callable[[bytes], tuple[bytes | memoryview, int, int, int]]) -> Pack:
    got = [pieces(k) for k in keys]
    ends = np.zeros(len(got) + 1, dtype=np.int64)
    np.cumsum([len(g[0]) for g in got], out=ends[1:])
    return (keys, b"".join(g[0] for g in got), ends, np.array([g[1] for g in got], dtype=np.uint32),
            np.array([g[2] for g in got], dtype=np.int64), np.array([g[3] for g in got], dtype=np.uint32))


class _Stored:
    """The blocks the memo holds for a table (a base pack and a recent one), found by key."""

    def __init__(self, *packs: Pack | None) -> None:
        self.packs = [p for p in packs if p is not None]
        self.views = [memoryview(p[1]) for p in self.packs]
        self.where: dict[bytes, tuple[int, int]] = {}
        for j, p in enumerate(self.packs):
            self.where.update(zip(p[0], zip(itertools.repeat(j), range(len(p[0])), strict=False), strict=True))

    def piece(self, key: bytes) -> tuple[memoryview, int, int, int]:
        j, i = self.where[key]
        _, _, ends, crcs, sizes, shifts = self.packs[j]
        return self.views[j][ends[i]:ends[i + 1]], int(crcs[i]), int(sizes[i]), int(shifts[i])

    def run(self, keys: Sequence[bytes]) -> memoryview | None:
        """The bytes of these blocks in one slice when they lie in order in one pack (a group the
        memo knew: no join)."""
        first = self.where.get(keys[0])
        if first is None:
            return None
        j, i = first
        pack = self.packs[j]
        if i + len(keys) > len(pack[0]) or pack[0][i:i + len(keys)] != list(keys):
            return None
        return self.views[j][pack[2][i]:pack[2][i + len(keys)]]


def _read_pack(memo: Mapping[str, Any], key: str) -> Pack | None:
    got = _read_memo_value(memo, key)
    return got if isinstance(got, tuple) and len(got) == 6 else None


def _memo_blocks(memo: MutableMapping[str, Any], memo_key: str, keyed: _Keyed,
                 render: Callable[[list[int]], list[Deflated]]) -> Iterator[Deflated]:
    """The table's body, one piece per group of blocks, from the memo or rendered (in batches: a
    few Arrow calls per batch).

    Memo entries: ``memo_key + "+groups"``, the last run's groups; ``memo_key``, the blocks of some
    earlier run, and ``memo_key + "+new"``, those of the last run it lacks. A rerun after a small
    change writes the groups (~0.3 MB) and the second (a few hundred blocks), not the table's ~20 MB
    of blocks; the first is written again once blocks it lacks or no longer needs pass a quarter of
    the table's."""
    edges, groups = keyed.edges, keyed.groups
    rows = np.diff(edges)
    group_keys = keyed.keys(edges[groups[:-1]], edges[groups[1:]])
    known = _read_memo_value(memo, memo_key + "+groups")
    known = known if isinstance(known, dict) else {}
    entries: list[Group | None] = [None] * len(group_keys)
    block_keys: list[bytes] = [b""] * (len(edges) - 1)
    for g, gk in enumerate(group_keys):
        a, b = int(groups[g]), int(groups[g + 1])
        entry = known.get(gk)
        if entry is not None and entry[1] == tuple(rows[a:b].tolist()):  # (cut alike: always, but
            entries[g] = entry                                             # for rows forced apart)
            block_keys[a:b] = entry[0]
    fresh = [g for g, e in enumerate(entries) if e is None]
    if fresh:  # the blocks of groups the memo does not know, keyed one by one
        todo = np.concatenate([np.arange(groups[g], groups[g + 1]) for g in fresh])
        for i, k in zip(todo.tolist(), keyed.keys(edges[todo], edges[todo + 1]), strict=True):
            block_keys[i] = k
    base, recent = _read_pack(memo, memo_key), _read_pack(memo, memo_key + "+new")
    stored = _Stored(base, recent)
    made: dict[bytes, tuple[bytes, int, int, int]] = {}
    missing, claimed = [], set()
    for i, k in enumerate(block_keys):
        if k not in stored.where and k not in claimed:
            claimed.add(k)
            missing.append(i)
    for batch in _batches(missing, edges):
        for i, piece in zip(batch, render(batch), strict=True):
            made[block_keys[i]] = (piece.data, piece.crc, piece.size, _shift(piece))

    def piece(k: bytes) -> tuple[bytes | memoryview, int, int, int]:
        return made[k] if k in made else stored.piece(k)

    members = [block_keys[groups[g]:groups[g + 1]] for g in fresh]
    pieces = [[piece(k) for k in ks] for ks in members]
    sums = crc32_concat_many([([p[1] for p in ps], [p[3] for p in ps]) for ps in pieces])
    for g, ks, ps, (crc, shift) in zip(fresh, members, pieces, sums, strict=True):
        entries[g] = (tuple(ks), tuple(rows[groups[g]:groups[g + 1]].tolist()), crc, sum(p[2] for p in ps), shift)
    season: dict[bytes, Group] = {}
    for gk, entry in zip(group_keys, entries, strict=True):
        assert entry is not None
        season[gk] = entry
        data = stored.run(entry[0])
        yield Deflated(data if data is not None else b"".join(piece(k)[0] for k in entry[0]),
                       entry[2], entry[3], entry[4])
    if fresh or season.keys() != known.keys():
        memo[memo_key + "+groups"] = season  # this season's groups only
    used = list(dict.fromkeys(block_keys))  # this season's blocks, in order (a known group's in a row)
    in_base = set(base[0]) if base is not None else set()
    added = [k for k in used if k not in in_base]
    stale = len(in_base) - (len(used) - len(added))  # base blocks this season no longer has
    if base is None or stale + len(added) > len(used) // 4:
        memo[memo_key] = _pack(used, piece)  # this season's blocks only: the entry does not grow
        added = []
    if added != (recent[0] if recent is not None else []):
        memo[memo_key + "+new"] = _pack(added, piece)


def _shift(block: Deflated) -> int:
    return block.shift if block.shift >= 0 else crc32_shift(block.size)


class _Headers:
    """The columns (header, kind, width, wrap) of the sheets, from the memo when the rows that decide
    them (a table's first WIDTH_SAMPLE) are ones seen before: :func:`columns_of` reads each of those
    cells in Python (~20 ms a run over the season's tables). Kept for tables of plain columns only
    (numbers, booleans, text), which the digest of their rows tells apart exactly."""

    KEY = f"xlsx-columns{KEY_VERSION}"

    def __init__(self, memo: MutableMapping[str, Any] | None) -> None:
        self.memo = memo
        known = _read_memo_value(memo, self.KEY) if memo is not None else None
        self.known: dict[bytes, tuple[tuple[str, str, int, bool], ...]] = known if isinstance(known, dict) else {}
        self.seen: dict[bytes, tuple[tuple[str, str, int, bool], ...]] = {}

    def columns(self, df: pd.DataFrame, columns: list[Any] | None, header: list[str]) -> list[Column]:
        """:func:`columns_of` the table's first rows (``columns``: the table as Arrow arrays, if
        made already)."""
        head = df.head(WIDTH_SAMPLE)
        key = self._key(head, columns, header) if self.memo is not None else None
        if key is None:
            return columns_of(head, header)
        spec = self.known.get(key)
        if spec is None:
            spec = tuple((c.name, c.kind, c.width, c.wrap) for c in columns_of(head, header))
        self.seen[key] = spec
        return [Column(name, kind, [], width, wrap) for name, kind, width, wrap in spec]

    @staticmethod
    def _key(head: pd.DataFrame, columns: list[Any] | None, header: list[str]) -> bytes | None:
        if not all(is_bool_dtype(t) or is_numeric_dtype(t) or isinstance(t, pd.StringDtype) for t in head.dtypes):
            return None
        if columns is None:
            columns = _arrow_columns(head)
        if not all(isinstance(c, pa.Array | pa.ChunkedArray) for c in columns):
            return None
        columns = [c.slice(0, len(head)) for c in columns]
        row_hash, texts = _row_keys(columns, len(head))
        digest = hashlib.sha1(repr(([str(c) for c in head.columns], [str(t) for t in head.dtypes], header)).encode())
        digest.update(row_hash)
        for text in texts:
            for m in range(len(text.data)):
                digest.update(text.chunk_bytes(m))
        return digest.digest()

    def save(self) -> None:
        if self.memo is not None and self.seen.keys() != self.known.keys():
            self.memo[self.KEY] = self.seen


def _read_memo_value(memo: Mapping[str, Any] | None, key: str) -> Any:
    try:
        return None if memo is None else memo.get(key)
    except Exception:  # noqa: BLE001 - an unreadable memo entry is a miss
        return None


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


def _render_blocks(columns: list[Any], names: list[str], wrap: set[str], edges: np.ndarray,
                   blocks: list[int]) -> list[Deflated]:
    """The given blocks' rows as XML in one pass (the table's Arrow columns sliced, not taken: a
    take from ~1,000 chunks joins them all first), cut at the blocks' edges and compressed each."""
    ranges: list[list[int]] = []
    for i in blocks:  # (neighbouring blocks as one range)
        a, b = int(edges[i]), int(edges[i + 1])
        if ranges and ranges[-1][1] == a:
            ranges[-1][1] = b
        else:
            ranges.append([a, b])
    picked = [_row_ranges(c, ranges) for c in columns]
    rows = _joined_cells(picked, names, wrap)
    if rows.type != pa.large_string():
        rows = rows.cast(pa.large_string())
    data = memoryview(rows.buffers()[2] or b"")  # (compressed from Arrow's buffer: no copy)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset:rows.offset + len(rows) + 1]
    out, r = [], 0
    for i in blocks:
        n = int(edges[i + 1] - edges[i])
        out.append(deflate(data[offsets[r]:offsets[r + n]]))
        r += n
    return out


def _row_ranges(column: Any, ranges: list[list[int]]) -> Any:
    """These rows of a column (an Arrow array, chunked or not, or a Series)."""
    if isinstance(column, pa.Array | pa.ChunkedArray):
        pieces = [column.slice(a, b - a) for a, b in ranges]
        return pa.chunked_array([c for p in pieces for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])],
                                type=column.type)
    return column.iloc[np.concatenate([np.arange(a, b) for a, b in ranges])]


class _CountOff(Exception):
    """The fragments hold another number of rows than the sentences sheet was begun with."""


def sentence_sheet(frames: dict[str, pd.DataFrame], parts: Sequence[Mapping[str, Any]], key: str,
                   headers: _Headers | None = None, expected: int | None = None) -> Sheet:
    """The sentences sheet from the files' fragments. Widths come from the season's first rows
    (read from the first files' Arrow tables); a file whose fragment has other columns than the
    first file's, or that crosses Excel's row limit, is rebuilt from its rows.

    The sheet's head gives its row count. ``expected`` (the documents table's count) saves reading
    every fragment once more for it (~50 ms at 1,000 reports); the body then checks it, fragment by
    fragment, and raises :class:`_CountOff` where it is wrong (the caller writes the sheet again)."""
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
    cols = (headers or _Headers(None)).columns(sample, None, list(header))
    for c in cols:
        c.wrap = c.name in SENTENCE_WRAP
    if expected is not None and 0 <= expected < MAX_ROWS:
        total, checked = expected, True
    else:  # each fragment read for its row count, then again for its bytes (holding the season's
        # ~40 MB instead cost as much in page faults in the forked child)
        total, checked = sum(p[key].rows for p in parts), False
    n = min(total, MAX_ROWS - 1)
    if total > n:
        print(f"huibian: tables.xlsx sheet sentences: {total} rows, Excel holds {n}; "
              "the rest are in the parquet file", file=sys.stderr)

    def body() -> Iterator[Deflated]:
        done = 0
        for p in parts:
            part: SheetPart = p[key]
            if checked and done + part.rows > n:
                raise _CountOff
            if done >= n and not checked:
                return
            if part.columns == header and done + part.rows <= n:
                yield part.body
            elif part.rows:  # rare: rebuilt from the file's own rows
                rows = _rows_of(p, frames, header, n - done)
                yield deflate(rows_xml(rows, SENTENCE_WRAP))
            done += part.rows
        if checked and done != n:
            raise _CountOff
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
    headers, work = _Headers(memo), _Scratch()
    sheets: list[Sheet] = []
    for name, columns in SHEETS.items():
        if name == "sentences":
            sheets.append(sentence_sheet(frames, parts, key, headers, _documents_sentences(frames)))
            continue
        df = frames.get(name)
        sheets.append(table_sheet(name, df if isinstance(df, pd.DataFrame) else None, columns, memo, headers, work))
    for name in EXTRA_SHEETS:
        df = frames.get(name)
        if isinstance(df, pd.DataFrame):
            sheets.append(table_sheet(name, df, [], memo, headers, work))
    headers.save()
    tmp = path.with_name(path.name + ".part")
    try:
        _write_package(tmp, sheets)
    except _CountOff:  # the documents table's count was not the fragments': counted, written again
        i = [s.name for s in sheets].index("sentences")
        sheets[i] = sentence_sheet(frames, parts, key, headers)
        _write_package(tmp, sheets)
    tmp.replace(path)
    return {s.name: s.rows for s in sheets}


def _documents_sentences(frames: dict[str, pd.DataFrame]) -> int | None:
    """The season's sentence count by the documents table (a run's: the files' sentences), if any."""
    docs = frames.get("documents")
    if not isinstance(docs, pd.DataFrame) or "n_sentences" not in docs.columns:
        return None
    return int(pd.to_numeric(docs["n_sentences"], errors="coerce").fillna(0).sum())


def _write_package(path: Path, sheets: list[Sheet]) -> None:
    with open(path, "wb", buffering=0) as fh:  # (unbuffered: the sheets go out in few big writes)
        z = ZipWriter(fh)
        for name, text in _workbook_files(sheets).items():
            z.write(name, text.encode("utf-8"))
        for i, sheet in enumerate(sheets, start=1):
            head = stored(_sheet_head(sheet.cols, sheet.rows, i == 1).encode("utf-8"))
            tail = stored(_sheet_tail(sheet.cols, sheet.rows).encode("utf-8"))
            z.write_pieces(f"xl/worksheets/sheet{i}.xml", itertools.chain([head], sheet.body, [tail]))
        z.close()
