"""PDF with a text layer: fast text with pypdfium2, one block per line, physical page kept."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

from ..model import Block, Document
from .base import IngestError


class PdfBackend:
    name = "pdf"
    suffixes = (".pdf",)

    def accepts(self, path: Path, head: bytes) -> bool:
        return head.lstrip()[:5] == b"%PDF-"

    def convert(self, path: Path, doc: Document) -> Document:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            msg = str(e).lower()
            if "password" in msg:
                raise IngestError("encrypted PDF (password required)") from None
            raise IngestError(f"corrupt or unreadable PDF ({e})") from None
        para = 0
        try:
            for pno in range(len(pdf)):
                page = pdf[pno]
                textpage = page.get_textpage()
                text = textpage.get_text_bounded()
                for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                    if line.strip():
                        doc.blocks.append(Block(text=line.rstrip(), para=para, phys_page=pno + 1))
                        para += 1
                textpage.close()
                page.close()
        finally:
            pdf.close()
        if not doc.blocks:
            raise IngestError("PDF has no text layer (scanned); OCR is not available")
        return doc
