"""PDF: text layer with pypdfium2 (fast), tables with pdfplumber (only on pages that draw rules),
OCR for pages without a text layer.  Physical page and printed folio kept on every block;
running heads and page numbers come out as ``furniture`` blocks.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ..model import Document
from .base import IngestError, Limits
from .layout import Line, Page, pages_to_blocks

_LINE = re.compile(r"[^\r\n]+")
_CJK_SPACE = re.compile(r"[^\x00-\x7f] (?=[^\x00-\x7f])")
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


def _stream_lines(textpage: pdfium.PdfTextPage, text: str) -> list[Line] | None:
    """Lines as pdfium lays them out, boxed by their first and last glyph (two calls a line).

    Returns None when the page does not read in visual order: two lines on one visual row, or
    a gap pdfium filled with a space between two Chinese characters (a glyph drawn out of order).
    """
    raw = textpage.raw
    generated = pdfium_c.FPDFText_IsGenerated
    for m in _CJK_SPACE.finditer(text):
        if generated(raw, m.start() + 1):
            return None
    lines: list[Line] = []
    mids: list[float] = []
    for m in _LINE.finditer(text):
        s = m.group()
        stripped = s.strip()
        if not stripped:
            continue
        i0 = m.start() + (len(s) - len(s.lstrip()))
        i1 = m.start() + len(s.rstrip()) - 1
        l0, b0, r0, t0 = textpage.get_charbox(i0, loose=True)
        l1, b1, r1, t1 = textpage.get_charbox(i1, loose=True)
        line = Line(text=stripped, x0=l0, x1=r1, top=max(t0, t1), bottom=min(b0, b1),
                    height=max(t0 - b0, t1 - b1))
        mid = (line.top + line.bottom) / 2  # type: ignore[operator]
        if abs((t0 + b0) - (t1 + b1)) > line.height or any(  # type: ignore[operator]
                abs(mid - m) < 0.5 * line.height for m in mids):  # type: ignore[operator]
            return None  # a line bent out of shape, or two stream lines on one visual row
        mids.append(mid)
        lines.append(line)
    return lines


def page_lines(textpage: pdfium.PdfTextPage) -> list[Line]:
    """The page's text lines in visual order.

    Fast path: pdfium's own lines. Where its order is not visual (word processors emit quote
    marks from a fallback font after the line, runs out of order), lines are rebuilt from every
    glyph's box: grouped by vertical middle, sorted left to right.
    """
    n = textpage.count_chars()
    if n <= 0:
        return []
    text = textpage.get_text_range(0, n)
    if len(text) != n:  # chars outside UCS-2 shift the index: lines without geometry
        return [Line(m.group()) for m in _LINE.finditer(textpage.get_text_bounded()) if m.group().strip()]
    fast = _stream_lines(textpage, text)
    return fast if fast is not None else _glyph_lines(textpage, text)


def _glyph_lines(textpage: pdfium.PdfTextPage, text: str) -> list[Line]:
    """The page's text lines in visual order, rebuilt from every glyph's box.

    pdfium's character order is the content stream's, which word processors do not keep visual
    (LibreOffice emits quote marks from a fallback font after the line, justified runs out of
    order), so glyphs are grouped by their vertical middle and sorted left to right. Raw pdfium
    calls with one reused rectangle keep this at a few µs per glyph.
    """
    raw = textpage.raw
    rect = pdfium_c.FS_RECTF()
    ref = ctypes.byref(rect)
    loose_box = pdfium_c.FPDFText_GetLooseCharBox
    generated = pdfium_c.FPDFText_IsGenerated
    glyphs: list[tuple[float, float, float, float, str]] = []
    for i, ch in enumerate(text):
        if ch in "\r\n\x02\ufffe" or (ch == " " and generated(raw, i)):
            continue
        if loose_box(raw, i, ref):
            glyphs.append(((rect.top + rect.bottom) / 2, rect.left, rect.right, rect.top - rect.bottom, ch))
    if not glyphs:
        return []
    glyphs.sort(key=lambda g: -g[0])
    heights = sorted(g[3] for g in glyphs)
    tol = 0.45 * heights[len(heights) // 2]
    rows: list[list[tuple[float, float, float, float, str]]] = [[glyphs[0]]]
    for g in glyphs[1:]:
        if rows[-1][0][0] - g[0] <= tol:
            rows[-1].append(g)
        else:
            rows.append([g])
    lines: list[Line] = []
    for row in rows:
        row.sort(key=lambda g: g[1])
        h = max(g[3] for g in row)
        pieces: list[str] = []
        prev = None
        for g in row:
            if prev is not None:
                gap = g[1] - prev[2]
                if gap > 3 * h and pieces and pieces[-1] != "\t":  # far apart: a column/tab stop
                    pieces.append("  ")
                elif (gap > 0.2 * h and prev[4].isascii() and prev[4].isalnum() and g[4].isascii()
                      and g[4].isalnum()):
                    pieces.append(" ")  # Latin words set apart without a space glyph
            pieces.append(g[4])
            prev = g
        line_text = "".join(pieces).strip()
        if line_text:
            mid = row[0][0]
            lines.append(Line(text=line_text, x0=row[0][1], x1=row[-1][2], top=mid + h / 2,
                              bottom=mid - h / 2, height=h))
    return lines


def _count_objects(page: pdfium.PdfPage, kinds: tuple[int, ...], stop: int) -> int:
    """How many objects of ``kinds`` the page draws (raw calls; stops counting at ``stop``)."""
    found = 0
    for i in range(pdfium_c.FPDFPage_CountObjects(page)):
        if pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(page, i)) in kinds:
            found += 1
            if found >= stop:
                break
    return found


def _image_cover(page: pdfium.PdfPage) -> float:
    """Largest share of the page one image covers (a scan covers nearly all of it)."""
    w, h = page.get_size()
    best = 0.0
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    for i in range(pdfium_c.FPDFPage_CountObjects(page)):
        obj = pdfium_c.FPDFPage_GetObject(page, i)
        if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_IMAGE:
            continue
        if pdfium_c.FPDFPageObj_GetBounds(obj, ctypes.byref(left), ctypes.byref(bottom), ctypes.byref(right),
                                          ctypes.byref(top)):
            best = max(best, (right.value - left.value) * (top.value - bottom.value) / max(w * h, 1.0))
    return best


_IMAGES = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM)
_PATHS = (pdfium_c.FPDF_PAGEOBJ_PATH,)


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
                page_text = "".join(ln.text for ln in lines)
                if _garbled(page_text):  # no usable text layer: OCR if it shows an image
                    page_obj.lines = []
                    if _count_objects(page, _IMAGES, 1):
                        scanned.append(pno)
                elif len(page_text.strip()) < 40 and _image_cover(page) > 0.5:
                    scanned.append(pno)  # a scan with only a stamped page number as text
                elif _count_objects(page, _PATHS, TABLE_PATHS) >= TABLE_PATHS:
                    table_pages.append(pno)
                pages.append(page_obj)
                textpage.close()
                page.close()
            if table_pages:
                _tables(path, pages, table_pages)
            if scanned:
                from .ocr import ocr_pdf_pages

                # stop OCR well inside this parser's time limit: a partial text beats a timeout
                try:
                    done = ocr_pdf_pages(pdf, scanned[:MAX_OCR_PAGES], budget=self.limits.timeout * 0.7)
                except IngestError as e:  # OCR engine missing: keep what the text layer has
                    if not any(p.lines for p in pages):
                        raise
                    doc.warnings.append(str(e))
                    done = {}
                for pno, lines in done.items():
                    if lines or _garbled("".join(ln.text for ln in pages[pno].lines)):
                        pages[pno].lines = lines
                if len(done) < len(scanned):
                    doc.warnings.append(f"only {len(done)} of {len(scanned)} scanned pages OCR'd (time/page limit)")
                doc.meta["ocr_pages"] = str(len(done))
        finally:
            pdf.close()
        doc.blocks = pages_to_blocks(pages)
        doc.meta["pages"] = str(n_pages)
        if not any(b.text.strip() for b in doc.blocks if b.kind != "furniture"):
            raise IngestError("PDF has no readable text (no text layer and nothing OCR could read)")
        return doc
