"""Paged text → blocks: running heads and page numbers out, wrapped lines back into paragraphs.

Shared by the PDF text layer and OCR.  Works on positioned lines (y grows upwards, as in PDF), so
the decisions are the ones a reader makes: a line in the top/bottom band repeated on many pages is
a running head; a band line like "— 3 —" is a page number (and gives the printed folio); a line that
reaches the right margin continues in the next line unless that one is indented, set apart or in
another size — also across a page break.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median

from ..dictionaries import read_patterns
from ..model import Block

#: share of the page height at the top and at the bottom where running heads and folios live
BAND = 0.10
_LATIN_START = re.compile(r"^[A-Za-z0-9.,:%/+\-–_@#&*()（）“”\"'’%‰]+")
_ROMAN = re.compile(r"^[ivxlcIVXLC]+$")
_LIST_START = re.compile(r"^\s*(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d+[、.．]\D|第[一二三四五六七八九十]+[章节条部分])")


@dataclass
class Line:
    text: str
    x0: float | None = None
    x1: float | None = None
    top: float | None = None  # y of the top edge (bigger = higher on the page)
    bottom: float | None = None
    height: float | None = None  # glyph height ≈ font size


@dataclass
class Page:
    number: int  # 1-based physical page
    height: float
    lines: list[Line] = field(default_factory=list)
    tables: list[tuple[float, list[list[str]]]] = field(default_factory=list)  # (top y, rows)


@lru_cache(maxsize=1)
def _page_number_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in read_patterns("page_numbers.txt"))


def page_number(text: str) -> tuple[bool, int | None]:
    """(is a page-number line, folio as a number when it is arabic)."""
    compact = re.sub(r"\s+", "", text)
    if not compact or len(compact) > 16:
        return False, None
    for p in _page_number_patterns():
        m = p.fullmatch(compact)
        if m:
            g = m.group(1) if m.groups() else None
            if g and g.isdigit():
                return True, int(g)
            return bool(g is None or _ROMAN.match(g)), None
    return False, None


def _shape(text: str) -> str:
    """A running head with its page number blanked out, so all pages' heads compare equal."""
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _in_band(line: Line, page: Page) -> bool:
    if line.top is None or line.bottom is None or page.height <= 0:
        return False
    return line.top >= page.height * (1 - BAND) or line.bottom <= page.height * BAND


def mark_furniture(pages: list[Page]) -> tuple[set[tuple[int, int]], dict[int, int]]:
    """Which (page, line) are running heads / page numbers, and the folio printed on each page."""
    furniture: set[tuple[int, int]] = set()
    folios: dict[int, int] = {}
    shapes: Counter[str] = Counter()
    for page in pages:
        seen = {_shape(ln.text) for ln in page.lines if _in_band(ln, page)}
        shapes.update(seen)
    repeat = max(2, int(0.4 * len(pages) + 0.5))
    for pi, page in enumerate(pages):
        for li, ln in enumerate(page.lines):
            if not _in_band(ln, page):
                continue
            is_num, folio = page_number(ln.text)
            if is_num:
                furniture.add((pi, li))
                if folio is not None:
                    folios.setdefault(page.number, folio)
            elif len(pages) > 1 and shapes[_shape(ln.text)] >= repeat:
                furniture.add((pi, li))
                nums = re.findall(r"\d+", ln.text)
                if nums and "#" in _shape(ln.text):  # "报告 · 3": the head carries the folio
                    folios.setdefault(page.number, int(nums[-1]))
    return furniture, folios


def _metrics(lines: list[Line]) -> tuple[float, float, float, float] | None:
    """(left margin, right margin, character width, line pitch) of a page's body lines."""
    geo = [ln for ln in lines if ln.x0 is not None and ln.x1 is not None and ln.top is not None]
    if not geo:
        return None
    widths = [(ln.x1 - ln.x0) / len(ln.text.strip()) for ln in geo  # type: ignore[operator]
              if len(ln.text.strip()) >= 8]
    cw = median(widths) if widths else median(ln.height or 10.0 for ln in geo)
    lefts = Counter(round(ln.x0 / max(cw / 4, 0.5)) for ln in geo)  # type: ignore[arg-type]
    left = lefts.most_common(1)[0][0] * max(cw / 4, 0.5)
    left = min((ln.x0 for ln in geo if abs(ln.x0 - left) <= cw / 2), default=left)  # type: ignore[operator]
    right = max(ln.x1 for ln in geo)  # type: ignore[type-var]
    gaps = [a.top - b.top for a, b in zip(geo, geo[1:], strict=False)  # type: ignore[operator]
            if 0 < a.top - b.top < 4 * (a.height or cw)]  # type: ignore[operator]
    pitch = median(gaps) if gaps else 1.6 * cw
    return left, right, cw, pitch


