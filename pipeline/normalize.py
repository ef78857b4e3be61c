"""Normalize: traditional → simplified, inline pinyin removed, web furniture marked, broken lines
re-joined.  The report's own punctuation and spacing are kept: that is the text eval aligns to.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from functools import lru_cache

import numpy as np
import opencc

from .dictionaries import read_patterns
from .model import Block, Document
from .resources import process_model

_TONE = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
# Inline pinyin like 關(guān): a parenthesised syllable with a tone mark, right after a Han character.
_PINYIN = re.compile(rf"(?<=[\u3400-\u9fff])[(（]\s*[a-zü{_TONE}]*[{_TONE}][a-zü{_TONE}]*\s*[)）]")
_TERMINAL = "。！？!?；;…”’」』）)》:："
_HEADING_START = re.compile(
    r"^\s*(?:[#＃]+|[-*]\s|[一二三四五六七八九十百]+\s*[、.．:：]|[（(]\s*[一二三四五六七八九十\d]+\s*[)）]"
    r"|\d+\s*[、.．]|第[一二三四五六七八九十]+[，,、章节部分]|[①-⑳])"
)


@process_model
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


_HAN = re.compile("[\u4e00-\u9fff]+")


def is_traditional(text: str, threshold: float = 0.03) -> bool:
    """True when enough Han characters change under t2s (a simplified text barely changes)."""
    han = "".join(_HAN.findall(text[:20_000]))
    if not han:
        return False
    converted = to_simplified(han)
    if len(converted) == len(han):  # character for character (the usual case): compared by numpy
        a = np.frombuffer(han.encode("utf-32-le"), dtype=np.uint32)
        changed = int((a != np.frombuffer(converted.encode("utf-32-le"), dtype=np.uint32)).sum())
    else:
        changed = sum(1 for a, b in zip(han, converted, strict=False) if a != b)
    return changed / len(han) >= threshold


def strip_pinyin(text: str) -> str:
    return _PINYIN.sub("", text)


@lru_cache(maxsize=1)
def _furniture() -> list[re.Pattern[str]]:
    return [re.compile(p) for p in read_patterns("furniture.txt")]


def is_furniture(line: str) -> bool:
    compact = re.sub(r"\s+", "", line)
    if not compact:
        return True
    return any(p.match(compact) for p in _furniture())


def canonical(text: str) -> str:
    """Full-width → half-width, no white space: the form used to compare texts."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


# a TOC entry ends in a page number after dot leaders or a tab: never part of a paragraph
_TOC_LINE = re.compile(r"(?:[.…·]{2,}|\t)[^。！？]{0,40}?[（(]?\s*\d{1,4}\s*[)）]?\s*$")
_TOC_TITLE = re.compile(r"^\s*(?:#+\s*)?目\s*[录次]\s*$")


#: formats whose backend already gives real paragraphs (PDF/OCR lines are re-joined by position in
#: ingest/layout.py, Word has paragraphs): text re-joining is for plain text and web copies only
LAID_OUT = frozenset({"pdf", "ocr", "image", "docx", "doc", "wps", "rtf", "odt"})


def _joinable(prev: Block, nxt: Block, min_len: int) -> bool:
    """A paragraph cut by a page or layout break: prev stops mid-sentence, nxt carries on."""
    if prev.kind != "para" or nxt.kind != "para":
        return False
    a, b = prev.text.rstrip(), nxt.text.lstrip()
    if not a or not b or a[-1] in _TERMINAL:
        return False
    if _TOC_LINE.search(a) or _TOC_LINE.search(b) or _TOC_TITLE.match(a) or "\t" in a or "\t" in b:
        return False  # TOC entries and table rows keep their lines
    if len(canonical(a)) < min_len or _HEADING_START.match(a) and len(a) < 60:
        return False
    return not _HEADING_START.match(b)


def rejoin(blocks: list[Block], min_len: int = 40) -> list[Block]:
    out: list[Block] = []
    for b in blocks:
        if out and _joinable(out[-1], b, min_len):
            prev = out[-1]
            out[-1] = replace(prev, text=prev.text.rstrip() + b.text.lstrip())
        else:
            out.append(b)
    return out


def normalize(doc: Document) -> Document:
    """Document → Document with cleaned blocks (stage 2)."""
    if doc.status != "ok":
        return doc
    whole = "\n".join(b.text for b in doc.blocks)
    convert = is_traditional(whole)
    blocks: list[Block] = []
    for b in doc.blocks:
        text = b.text.replace("\u3000", " ").replace("\xa0", " ").replace("\ufeff", "")
        if convert:
            text = to_simplified(text)
        text = strip_pinyin(text)
        rows = b.rows
        if rows is not None and convert:
            rows = [[strip_pinyin(to_simplified(c)) for c in r] for r in rows]
        kind = b.kind
        if kind == "para" and is_furniture(text):
            kind = "furniture"
        blocks.append(replace(b, text=text, kind=kind, rows=rows))
    if doc.format not in LAID_OUT:
        blocks = rejoin(blocks)
    doc.blocks = blocks
    if convert:
        doc.meta["converted"] = "t2s"
    return doc
