"""Unit names: recognise them in bylines and TOC entries, and spell each unit one way.

The names and their aliases live in ``dictionaries/units.txt`` (users extend it); the endings that
make a short line a unit name ("…局", "…委组织部") in ``dictionaries/unit_suffixes.txt``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import PurePath

from ..dictionaries import read_lines

_SENT_PUNCT = re.compile(r"[。！？!?；;，,：:“”\"《》]")
_HAN = re.compile(r"[\u3400-\u9fff]")
# a person's name as printed in bylines: 2–4 Han characters, sometimes padded ("金 琴")
_NAME = re.compile(r"^[\u3400-\u9fff](?:\s?[\u3400-\u9fff]){1,3}$")
_PROVINCE = re.compile(
    r"(?:\d{4}年)?([\u4e00-\u9fff]{2,8}?(?:省|自治区|特别行政区|市|州|盟|县|区))(?:人民)?政府工作报告")


@lru_cache(maxsize=8192)  # one block's text is compacted by several tests (title? front? byline?)
def compact(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def unit_key(name: str) -> str:
    """The form two spellings of one unit share: no white space or brackets, no leading 中共,
    直属机关 → 直机关, 工作委员会 → 工委, 委员会 → 委."""
    s = compact(name).strip("()（）[]【】-—·.")
    s = re.sub(r"^中共", "", s)
    s = s.replace("直属机关", "直机关").replace("工作委员会", "工委").replace("委员会", "委")
    return s


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """unit_key(any spelling) → canonical name, from units.txt."""
    out: dict[str, str] = {}
    for line in read_lines("units.txt"):
        names = [n.strip() for n in re.split(r"\t+|\s*\|\s*", line) if n.strip()]
        if not names:
            continue
        for n in names:
            out.setdefault(unit_key(n), names[0])
    return out


@lru_cache(maxsize=1)
def _suffixes() -> tuple[str, ...]:
    return tuple(sorted(set(read_lines("unit_suffixes.txt")), key=len, reverse=True))


def canonical_unit(name: str) -> str:
    """One spelling per unit: the units.txt canonical name, else the name without padding."""
    s = re.sub(r"^\s*[-*•·]\s*", "", name).strip()
    s = re.sub(r"[（(]\s*\d{1,4}\s*[)）]\s*$", "", s).strip()  # a page number glued to a TOC unit
    if not s:
        return ""
    known = _aliases().get(unit_key(s))
    if known:
        return known
    return re.sub(r"直机关", "直属机关", compact(s))


def known_unit(text: str) -> bool:
    return unit_key(text) in _aliases()


def looks_like_unit(text: str, max_len: int = 30) -> bool:
    """A short unpunctuated name that is a known unit or ends like one ("市教育局", "区委办")."""
    s = compact(re.sub(r"^\s*[-*•·]\s*", "", text))
    if not s or len(s) > max_len or _SENT_PUNCT.search(s) or not _HAN.search(s):
        return False
    if known_unit(s):
        return True
    if len(s) < 2:
        return False
    return any(s.endswith(suf) and len(s) > len(suf) for suf in _suffixes())


def is_person_name(text: str) -> bool:
    return bool(_NAME.match(text.strip()))


def split_unit_author(text: str) -> tuple[str, str]:
    """'区信访局 金 琴' → ('区信访局', '金琴'); '市教育局' → ('市教育局', ''); '高海宾' → ('', '高海宾').

    The unit is the longest run of leading space-separated tokens that reads as a unit; what
    follows is the author when it reads as names.
    """
    s = text.strip()
    if not s:
        return "", ""
    tokens = s.split()
    for k in range(len(tokens), 0, -1):
        head, rest = "".join(tokens[:k]), " ".join(tokens[k:])
        if looks_like_unit(head) and (not rest or _names(rest)):
            return head, _names(rest)
    if _names(s) and not looks_like_unit(s):
        return "", _names(s)
    return compact(s), ""


def _names(text: str) -> str:
    """'金 琴' → '金琴'; '汪彦明 马锐' → '汪彦明 马锐'; anything else → ''."""
    t = text.strip()
    if not t:
        return ""
    if is_person_name(t):
        return re.sub(r"\s+", "", t)
    parts = re.split(r"[\s、，,]+", t)
    if all(2 <= len(p) <= 4 and _HAN.match(p) and not looks_like_unit(p) for p in parts):
        return " ".join(parts)
    return ""


def unit_from_title(title: str) -> str:
    """A unit the title itself names: '中共…委员会 关于…的意见', '2026年山东省政府工作报告'."""
    m = _PROVINCE.search(compact(title))
    if m:
        return m.group(1)
    title = re.sub(r"^\s*#+\s*", "", title).strip()
    head = re.split(r"\s+|关于", title, maxsplit=1)[0]
    if head != title and looks_like_unit(head) and len(compact(head)) >= 4:
        return compact(head)
    return ""


def unit_from_source(source: str) -> str:
    """The unit a file name gives ('gov2026/山东省.txt' → '山东省'); seed-style names give none."""
    stem = PurePath(source.replace("\\", "/")).stem
    if re.fullmatch(r"\d+[_-][0-9a-f]{6,}", stem):
        return ""
    return stem
