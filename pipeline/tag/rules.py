"""Transparent role rules following annotation/GUIDE.md.

Every cue list comes from ``dictionaries/cues/*.txt`` (users extend them there or through
``HUIBIAN_DICTIONARIES``); this module only says in which order the guide applies them:
section first, claim headings carry their claim, done vs. to-be-done, mixed sentences by their
main clause, lessons under 体会 as strength, background and formulas as other.
"""

from __future__ import annotations

import re
from functools import cache

from ..dictionaries import read_patterns, read_table

ROLES = ("strength", "gap", "cause", "measure")

# list markers in front of a clause (一是 / 第一， / （一） / 1、 / ① …): stripped before matching
# clause-opening cues such as 要… / 必须…
MARKER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:[-*+]\s+)?(?:"
    r"[一二三四五六七八九十百]+\s*[、．.:：]|[（(]\s*[一二三四五六七八九十\d]+\s*[）)]|"
    r"第[一二三四五六七八九十]+\s*[，,、:：]?(?:是|要)?|\d{1,2}\s*[、．.](?!\d)|[①-⑳]|"
    r"[一二三四五六七八九十]是|首先[，,]?|其次[，,]?|再次[，,]?|其三[，,]?|最后[，,]?)\s*")


class CueSet:
    """The regular expressions of one cue file. Patterns anchored with ``^`` are tried only at the
    start (``match``), the rest anywhere (``search``): a single alternation would retry every
    anchored branch at every position, which made cue search the slowest part of tagging."""

    def __init__(self, pats: tuple[str, ...]) -> None:
        start = [p[1:] for p in pats if p.startswith("^")]
        rest = [p for p in pats if not p.startswith("^")]
        self.start = re.compile("|".join(f"(?:{p})" for p in start)) if start else None
        self.rest = re.compile("|".join(f"(?:{p})" for p in rest)) if rest else None

    def search(self, text: str) -> re.Match[str] | None:
        m = self.start.match(text) if self.start is not None else None
        if m is None and self.rest is not None:
            m = self.rest.search(text)
        return m


@cache
def cues(name: str) -> CueSet:
    """The cue phrases (regular expressions) of ``dictionaries/cues/<name>.txt``."""
    return CueSet(read_patterns(f"cues/{name}.txt"))


@cache
def kind_cues() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((row[0], re.compile(row[1])) for row in read_table("cues/kind.txt") if len(row) > 1)


def strip_marker(text: str) -> str:
    return MARKER.sub("", text, count=1)


def named_roles(title: str) -> list[str]:
    """Roles a heading names ("二、存在的问题" → gap); several for "现状、差距及成因", in text order."""
    found: list[tuple[int, str]] = []
    for label in ("cause", "gap", "measure", "strength"):
        m = cues(f"section_{label}").search(title)
        if m:
            found.append((m.start(), label))
    return [lab for _, lab in sorted(found)]


def cue_matches(body: str, names: tuple[str, ...] = ("cause", "gap", "done", "measure_open")
                ) -> dict[str, re.Match[str] | None]:
    return {n: cues(n).search(body) for n in names}


def polarity(text: str, found: dict[str, re.Match[str] | None] | None = None) -> tuple[str | None, str]:
    """What a clause claims by its own words: gap, cause, measure (a demand) or strength (done).

    ``found`` passes cue matches already made on the marker-stripped text (saves searching twice).
    """
    if found is None:
        found = cue_matches(strip_marker(text))
    m = found["cause"]
    if m:
        return "cause", f"cue:{m.group(0)}"
    g = found["gap"]
    d = found["done"]
    if g and not (d and d.start() < g.start()):
        return "gap", f"cue:{g.group(0)}"
    mo = found["measure_open"]
    if mo:
        return "measure", f"cue:{mo.group(0)}"
    if d:
        return "strength", f"cue:{d.group(0)}"
    return None, ""
