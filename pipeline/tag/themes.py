"""Themes from the user-extendable dictionary ``dictionaries/themes.txt``."""

from __future__ import annotations

from functools import lru_cache

from ..dictionaries import read_table


@lru_cache(maxsize=1)
def _themes() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((row[0], row[1:]) for row in read_table("themes.txt") if len(row) > 1)


def theme_of(text: str) -> str:
    best, best_n = "", 0
    for name, words in _themes():
        n = sum(text.count(w) for w in words)
        if n > best_n:
            best, best_n = name, n
    return best or "其他"
