"""Spreadsheets and CSV files with one report per row (a column of text, columns of unit / title /
date): each row becomes its own Document, source ``table.xlsx/<row-key>``.

Columns are found by their header (``dictionaries/table_columns.txt``) or named in the run's
config (``[ingest.table] text = "正文"``); without a header the longest-text column is the report
text.  A spreadsheet with no column of prose (a statistics table) is kept whole as table blocks.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..dictionaries import read_table
from ..model import Document, stable_id
from .base import IngestError, Limits, check_ooxml
from .layout import table_block
from .text import decode, text_blocks

ROLES = ("text", "unit", "title", "date", "key", "author")
#: a column whose cells average at least this many characters holds report text
MIN_TEXT_CHARS = 30
MAX_ROWS = 100_000


def _norm(s: Any) -> str:
    return re.sub(r"\s+", "", str(s or "")).lower()


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for role, *names in read_table("table_columns.txt"):
        for n in names:
            out.setdefault(_norm(n), role)
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat()[:10] if getattr(v, "hour", 0) == 0 else v.isoformat(sep=" ")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _columns(header: list[str], rows: list[list[str]], config: dict[str, str]) -> dict[str, int]:
    """role → column index, from the config, the header aliases, then the data."""
    normed = [_norm(h) for h in header]
    cols: dict[str, int] = {}
    for role in ROLES:
        want = config.get(role)
        if want is not None:
            if _norm(want) not in normed:
                raise IngestError(f"column '{want}' named in the config for {role} is not in the header "
                                  f"({', '.join(h for h in header if h)})")
            cols[role] = normed.index(_norm(want))
    aliases = _aliases()
    for i, h in enumerate(normed):
        role = aliases.get(h)
        if role and role not in cols and i not in cols.values():
            cols[role] = i
    if "text" not in cols:
        width = max((len(r) for r in rows), default=0)
        means = [(sum(len(r[i]) for r in rows if i < len(r)) / max(len(rows), 1), i) for i in range(width)
                 if i not in cols.values()]
        if means and max(means)[0] >= MIN_TEXT_CHARS:
            cols["text"] = max(means)[1]
    return cols


def sheet_documents(name: str, header: list[str], rows: list[tuple[int, list[str]]], source: str,
                    fmt: str, config: dict[str, str]) -> list[Document]:
    """One sheet → one Document per report row (or the whole sheet as a table document)."""
    cols = _columns(header, [r for _, r in rows], config)
    if "text" not in cols:  # no prose column: not one-report-per-row; keep it whole as a table
        doc = Document(doc_id=stable_id(source, name), source=source if not name else f"{source}/{name}",
                       format=fmt)
        body = [header] + [r for _, r in rows]
        doc.blocks = [table_block(body[i:i + 200], i) for i in range(0, len(body), 200)]
        doc.warnings.append("no column of report text: kept as a table")
        if not any(b.text for b in doc.blocks):
            doc.reject("spreadsheet is empty")
        return [doc]
    ti = cols["text"]
    keys = [r[cols["key"]] if "key" in cols and cols["key"] < len(r) else "" for _, r in rows]
    unique = len(set(keys)) == len(keys) and all(keys)
    docs = []
    for (rowno, r), key in zip(rows, keys, strict=True):
        label = re.sub(r"[/\\\n\r\t]+", "_", key) if unique else f"row{rowno}"
        src = f"{source}/{name}/{label}" if name else f"{source}/{label}"
        text = r[ti] if ti < len(r) else ""
        doc = Document(doc_id=stable_id(src, text), source=src, format=fmt)
        for role in ("unit", "title", "date", "author", "key"):
            if role in cols and cols[role] < len(r) and r[cols[role]]:
                doc.meta[role] = r[cols[role]]
        doc.meta["row"] = str(rowno)
        doc.blocks = text_blocks(text.replace("\r\n", "\n"))
        if not doc.blocks:
            doc.reject(f"row {rowno} has no text in column '{header[ti] or ti + 1}'")
        docs.append(doc)
    return docs


def _split_header(values: list[list[str]]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    numbered = [(i + 1, r) for i, r in enumerate(values) if any(r)]
    if not numbered:
        return [], []
    header = numbered[0][1]
    aliases = _aliases()
    has_header = any(_norm(h) in aliases for h in header) or all(len(h) < MIN_TEXT_CHARS for h in header)
    if not has_header:
        return [f"{i + 1}" for i in range(len(header))], numbered
    return header, numbered[1:]


def read_xlsx(path: Path) -> list[tuple[str, list[list[str]]]]:
    import openpyxl

    check_ooxml(path, "Excel workbook", "xl/workbook.xml")
    try:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as e:
        raise IngestError(f"corrupt Excel file ({type(e).__name__}: {e})") from None
    sheets = []
    try:
        for ws in wb.worksheets:
            values = []
            for i, row in enumerate(ws.iter_rows(values_only=True)):
                if i >= MAX_ROWS:
                    break
                values.append([_cell(v) for v in row])
            sheets.append((ws.title, values))
    finally:
        wb.close()
    return sheets


def read_csv(path: Path) -> tuple[list[list[str]], str]:
    text, enc = decode(path.read_bytes())
    try:
        dialect: Any = csv.Sniffer().sniff(text[:20_000], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    csv.field_size_limit(50 * 1024 * 1024)
    try:
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as e:
        raise IngestError(f"malformed CSV ({e})") from None
    return rows[:MAX_ROWS], enc


class TableBackend:
    name = "xlsx"
    suffixes = (".xlsx", ".xlsm", ".csv", ".tsv", ".xls", ".et")
    isolated = True
    limits = Limits(timeout=180.0, memory_mb=2048)

    def accepts(self, path: Path, head: bytes) -> bool:
        suffix = path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            return head.startswith(b"PK\x03\x04")
        if suffix in (".xls", ".et"):
            return head.startswith((b"\xd0\xcf\x11\xe0", b"PK\x03\x04"))
        return not head.startswith((b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))

    def prepare(self) -> None:
        import openpyxl  # noqa: F401

    def convert_all(self, path: Path, source: str, config: dict[str, str]) -> list[Document]:
        suffix = path.suffix.lower()
        fmt = suffix.lstrip(".")
        enc = ""
        if suffix in (".csv", ".tsv"):
            rows, enc = read_csv(path)
            sheets = [("", rows)]
        elif suffix in (".xls", ".et"):
            from .legacy import convert_with_soffice

            with tempfile.TemporaryDirectory(prefix="huibian-soffice-") as tmp:
                sheets = read_xlsx(convert_with_soffice(path, "xlsx", Path(tmp)))
        else:
            sheets = read_xlsx(path)
        wanted = config.get("sheet")
        sheets = [(n, v) for n, v in sheets if any(any(r) for r in v) and (not wanted or n == wanted)]
        if not sheets:
            raise IngestError("spreadsheet has no data" + (f" in sheet '{wanted}'" if wanted else ""))
        docs: list[Document] = []
        for name, values in sheets:
            header, rows = _split_header(values)
            docs += sheet_documents(name if len(sheets) > 1 else "", header, rows, source, fmt, config)
        for d in docs:
            d.encoding = enc
        return docs
