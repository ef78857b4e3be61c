"""Printed pages: folios and running heads of paged inputs, whether or not ingest marked them.

A PDF printed from Word carries a running head and a folio on every page; the folio ("— 3 —",
"第3页") often differs from the physical page by the front matter. Ingest may already have marked
them ``furniture`` and set ``Block.page``; when it has not (other converters, OCR), the first and
last lines of each physical page are checked here. Either way they leave the sentence flow (they
must not break sentences) and every block gets the folio of its page.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from ..ingest.layout import page_number
from ..model import Block
from .articles import author_line

#: how many lines at the top and at the bottom of a page may be running heads or folios
EDGE = 2


# one page-number recogniser for ingest (PDF layout) and structure (text that lost its layout)
folio_of = page_number


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def mark_pages(blocks: list[Block]) -> set[int]:
    """Find folios and running heads of a paged document; return the indices of blocks that are
    page furniture (to be kept out of sentences) and set ``Block.page`` from the folios."""
    by_page: dict[int, list[int]] = defaultdict(list)
    for i, b in enumerate(blocks):
        if b.phys_page is not None:
            by_page[b.phys_page].append(i)
    if not by_page:
        return set()
    edges: dict[int, list[int]] = {}
    shapes: Counter[str] = Counter()
    variants: dict[str, set[str]] = defaultdict(set)  # raw texts per shape: a folio varies
    for p, idx in by_page.items():
        cand = [i for i in idx if blocks[i].kind in ("para", "furniture")]
        edge = cand[:EDGE] + [i for i in cand[-EDGE:] if i not in cand[:EDGE]]
        edges[p] = edge
        shapes.update({_shape(blocks[i].text) for i in edge if len(blocks[i].text) <= 60})
        for i in edge:
            variants[_shape(blocks[i].text)].add(re.sub(r"\s+", "", blocks[i].text))
    repeat = max(2, min(3, int(0.3 * len(by_page) + 0.5)))
    drop: set[int] = set()
    folios: dict[int, int] = {}
    # when ingest already found the folios (Block.page set) it judged each line by its position
    # on the page: trust its furniture and only look at the lines it marked
    ingest_paged = any(b.page is not None for b in blocks)
    for p in edges:
        cand = [i for i in by_page[p]
                if blocks[i].kind == "furniture" or (blocks[i].kind == "para" and not ingest_paged)]
        seen: set[str] = set()
        # walk in from the top and from the bottom: furniture sits outermost, once per page
        for order in (cand[:EDGE], list(reversed(cand[-EDGE:]))):
            for i in order:
                if i in drop:
                    continue
                b = blocks[i]
                shape = _shape(b.text)
                is_num, folio = folio_of(b.text)
                if is_num:
                    drop.add(i)
                    if folio is not None:
                        folios.setdefault(p, folio)
                elif (len(b.text) <= 60 and len(by_page) > 1 and shapes[shape] >= repeat
                      and shape not in seen and not author_line(b.text)):
                    drop.add(i)  # a running head: the same line at the edge of many pages
                    seen.add(shape)
                    nums = re.findall(r"\d+", b.text)
                    if nums and len(variants[shape]) > 1:
                        folios.setdefault(p, int(nums[-1]))
                else:
                    break
    # ingest's own furniture lines anywhere on a page that are page numbers or repeated heads
    for idx in by_page.values():
        for i in idx:
            b = blocks[i]
            if b.kind == "furniture" and i not in drop and (
                    folio_of(b.text)[0] or shapes[_shape(b.text)] >= repeat):
                drop.add(i)
    for i in drop:
        blocks[i].kind = "furniture"
    # a page's folio: ingest's, else the one found here, else interpolated between numbered pages
    for p, idx in by_page.items():
        known = next((blocks[i].page for i in idx if blocks[i].page is not None), None)
        if known is not None:
            folios[p] = known
    _interpolate(folios, sorted(by_page))
    for p, idx in by_page.items():
        if p in folios:
            for i in idx:
                if blocks[i].page is None:
                    blocks[i].page = folios[p]
    return drop


def _interpolate(folios: dict[int, int], pages: list[int]) -> None:
    """Fill pages without a folio that sit between two numbered pages with the same offset
    (a page whose folio was not printed, e.g. a chapter's first page)."""
    numbered = sorted(folios)
    for a, b in zip(numbered, numbered[1:], strict=False):
        off = folios[a] - a
        if folios[b] - b != off:
            continue
        for p in pages:
            if a < p < b:
                folios[p] = p + off
    if numbered:
        last = numbered[-1]
        for p in pages:  # the last page(s) of a volume may lose their folio to a full page
            if last < p <= last + 1:
                folios[p] = p + folios[last] - last