def _continues(a: Line, b: Line, ma: tuple[float, float, float, float],
               mb: tuple[float, float, float, float], same_page: bool) -> bool:
    """Whether line b carries on the paragraph line a started (a is full, b is not a new start)."""
    if None in (a.x0, a.x1, b.x0, b.top, a.top):
        return False
    left_a, right_a, cw, pitch = ma
    left_b = mb[0]
    # a line stopping short ends its paragraph; word processors leave up to ~3 characters free
    # at a line's end (punctuation that may not start a line pulls its neighbour along)
    ends = a.text.rstrip()[-1:] in "。！？!?；;：:"
    if a.x1 < right_a - (1.5 if ends else 3.5) * cw:  # type: ignore[operator] - stops short…
        # …unless b starts with a number or Latin word too wide for the room left (word wrap)
        m = _LATIN_START.match(b.text)
        if (not m or ends
                or (len(m.group()) + 2) * cw < right_a - a.x1):  # type: ignore[operator]
            return False
    if b.x0 > left_b + 0.6 * cw:  # type: ignore[operator] - b is indented or centred: new paragraph
        return False
    if a.x0 > left_a + 6 * cw:  # type: ignore[operator] - a centred/right-aligned line
        return False
    if a.height and b.height and abs(a.height - b.height) > 0.2 * max(a.height, b.height):
        return False
    if same_page and not (0 < a.top - b.top <= 1.35 * pitch):  # type: ignore[operator]
        return False
    return not (_LIST_START.match(b.text) and len(b.text) < 40)


def _join(a: str, b: str) -> str:
    a, b = a.rstrip(), b.lstrip()
    if a and b and a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return f"{a} {b}"
    return a + b


def pages_to_blocks(pages: list[Page], join: bool = True) -> list[Block]:
    """Blocks in reading order: furniture marked, paragraphs re-joined, tables in place."""
    furniture, folios = mark_furniture(pages)
    blocks: list[Block] = []
    para = 0
    prev: tuple[Line, tuple[float, float, float, float] | None, int] | None = None
    open_block: Block | None = None
    for pi, page in enumerate(pages):
        folio = folios.get(page.number)
        body = [ln for li, ln in enumerate(page.lines) if (pi, li) not in furniture]
        metrics = _metrics(body)
        tables = sorted(page.tables, key=lambda t: -t[0])
        for li, ln in enumerate(page.lines):
            if (pi, li) in furniture:
                blocks.append(Block(text=ln.text.strip(), para=para, kind="furniture", page=folio,
                                    phys_page=page.number))
                para += 1
        for ln in body:
            while tables and ln.top is not None and tables[0][0] > ln.top:
                _, rows = tables.pop(0)
                blocks.append(table_block(rows, para, page=folio, phys_page=page.number))
                para += 1
                open_block = None
            text = ln.text.strip()
            if not text:
                continue
            if (join and open_block is not None and prev is not None and prev[1] is not None
                    and metrics is not None
                    and _continues(prev[0], ln, prev[1], metrics, same_page=prev[2] == pi)):
                open_block.text = _join(open_block.text, text)
            else:
                open_block = Block(text=text, para=para, page=folio, phys_page=page.number)
                blocks.append(open_block)
                para += 1
            prev = (ln, metrics, pi)
        for _, rows in tables:
            blocks.append(table_block(rows, para, page=folio, phys_page=page.number))
            para += 1
            open_block = None
    return blocks


def table_block(rows: list[list[str]], para: int, page: int | None = None,
                phys_page: int | None = None) -> Block:
    """A table as one block: cells kept in ``rows``; text has cells tab-separated, rows on lines."""
    clean = [[(c or "").replace("\n", "").strip() for c in r] for r in rows]
    clean = [r for r in clean if any(r)]
    text = "\n".join("\t".join(c for c in r if c) for r in clean)
    return Block(text=text, para=para, kind="table", rows=clean, page=page, phys_page=phys_page)
