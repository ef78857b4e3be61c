"""Cheap tests that tell when a regular expression cannot match, derived from the pattern itself.

Cue searches are most of the tagger's work, and nearly all of them fail: a regex search finds that
out only by trying every branch at every position of the sentence. Two necessary conditions, read
off the parsed pattern, let a caller skip most of those searches (a text that fails either test
cannot match; one that passes is searched as before, so matches are exactly the regex's own):

* :func:`needed_chars` - sets of characters of which every match holds at least one
  ("不够|不足" needs one of 不; one of 够/足);
* :func:`first_class` - a character class of the characters a match can start with: where the
  class first occurs is the earliest place a match can begin.

Both answer "no test" (``()`` / None) for what they cannot read (``.`` or a negated class up front,
an empty match, case folding), so any pattern still works, only without the shortcut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

try:  # the parsed form of a pattern: private to ``re`` (the same since 3.11)
    from re import _constants as sre
    from re import _parser as sre_parse
except ImportError:  # a Python that moved them: no shortcuts, the same matches
    sre = sre_parse = None  # type: ignore[assignment]

Pick = Callable[[frozenset[str], frozenset[str]], bool]
Parsed = Iterable[tuple[object, object]]

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) if sre else ()
_MAX_RANGE = 64  # a wider range ([\u4e00-\u9fff]) makes no useful set of needed characters
# in a needed-characters set, which item of a sequence stands for it: the one with the fewest
# characters, the first or the last of equally few ("不够": 不 or 够). Neither is always the rarer,
# so both are kept as tests and a text must pass each.
_PICKS: tuple[Pick, ...] = (lambda new, best: len(new) < len(best), lambda new, best: len(new) <= len(best))
_CATEGORIES = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_NOT_DIGIT: r"\D", sre.CATEGORY_SPACE: r"\s",
               sre.CATEGORY_NOT_SPACE: r"\S", sre.CATEGORY_WORD: r"\w",
               sre.CATEGORY_NOT_WORD: r"\W"} if sre else {}


def _parse(pattern: re.Pattern[str] | None) -> list[tuple[object, object]] | None:
    if pattern is None or sre_parse is None or pattern.flags & re.IGNORECASE:  # case folding varies
        return None
    try:
        return list(sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:  # another Python's private parser: simply no shortcut
        return None


def needed_chars(pattern: re.Pattern[str] | None) -> tuple[frozenset[str], ...]:
    """Sets of characters of which every match of ``pattern`` holds at least one."""
    tree = _parse(pattern)
    if tree is None:
        return ()
    out = {_seq_needs(tree, pick) for pick in _PICKS}
    return tuple(sorted((s for s in out if s is not None), key=lambda s: (len(s), sorted(s))))


def _seq_needs(items: Parsed, pick: Pick) -> frozenset[str] | None:
    """The set of one item of the sequence (every match of a sequence matches each item)."""
    best: frozenset[str] | None = None
    for op, av in items:
        need = _item_needs(op, av, pick)
        if need is not None and (best is None or pick(need, best)):
            best = need
    return best


def _item_needs(op: object, av: Any, pick: Pick) -> frozenset[str] | None:
    """The set of one parsed item; None when the item may read nothing, or anything."""
    if op is sre.LITERAL:
        return frozenset(chr(av))
    if op is sre.IN:
        out: set[str] = set()
        for o, a in av:
            if o is sre.LITERAL:
                out.add(chr(a))
            elif o is sre.RANGE and a[1] - a[0] < _MAX_RANGE:
                out.update(map(chr, range(a[0], a[1] + 1)))
            else:  # NEGATE, a category (\d, \s) or a wide range
                return None
        return frozenset(out)
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _seq_needs(sub, pick)
    if op is sre.BRANCH:
        union: set[str] = set()
        for alt in av[1]:
            need = _seq_needs(alt, pick)
            if need is None:  # one branch without a set: the alternation has none
                return None
            union |= need
        return frozenset(union)
    if op in _REPEATS:
        low, _high, sub = av
        return _seq_needs(sub, pick) if low >= 1 else None
    return None  # ANY, NOT_LITERAL, assertions, anchors, group references


def first_class(pattern: re.Pattern[str] | None) -> re.Pattern[str] | None:
    """One character class of the characters a match of ``pattern`` can start with, or None when
    that is not known or the pattern can match the empty string (then it can start anywhere)."""
    tree = _parse(pattern)
    found = None if tree is None else _seq_first(tree)
    if found is None or found[1] or not found[0]:
        return None
    return re.compile("[" + "".join(sorted(found[0])) + "]", pattern.flags & re.ASCII)  # type: ignore[union-attr]


def _seq_first(items: Parsed) -> tuple[frozenset[str], bool] | None:
    """(class items a match can start with, may match nothing) of a sequence; None: not known."""
    out: set[str] = set()
    for op, av in items:
        found = _item_first(op, av)
        if found is None:
            return None
        out |= found[0]
        if not found[1]:  # this item reads a character: the ones after it do not start a match
            return frozenset(out), False
    return frozenset(out), True


def _item_first(op: object, av: Any) -> tuple[frozenset[str], bool] | None:
    if op is sre.AT or op in (sre.ASSERT, sre.ASSERT_NOT):
        return frozenset(), True  # reads nothing: the next item reads the first character
    if op is sre.LITERAL:
        return frozenset([re.escape(chr(av))]), False
    if op is sre.IN:
        items: set[str] = set()
        for o, a in av:
            if o is sre.LITERAL:
                items.add(re.escape(chr(a)))
            elif o is sre.RANGE:
                items.add(f"{re.escape(chr(a[0]))}-{re.escape(chr(a[1]))}")
            elif o is sre.CATEGORY and a in _CATEGORIES:
                items.add(_CATEGORIES[a])
            else:  # NEGATE: its complement does not join a union of classes
                return None
        return frozenset(items), False
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _seq_first(sub)
    if op is sre.BRANCH:
        alts = [_seq_first(alt) for alt in av[1]]
        if any(a is None for a in alts):
            return None
        return frozenset().union(*(a[0] for a in alts)), any(a[1] for a in alts)  # type: ignore[index]
    if op in _REPEATS:
        low, _high, sub = av
        inner = _seq_first(sub)
        return None if inner is None else (inner[0], inner[1] or low == 0)
    return None  # ANY, NOT_LITERAL, group references: any character may come first


def engine_scans(pattern: re.Pattern[str] | None) -> bool:
    """Whether the regex engine itself skips to the characters a match can start with: CPython's
    does when a pattern opens with a literal, a class, or an alternation whose branches all open
    with a literal. Then trying :func:`first_class` positions one by one only adds work (a speed
    question only: either way the match is the same)."""
    tree = _parse(pattern)
    while tree:
        op, av = tree[0]
        if op is sre.SUBPATTERN and not av[1] and not av[2]:  # type: ignore[index]
            tree = list(av[3])  # type: ignore[index]
            continue
        if op in (sre.LITERAL, sre.IN):
            return True
        return op is sre.BRANCH and all(alt and alt[0][0] is sre.LITERAL for alt in av[1])  # type: ignore[index]
    return False


Pairs = dict[str, frozenset[str] | None]  # first character → the characters that can follow it (None: any)


def start_class(pattern: re.Pattern[str] | None) -> re.Pattern[str] | None:
    """A pattern matching one character wherever a match of ``pattern`` can start: its possible
    first characters, each where followed by a possible second one (``取(?=[得])``). Stricter than
    :func:`first_class` ("进" starts 进一步 but not 推进工作), so there are fewer places to try.
    None when a match can start with a class like ``\\d`` or ``.``, or be empty."""
    tree = _parse(pattern)
    pairs = None if tree is None else _seq_pairs(tree)
    if not pairs:
        return None
    alts = [re.escape(c) if nxt is None else f"{re.escape(c)}(?=[{''.join(map(re.escape, sorted(nxt)))}])"
            for c, nxt in sorted(pairs.items())]
    return re.compile("|".join(alts))


def _merge(a: Pairs | None, b: Pairs | None) -> Pairs | None:
    if a is None or b is None:
        return None
    out = dict(a)
    for c, nxt in b.items():
        if c in out:
            old = out[c]
            out[c] = None if old is None or nxt is None else old | nxt
        else:
            out[c] = nxt
    return out


def _seq_pairs(items: list[tuple[Any, Any]]) -> Pairs | None:
    """First characters of a sequence, each with the characters that can follow; None: not known
    (a class or any-character up front, or nothing consumed at all)."""
    for k, (op, av) in enumerate(items):
        if op is sre.AT or op in (sre.ASSERT, sre.ASSERT_NOT):
            continue  # reads nothing
        rest = items[k + 1:]
        if op in (sre.LITERAL, sre.IN):
            chars = _item_chars(op, av)
            if chars is None:
                return None
            after = _seq_chars(rest)
            nxt = None if after is None or after[1] else after[0]  # the match may end: any
            return dict.fromkeys(chars, nxt)
        if op is sre.SUBPATTERN:
            return None if av[1] or av[2] else _seq_pairs(list(av[3]) + rest)
        if op is sre.BRANCH:
            out: Pairs | None = {}
            for alt in av[1]:
                out = _merge(out, _seq_pairs(list(alt) + rest))
            return out
        if op in _REPEATS:
            low, high, sub = av
            if high == 1:  # once, or optional: with it, then (optional) without it
                once = _seq_pairs(list(sub) + rest)
                return once if low == 1 else _merge(once, _seq_pairs(rest))
            first = _seq_chars(list(sub))  # repeated: its first character, followed by anything
            if first is None or first[1]:
                return None
            repeated: Pairs = dict.fromkeys(first[0], None)
            return repeated if low >= 1 else _merge(repeated, _seq_pairs(rest))
        return None
    return None  # nothing consumed: an empty match


def _item_chars(op: Any, av: Any) -> frozenset[str] | None:
    """The characters a literal or a class of literals and short ranges reads."""
    return _item_needs(op, av, _PICKS[0]) if op in (sre.LITERAL, sre.IN) else None


def _seq_chars(items: list[tuple[Any, Any]]) -> tuple[frozenset[str], bool] | None:
    """(characters a sequence can start with, may read nothing); None when not known."""
    out: set[str] = set()
    for op, av in items:
        if op is sre.AT or op in (sre.ASSERT, sre.ASSERT_NOT):
            continue
        if op in (sre.LITERAL, sre.IN):
            found: tuple[frozenset[str], bool] | None = None
            chars = _item_chars(op, av)
            if chars is not None:
                found = chars, False
        elif op is sre.SUBPATTERN:
            found = None if av[1] or av[2] else _seq_chars(list(av[3]))
        elif op is sre.BRANCH:
            alts = [_seq_chars(list(alt)) for alt in av[1]]
            found = None if any(a is None for a in alts) else (
                frozenset().union(*(a[0] for a in alts)), any(a[1] for a in alts))  # type: ignore[index]
        elif op in _REPEATS:
            inner = _seq_chars(list(av[2]))
            found = None if inner is None else (inner[0], inner[1] or av[0] == 0)
        else:
            found = None
        if found is None:
            return None
        out |= found[0]
        if not found[1]:
            return frozenset(out), False
    return frozenset(out), True
