"""PDF: text layer with pypdfium2 (fast), tables with pdfplumber (only on pages that draw rules),
OCR for pages without a text layer.  Physical page and printed folio kept on every block;
running heads and page numbers come out as ``furniture`` blocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ..model import Document
from .base import IngestError, Limits
from .layout import Line, Page, pages_to_blocks

_LINE = re.compile(r"[^\r\n]+")
#: a page drawing at least this many path objects may hold a ruled table → ask pdfplumber
TABLE_PATHS = 6
#: the most scanned pages OCR'd per file (OCR costs seconds a page)
MAX_OCR_PAGES = 40


def _garbled(text: str) -> bool:
    """A text layer of private-use or replacement characters (font without a Unicode map)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return True
    bad = sum(1 for c in chars if c == "\ufffd" or "\ue000" <= c <= "\uf8ff" or ord(c) < 32)
    return bad / len(chars) > 0.3


def page_lines(textpage: pdfium.PdfTextPage) -> list[Line]:
    """The page's text lines with their box (first and last glyph), in content order."""
    n = textpage.count_chars()
    if n <= 0:
        return []
    text = textpage.get_text_range(0, n)
    if len(text) != n:  # chars outside UCS-2 shift the index: lines without geometry
        return [Line(m.group()) for m in _LINE.finditer(textpage.get_text_bounded()) if m.group().strip()]
    lines: list[Line] = []
    for m in _LINE.finditer(text):
        s = m.group()
        stripped = s.strip()
        if not stripped:
            continue
        i0 = m.start() + (len(s) - len(s.lstrip()))
        i1 = m.start() + len(s.rstrip()) - 1
        l0, b0, r0, t0 = textpage.get_charbox(i0, loose=True)
        l1, b1, r1, t1 = textpage.get_charbox(i1, loose=True)
        lines.append(Line(text=stripped, x0=l0, x1=r1, top=max(t0, t1), bottom=min(b0, b1),
                          height=max(t0 - b0, t1 - b1)))
    return lines


def _count_objects(page: pdfium.PdfPage) -> tuple[int, int]:
    """(path objects, image objects) on the page — raw calls, ~µs per object."""
    paths = images = 0
    for i in range(pdfium_c.FPDFPage_CountObjects(page)):
        t = pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(page, i))
        if t == pdfium_c.FPDF_PAGEOBJ_PATH:
            paths += 1
        elif t in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM):
            images += 1
    return paths, images


def _tables(path: Path, pages: list[Page], candidates: list[int]) -> None:
    """pdfplumber's ruled-table finder on the candidate pages; table text leaves the line flow."""
    import pdfplumber

    with pdfplumber.open(str(path)) as plumb:
        for pi in candidates:
            page = pages[pi]
            ppage = plumb.pages[page.number - 1]
            found = [t for t in ppage.find_tables() if len(t.rows) >= 2]
            for t in found:
                rows = t.extract()
                if not rows or max(len(r) for r in rows) < 2:
                    continue
                x0, top, x1, bottom = t.bbox
                y_top, y_bottom = page.height - top, page.height - bottom  # pdfplumber y runs down

                def inside(ln: Line, x0: float = x0, x1: float = x1, y_top: float = y_top,
                           y_bottom: float = y_bottom) -> bool:
                    if ln.top is None or ln.bottom is None or ln.x0 is None:
                        return False
                    mid = (ln.top + ln.bottom) / 2
                    return y_bottom - 1 <= mid <= y_top + 1 and x0 - 1 <= ln.x0 <= x1 + 1

                page.lines = [ln for ln in page.lines if not inside(ln)]
                page.tables.append((y_top, [[c or "" for c in r] for r in rows]))


class PdfBackend:
    name = "pdf"
    suffixes = (".pdf",)
    isolated = True
    limits = Limits(timeout=240.0, memory_mb=3072)

    def accepts(self, path: Path, head: bytes) -> bool:
        return b"%PDF-" in head[:1024]  # readers allow junk before the header

    def prepare(self) -> None:
        """Import what the child needs once in the parent, so each fork starts warm."""
        import pdfplumber  # noqa: F401

    def convert(self, path: Path, doc: Document) -> Document:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            if "password" in str(e).lower():
                raise IngestError("encrypted PDF (password required)") from None
            raise IngestError(f"corrupt or unreadable PDF ({e})") from None
        pages: list[Page] = []
        table_pages: list[int] = []
        scanned: list[int] = []
        try:
            n_pages = len(pdf)
            if n_pages == 0:
                raise IngestError("PDF has no pages")
            for pno in range(n_pages):
                page = pdf[pno]
                textpage = page.get_textpage()
                lines = page_lines(textpage)
                page_obj = Page(number=pno + 1, height=page.get_height(), lines=lines)
                paths, images = _count_objects(page)
                if _garbled("".join(ln.text for ln in lines)):
                    page_obj.lines = []
                    if images:
                        scanned.append(pno)
                elif paths >= TABLE_PATHS:
                    table_pages.append(pno)
                pages.append(page_obj)
                textpage.close()
                page.close()
            if table_pages:
                _tables(path, pages, table_pages)
            if scanned:
                from .ocr import ocr_pdf_pages

                for pno, lines in ocr_pdf_pages(pdf, scanned[:MAX_OCR_PAGES]).items():
                    pages[pno].lines = lines
                if len(scanned) > MAX_OCR_PAGES:
                    doc.warnings.append(f"only the first {MAX_OCR_PAGES} of {len(scanned)} scanned pages OCR'd")
                doc.meta["ocr_pages"] = str(min(len(scanned), MAX_OCR_PAGES))
        finally:
            pdf.close()
        doc.blocks = pages_to_blocks(pages)
        doc.meta["pages"] = str(n_pages)
        if not any(b.text.strip() for b in doc.blocks if b.kind != "furniture"):
            raise IngestError("PDF has no readable text (no text layer and nothing OCR could read)")
        return doc
