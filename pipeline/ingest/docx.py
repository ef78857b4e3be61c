"""Word 2007+ documents with python-docx: paragraphs with heading levels, tables as tables."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..model import Block, Document
from .base import IngestError

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)", re.I)


def _iter_body(d: DocxDocument):
    body = d.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, d)
        elif tag == "tbl":
            yield Table(child, d)


class DocxBackend:
    name = "docx"
    suffixes = (".docx",)

    def accepts(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04")

    def convert(self, path: Path, doc: Document) -> Document:
        try:
            with zipfile.ZipFile(path) as z:
                if "word/document.xml" not in z.namelist():
                    raise IngestError("not a Word document (no word/document.xml)")
            d = docx.Document(str(path))
        except (zipfile.BadZipFile, KeyError, ValueError) as e:
            raise IngestError(f"corrupt Word file ({e})") from None
        for i, item in enumerate(_iter_body(d)):
            if isinstance(item, Paragraph):
                text = item.text.strip()
                if not text:
                    continue
                style = item.style.name if item.style is not None else ""
                m = _HEADING_STYLE.match(style or "")
                if m or style == "Title":
                    level = int(m.group(1)) if m else 0
                    doc.blocks.append(Block(text=text, para=i, kind="heading", level=level))
                else:
                    doc.blocks.append(Block(text=text, para=i))
            else:
                rows = [[c.text.strip() for c in r.cells] for r in item.rows]
                if any(any(c for c in r) for r in rows):
                    doc.blocks.append(Block(text="\t".join(rows[0]), para=i, kind="table", rows=rows))
        if not doc.blocks:
            raise IngestError("Word document has no text")
        return doc
