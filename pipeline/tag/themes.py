"""Themes from the user-extendable dictionary ``dictionaries/themes.txt``.

Each line is ``theme word word …``; a sentence gets the theme whose words occur in it most often
(the first listed theme wins ties). Users add themes or words in their own ``themes.txt`` under
``HUIBIAN_DICTIONARIES``; a theme named again there extends the bundled one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..dictionaries import read_table

OTHER = "其他"


@lru_cache(maxsize=1)
def _themes() -> tuple[tuple[str, ...], dict[str, tuple[int, ...]], re.Pattern[str] | None]:
    """Theme names in order, word → theme indexes, and one alternation of every word."""
    names: list[str] = []
    owners: dict[str, list[int]] = {}
    for row in read_table("themes.txt"):
        if len(row) < 2:
            continue
        if row[0] not in names:
            names.append(row[0])
        k = names.index(row[0])
        for w in row[1:]:
            if k not in owners.setdefault(w, []):
                owners[w].append(k)
    if not owners:
        return (), {}, None
    # longest words first so that 党风廉政建设 is counted before 廉政 at the same position
    words = sorted(owners, key=lambda w: (-len(w), w))
    pat = re.compile("|".join(re.escape(w) for w in words))
    return tuple(names), {w: tuple(v) for w, v in owners.items()}, pat


def theme_of(text: str) -> str:
    names, owners, pat = _themes()
    if pat is None:
        return OTHER
    found = pat.findall(text)
    if not found:  # most sentences: no theme word
        return OTHER
    counts = [0] * len(names)
    for w in found:
        for k in owners[w]:
            counts[k] += 1
    most = max(counts)
    return names[counts.index(most)] if most else OTHER  # index: the first listed theme wins ties
