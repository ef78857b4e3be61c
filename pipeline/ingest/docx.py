"""Word 2007+ documents with python-docx: paragraphs with heading levels, tables as tables,
footnotes appended; headers and footers never mixed into the body.

Before python-docx sees the file, the ZIP is checked for bombs and every XML part for a DOCTYPE
(XXE); python-docx's own parser does not resolve entities either.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from ..model import Block, Document
from .base import IngestError, Limits, check_ooxml
from .layout import table_block

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)", re.I)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _iter_body(d: DocxDocument, parent: etree._Element | None = None) -> Iterator[Paragraph | Table]:
    """Body paragraphs and tables in order, looking inside content controls (w:sdt)."""
    for child in (parent if parent is not None else d.element.body).iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, d)
        elif tag == "tbl":
            yield Table(child, d)
        elif tag in ("sdt", "sdtContent", "customXml"):
            yield from _iter_body(d, child)


def _heading_level(p: Paragraph) -> int | None:
    """Heading level from the style (Heading N / 标题 N / Title) or the outline level Word stores."""
    style = p.style
    name = style.name if style is not None else ""
    m = _HEADING_STYLE.match(name or "")
    if m:
        return int(m.group(1))
    if name in ("Title", "标题"):
        return 0
    lvl = p._p.find(f"{_W}pPr/{_W}outlineLvl")
    while lvl is None and style is not None:  # outline level may sit on the style or its base
        lvl = style.element.find(f"{_W}pPr/{_W}outlineLvl")
        style = style.base_style
    if lvl is not None:
        v = lvl.get(f"{_W}val")
        if v is not None and v.isdigit() and int(v) < 9:
            return int(v) + 1
    return None


def _table_rows(t: Table) -> list[list[str]]:
    rows: list[list[str]] = []
    for r in t.rows:
        cells, seen = [], set()
        for c in r.cells:  # a merged cell comes back once per grid column: keep it once
            if id(c._tc) in seen:
                continue
            seen.add(id(c._tc))
            cells.append(c.text.strip())
        rows.append(cells)
    return rows


def _footnotes(path: Path) -> list[str]:
    """Footnote texts (python-docx has no API for them): word/footnotes.xml, parsed safely."""
    with zipfile.ZipFile(path) as z:
        if "word/footnotes.xml" not in z.namelist():
            return []
        root = etree.fromstring(z.read("word/footnotes.xml"), _SAFE_XML)
    notes = []
    for fn in root.iter(f"{_W}footnote"):
        if fn.get(f"{_W}type") in ("separator", "continuationSeparator", "continuationNotice"):
            continue
        text = "".join(t.text or "" for t in fn.iter(f"{_W}t")).strip()
        if text:
            notes.append(text)
    return notes


class DocxBackend:
    name = "docx"
    suffixes = (".docx", ".docm", ".dotx")
    isolated = True
    limits = Limits(timeout=90.0, memory_mb=2048)

    def accepts(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04")

    def convert(self, path: Path, doc: Document) -> Document:
        check_ooxml(path, "Word document", "word/document.xml")
        try:
            d = docx.Document(str(path))
        except (zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError) as e:
            raise IngestError(f"corrupt Word file ({type(e).__name__}: {e})") from None
        for i, item in enumerate(_iter_body(d)):
            if isinstance(item, Paragraph):
                text = item.text.strip()
                if not text:
                    continue
                level = _heading_level(item)
                if level is not None:
                    doc.blocks.append(Block(text=text, para=i, kind="heading", level=level))
                else:
                    doc.blocks.append(Block(text=text, para=i))
            else:
                rows = _table_rows(item)
                if any(any(c for c in r) for r in rows):
                    doc.blocks.append(table_block(rows, i))
        n = len(doc.blocks)
        for k, note in enumerate(_footnotes(path)):
            doc.blocks.append(Block(text=note, para=100_000 + k))
        if len(doc.blocks) > n:
            doc.meta["footnotes"] = str(len(doc.blocks) - n)
        props = d.core_properties
        if props.title:
            doc.meta.setdefault("title", props.title.strip())
        if not doc.blocks:
            raise IngestError("Word document has no text")
        return doc
