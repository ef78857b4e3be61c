"""Heading recognition from Chinese numbering conventions (一、 （一） 1. （1） ① 第一， 一是 …)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CN = "一二三四五六七八九十百零〇"
# (marker type, pattern); order matters only for matching, levels come from first appearance.
# The one table of numbering markers: the tagger (pipeline/tag/features.py) reads it too.
MARKERS: list[tuple[str, re.Pattern[str]]] = [
    ("md", re.compile(r"^\s*(#{1,6})\s*")),
    # "一、2025年工作回顾" and "一、一年接着一年干" are headings; "一、二、三产业…" (a list of
    # numerals) is not: reject only a numeral that is itself followed by an enumeration comma
    ("cn", re.compile(rf"^\s*[{_CN}]+\s*[、．.:：]\s*(?![{_CN}]{{1,3}}\s*[、，,．.])")),
    ("pcn", re.compile(rf"^\s*[（(]\s*[{_CN}]+\s*[）)]\s*")),
    ("di", re.compile(rf"^\s*第[{_CN}]+\s*[，,、:：是]\s*")),
    ("num", re.compile(r"^\s*\d{1,2}\s*[、．.](?!\d)\s*")),
    ("pnum", re.compile(r"^\s*[（(]\s*\d{1,2}\s*[）)]\s*")),
    ("circ", re.compile(r"^\s*[①-⑳]\s*")),
    ("shi", re.compile(rf"^\s*[{_CN}]是\s*")),
    ("order", re.compile(r"^\s*(?:首先|其次|再次|其三|最后)\s*[，,、:：]")),
]
_TERMINAL = re.compile(r"[。！？!?；;]")


@dataclass
class HeadingInfo:
    marker: str  # marker type ("cn", "pcn", …) or "short" for an unnumbered short line
    title: str  # the heading text up to its first sentence end
    claim: bool  # the heading ends with 。 (it states something; it stays a sentence)


def marker_of(text: str) -> tuple[str, re.Match[str]] | None:
    for name, pat in MARKERS:
        m = pat.match(text)
        if m:
            return name, m
    return None


def heading_info(text: str, *, short_line_ok: bool = False) -> HeadingInfo | None:
    """Classify a block's leading text as a heading, or None.

    A numbered line is a heading when its first clause is short (a title, not a paragraph that
    happens to start with 一是). A short line without numbering or final punctuation is a heading
    only where the caller allows (body text between paragraphs, not lists).
    """
    s = text.strip()
    if not s:
        return None
    found = marker_of(s)
    if found:
        name, m = found
        rest = s[m.end():]
        end = _TERMINAL.search(rest)
        first = rest[: end.start()] if end else rest
        if name == "md":
            return HeadingInfo(name, s, False)
        if name in ("shi", "order"):
            # 一是… / 首先… introduce list items: headings only when the item is a short claim
            if end is None or len(first) > 24:
                return None
        if len(first) > 60 or not first.strip():
            return None
        claim = end is not None
        title = s[: m.end() + (end.end() if end else len(rest))]
        if end is None and len(rest) > 40:
            return None
        return HeadingInfo(name, title.strip(), claim)
    if short_line_ok and len(s) <= 30 and not _TERMINAL.search(s) and not s.endswith(("，", ",", "：", ":")):
        return HeadingInfo("short", s, False)
    return None


class SectionTracker:
    """Keeps the heading path; levels follow the order in which marker types first appear."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (marker, title)

    def reset(self) -> None:
        self.order.clear()
        self.stack.clear()

    def level(self, marker: str) -> int:
        if marker not in self.order:
            self.order.append(marker)
        return self.order.index(marker)

    def push(self, marker: str, title: str, md_level: int | None = None) -> None:
        if marker == "short":
            # an unnumbered title line starts a new top-level section
            self.stack = [(marker, title)]
            return
        lvl = self.level(marker)
        while self.stack and self.stack[-1][0] != "short" and self.level(self.stack[-1][0]) >= lvl:
            self.stack.pop()
        self.stack.append((marker, title))

    @property
    def path(self) -> list[str]:
        return [t for _, t in self.stack]
