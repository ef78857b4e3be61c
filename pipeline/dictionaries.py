"""Word lists, cue phrases and unit names live as data in ``dictionaries/``; this reads them.

Users extend them by editing the files or by pointing ``HUIBIAN_DICTIONARIES`` at a folder of
their own whose files are read in addition to the bundled ones.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent.parent / "dictionaries"
_PACKAGED = Path(__file__).resolve().parent / "data" / "dictionaries"


def dictionary_dirs() -> list[Path]:
    dirs = [d for d in (BUNDLED, _PACKAGED) if d.is_dir()][:1]
    extra = os.environ.get("HUIBIAN_DICTIONARIES")
    if extra:
        dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs


def dictionary_files(name: str) -> list[Path]:
    return [d / name for d in dictionary_dirs() if (d / name).is_file()]


@cache
def read_lines(name: str) -> tuple[str, ...]:
    """Non-empty, non-comment lines of every dictionary file called ``name``."""
    out: list[str] = []
    for f in dictionary_files(name):
        for line in f.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if s and not s.startswith("#"):
                out.append(s)
    return tuple(out)


def read_patterns(name: str) -> tuple[str, ...]:
    return read_lines(name)


def read_table(name: str) -> tuple[tuple[str, ...], ...]:
    """Lines split on white space (e.g. ``theme word word …``)."""
    return tuple(tuple(line.split()) for line in read_lines(name))
