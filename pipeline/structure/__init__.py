"""Structure: blocks → printed pages, TOC entries, articles, heading tree and sentences.

``structure(doc)`` is the stage function. The pieces (``pages``, ``toc``, ``articles``,
``headings``, ``sentences``, ``units``) are usable on their own.

Every character of body text, headings, TOC lines, table rows and web furniture ends up in some
sentence (eval aligns gold sentences against all of them, in document order); only running heads
and page numbers of paged inputs are left out, their folio kept as each sentence's ``page``.
"""

from __future__ import annotations

import re

from ..model import Article, Block, Document, Sentence, stable_id
from .articles import locate_articles
from .headings import SectionTracker, heading_info
from .pages import mark_pages
from .sentences import split_run_in, split_sentences
from .toc import mark_toc

_MD_PREFIX = re.compile(r"^\s*(?:#{1,6}|[-*+])\s+")
_STRUCTURAL = ("furniture", "toc", "table")


def structure(doc: Document) -> Document:
    """Document with blocks → Document with toc, articles and sentences (stage 3)."""
    if doc.status != "ok":
        return doc
    page_furniture = mark_pages(doc.blocks)
    span = mark_toc(doc)
    mark_tables(doc.blocks)
    located = locate_articles(doc, span, page_furniture)
    doc.articles = [a for a, _ in located]
    starts = {a.first_block: a for a in doc.articles}
    titles = {at for a, at in located if a.kind != "front"}
    tracker = SectionTracker()
    article = doc.articles[0]
    sentences: list[Sentence] = []
    pieces: list[str] = []
    offset = 0
    for bi, block in enumerate(doc.blocks):
        if bi in starts:
            article = starts[bi]
            tracker.reset()
        if bi in page_furniture:
            continue  # running heads and folios must not break or pad the text
        is_title = bi in titles and block.kind in ("para", "heading")
        kind_heading = None
        if block.kind in _STRUCTURAL:
            texts = table_rows(block) if block.kind == "table" else [block.text]
        elif is_title:
            texts = [block.text.strip()]  # the article's title: a heading, not a section
        else:
            texts = []
            for part in split_run_in(block.text):
                info = _heading(block, part)
                if info is not None:
                    tracker.push(info[0], info[1], block.level)
                    if kind_heading is None:
                        kind_heading = info
                texts.extend(split_sentences(part))
        for k, text in enumerate(texts):
            if not text.strip():
                continue
            start = offset
            offset += len(text)
            pieces.append(text)
            # the article title stays out of the section path and is not flagged as a heading:
            # the tagger reads is_heading as "opens a section"
            is_head = bool(kind_heading and k == 0 and text.startswith(kind_heading[1][:4]))
            sentences.append(Sentence(
                idx=len(sentences), text=text, para=block.para, page=block.page,
                phys_page=block.phys_page, section=list(tracker.path),
                article_id=article.article_id, is_heading=is_head or block.kind == "heading",
                heading_level=block.level, start=start, end=offset,
                evidence="" if block.kind in ("para", "heading") else block.kind,
            ))
            pieces.append("\n")
            offset += 1
    doc.text = "".join(pieces)
    doc.sentences = sentences
    return doc


_CELLS = re.compile(r"\t")


def mark_tables(blocks: list[Block]) -> None:
    """Tab-separated lines of a text input (a converted scoring table) → kind 'table'.

    Two or more such lines in a row make a table (a lone line when its cells are short); a row's
    continuation line without tabs between two rows stays part of it.
    """
    def row(b: Block) -> bool:
        return b.kind == "para" and len([c for c in b.text.split("\t") if c.strip()]) >= 2

    i, n = 0, len(blocks)
    while i < n:
        if not row(blocks[i]):
            i += 1
            continue
        j = i
        while j + 1 < n and (row(blocks[j + 1]) or (
                j + 2 < n and blocks[j + 1].kind == "para" and "\t" not in blocks[j + 1].text
                and len(blocks[j + 1].text) <= 60 and row(blocks[j + 2]))):
            j += 1
        if j > i or all(len(c) <= 40 for c in blocks[i].text.split("\t")):
            for k in range(i, j + 1):
                blocks[k].kind = "table"
        i = j + 1


def table_rows(block: Block) -> list[str]:
    """One text per table row: cells tab-joined (merged cells, repeated by Word, once)."""
    if block.rows:
        out: list[str] = []
        for r in block.rows:
            cells: list[str] = []
            for c in r:
                c = c.strip()
                if c and (not cells or cells[-1] != c):
                    cells.append(c)
            if cells:
                out.append("\t".join(cells))
        if out:
            return out
    return [ln for ln in block.text.split("\n") if ln.strip()]


def _heading(block: Block, text: str) -> tuple[str, str] | None:
    """(marker type, heading text) when the text opens a section; DOCX/Markdown headings without
    numbering nest by their level, numbered ones by their numbering."""
    if block.kind == "heading":
        title = _MD_PREFIX.sub("", text).strip()
        inner = heading_info(title)
        if inner is not None and inner.marker not in ("short", "md"):
            return (inner.marker, title)
        return (f"h{block.level}" if block.level is not None else "md", title)
    info = heading_info(text, short_line_ok=False)
    if info is None:
        return None
    title = _MD_PREFIX.sub("", info.title).strip() if info.marker == "md" else info.title
    if info.marker == "md":
        inner = heading_info(title)
        if inner is not None:
            return (inner.marker, title)
    return (info.marker, title)


__all__ = ["structure", "split_sentences", "heading_info", "stable_id", "Article", "mark_tables",
           "table_rows"]
