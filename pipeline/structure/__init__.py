"""Structure: blocks → articles, TOC entries, heading tree and sentences with provenance.

``structure(doc)`` is the stage function. The pieces (``headings``, ``sentences``, ``articles``,
``toc``) are usable on their own.
"""

from __future__ import annotations

import re

from ..model import Article, Block, Document, Sentence, stable_id
from .articles import find_articles
from .headings import SectionTracker, heading_info
from .sentences import split_run_in, split_sentences
from .toc import mark_toc

_MD_PREFIX = re.compile(r"^\s*(?:#{1,6}|[-*+])\s+")


def structure(doc: Document) -> Document:
    """Document with blocks → Document with toc, articles and sentences (stage 3)."""
    if doc.status != "ok":
        return doc
    mark_toc(doc)
    doc.articles = find_articles(doc)
    starts = {a.first_block: a for a in doc.articles}
    tracker = SectionTracker()
    article = doc.articles[0]
    sentences: list[Sentence] = []
    pieces: list[str] = []
    offset = 0
    for bi, block in enumerate(doc.blocks):
        if bi in starts:
            article = starts[bi]
            tracker.reset()
        if block.kind in ("furniture", "toc", "table"):
            texts = [block.text]
            kind_heading = None
        else:
            texts = []
            kind_heading = None
            for part in split_run_in(block.text):
                info = _heading(block, part)
                if info is not None:
                    tracker.push(info[0], info[1], block.level)
                    if kind_heading is None:
                        kind_heading = info
                texts.extend(split_sentences(part))
        for k, text in enumerate(texts):
            start = offset
            offset += len(text)
            pieces.append(text)
            is_head = bool(kind_heading and k == 0 and text.startswith(kind_heading[1][:4]))
            sentences.append(Sentence(
                idx=len(sentences), text=text, para=block.para, page=block.page,
                phys_page=block.phys_page, section=list(tracker.path),
                article_id=article.article_id, is_heading=is_head or block.kind == "heading",
                heading_level=block.level, start=start, end=offset,
            ))
            sentences[-1].evidence = "" if block.kind == "para" else block.kind
            pieces.append("\n")
            offset += 1
    doc.text = "".join(pieces)
    doc.sentences = sentences
    return doc


def _heading(block: Block, text: str) -> tuple[str, str] | None:
    if block.kind == "heading":
        return ("md", _MD_PREFIX.sub("", text).strip())
    info = heading_info(text, short_line_ok=False)
    if info is None:
        return None
    title = _MD_PREFIX.sub("", info.title).strip() if info.marker == "md" else info.title
    if info.marker == "md":
        inner = heading_info(title)
        if inner is not None:
            return (inner.marker, title)
    return (info.marker, title)


__all__ = ["structure", "split_sentences", "heading_info", "stable_id", "Article"]
