"""Transparent role rules following annotation/GUIDE.md.

Every cue list comes from ``dictionaries/cues/*.txt`` (users extend them there or through
``HUIBIAN_DICTIONARIES``); this module only says in which order the guide applies them:
section first, claim headings carry their claim, done vs. to-be-done, mixed sentences by their
main clause, lessons under 体会 as strength, background and formulas as other.
"""

from __future__ import annotations

import re
from collections.abc import Set
from functools import cache

from ..dictionaries import read_patterns, read_table
from .prefilter import engine_scans, first_class, needed_chars, start_class

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
    anchored branch at every position, which made cue search the slowest part of tagging.

    Each part also keeps the tests of :mod:`.prefilter` (characters a match needs, the places a
    match can start): a text that fails one is not searched, and the rest part is tried only at
    those places (:func:`find`). Matches stay exactly the regex's own."""

    def __init__(self, pats: tuple[str, ...]) -> None:
        start = [p[1:] for p in pats if p.startswith("^")]
        rest = [p for p in pats if not p.startswith("^")]
        self.start = re.compile("|".join(f"(?:{p})" for p in start)) if start else None
        self.rest = re.compile("|".join(f"(?:{p})" for p in rest)) if rest else None
        self.start_needs = needed_chars(self.start)
        self.rest_needs = needed_chars(self.rest)
        self.start_first = start_class(self.start) or first_class(self.start)
        # where the engine finds the first characters itself, plain search is quicker
        self.rest_first = None if engine_scans(self.rest) else (
            start_class(self.rest) or first_class(self.rest))

    def search(self, text: str, chars: Set[str] | None = None) -> re.Match[str] | None:
        """First match (the anchored patterns first). ``chars``: ``set(text)`` if the caller has it."""
        if chars is None:
            chars = set(text)
        return find(text, self.start, self.start_first, _meets(self.start_needs, chars),
                    self.rest, self.rest_first, _meets(self.rest_needs, chars))


def _meets(needs: tuple[frozenset[str], ...], chars: Set[str]) -> bool:
    return all(not need.isdisjoint(chars) for need in needs)


def find(text: str, start: re.Pattern[str] | None, start_first: re.Pattern[str] | None, start_ok: bool,
         rest: re.Pattern[str] | None, rest_first: re.Pattern[str] | None, rest_ok: bool
         ) -> re.Match[str] | None:
    """A cue set's match: ``start`` at the start, else ``rest`` anywhere; ``*_ok`` false when the
    text lacks a needed character.

    ``rest`` is tried only where a match can start (``rest_first``), in text order: the first
    place it matches is where ``rest.search`` would find its leftmost match, and the match is the
    same, as ``pos`` does not cut the text (look-behinds and ``^`` still see the whole of it). A
    search tries every branch at every position; most positions hold no possible first character."""
    if start is not None and start_ok and (start_first is None or start_first.match(text)):
        m = start.match(text)
        if m is not None:
            return m
    if rest is None or not rest_ok:
        return None
    if rest_first is None:
        return rest.search(text)
    at = rest_first.search(text)  # search by search, not finditer: most texts hold no place at all
    while at is not None:
        m = rest.match(text, at.start())
        if m is not None:
            return m
        at = rest_first.search(text, at.start() + 1)
    return None


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
    """Each list's match (:meth:`CueSet.search`) in the text, found together (:class:`CueBank`)."""
    return _bank(names).matches(body)


class CueBank:
    """Several cue lists searched in one text, each as :meth:`CueSet.search` does (:func:`find`,
    written out here: this runs a dozen times per sentence). A part with a first-character class
    needs no other test; for the others (``^.{0,12}目标`` can start anywhere) one scan finds which
    of their sets of needed characters the text meets, a bit per set."""

    def __init__(self, names: tuple[str, ...]) -> None:
        bits: dict[frozenset[str], int] = {}

        def required(needs: tuple[frozenset[str], ...], first: re.Pattern[str] | None) -> int:
            mask = 0
            for need in needs if first is None else ():
                mask |= bits.setdefault(need, 1 << len(bits))
            return mask

        self.plan = [(n, c.start, c.start_first, required(c.start_needs, c.start_first),
                      c.rest, c.rest_first, required(c.rest_needs, c.rest_first))
                     for n in names for c in (cues(n),)]
        self.owners: dict[str, int] = {}  # character → bits of the sets it belongs to
        for need, bit in bits.items():
            for ch in need:
                self.owners[ch] = self.owners.get(ch, 0) | bit
        chars = "".join(sorted(self.owners))
        self.scan = re.compile(f"[{re.escape(chars)}]") if chars else None

    def matches(self, text: str) -> dict[str, re.Match[str] | None]:
        held = 0
        if self.scan is not None:
            owners = self.owners
            for ch in set(self.scan.findall(text)):
                held |= owners[ch]
        out: dict[str, re.Match[str] | None] = {}
        for name, start, start_first, start_req, rest, rest_first, rest_req in self.plan:
            m = None
            if start is not None and held & start_req == start_req and (
                    start_first is None or start_first.match(text)):
                m = start.match(text)
            if m is None and rest is not None and held & rest_req == rest_req:
                if rest_first is None:
                    m = rest.search(text)
                else:
                    at = rest_first.search(text)
                    while at is not None:
                        m = rest.match(text, at.start())
                        if m is not None:
                            break
                        at = rest_first.search(text, at.start() + 1)
            out[name] = m
        return out


@cache
def _bank(names: tuple[str, ...]) -> CueBank:
    return CueBank(names)


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
