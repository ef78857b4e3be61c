"""Tables of contents: find a 目录 in any input and parse its entries into title, unit, author,
printed page, the TOC sub-heading they sit under (一、工委文件) and the 文号 printed with them.

Entries come in many shapes: ``title\\tunit(7)``, ``title ..... unit (43)``, ``title……区纪委 (62)``,
a title wrapped over two lines, a wrapped tail ``- unit(164)``, a 文号 line under the title
``(鄞机党〔2008〕2号) ..... (1)``, a bare page ``..... (34)`` under a sub-heading, and in PDFs several
entries run together in one line (dot leaders reach the right margin, so layout joins them).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..dictionaries import read_lines, read_table
from ..model import Block, Document, TocEntry
from .units import compact, is_person_name, known_unit, looks_like_unit, split_unit_author

TOC_TITLE = re.compile(r"^\s*(?:#+\s*)?(?:目\s*录|目\s*次|contents)\s*[:：]?\s*$", re.I)
# the printed page at the end of an entry: "(7)", "（12）", "..... 3", "\t15"
PAGE_END = re.compile(r"(?:[（(]\s*(\d{1,4})\s*[)）]|(?:^|(?<=[.…·•\s—－-]))(\d{1,4}))\s*$")
LEADER = re.compile(r"[.…·•．]{2,}|…+|\t+|\s{2,}|[—－-]{3,}")
DOC_NUMBER = re.compile(
    r"[（(]?\s*([\u4e00-\u9fff]{1,8}\s*[〔\[［【(（]\s*\d{4}\s*[〕\]］】)）]\s*\d{1,4}\s*号)\s*[)）]?")
_BULLET = re.compile(r"^\s*[-*•·]\s*")
_ENTRY_NO = re.compile(r"^\s*\d{1,3}\s*(?:、|[.．](?!\d))\s*")
_GROUP = re.compile(r"^\s*(?:#+\s*)?(?:[一二三四五六七八九十]+\s*[、.．]|第[一二三四五六七八九十]+(?:部分|章|编|篇))")
# several entries run into one block: leader, optional unit/author, page, then the next title
_RUN_TOGETHER = re.compile(
    r"(?:[(（]\s*\d{1,4}\s*[)）]|(?<=[.…·•．\s])\d{1,4})(?=\s*[^\d\s)）.…·•．])")


@lru_cache(maxsize=1)
def front_words() -> frozenset[str]:
    return frozenset(compact(w) for w in read_lines("front_matter.txt"))


@lru_cache(maxsize=1)
def offices() -> tuple[str, ...]:
    return tuple(row[1] for row in read_table("bylines.txt") if row[0] == "office" and len(row) > 1)


def is_front_title(text: str) -> bool:
    return compact(re.sub(r"^\s*#+\s*", "", text)) in front_words()


def _has_page(text: str) -> bool:
    return bool(PAGE_END.search(text))


def find_toc(blocks: list[Block]) -> tuple[int, int] | None:
    """(index of the 目录 line, index after the last entry), or None when there is no TOC."""
    for i, b in enumerate(blocks):
        if b.kind in ("para", "heading") and TOC_TITLE.match(b.text):
            last, misses, j = i, 0, i + 1
            while j < len(blocks) and misses <= 3:
                nb = blocks[j]
                if nb.kind == "furniture":
                    j += 1
                    continue
                if nb.kind == "table":
                    break
                t = nb.text.strip()
                if _has_page(t):
                    last, misses = j, 0
                elif len(compact(t)) <= 40:
                    misses += 1  # a wrapped title, a sub-heading, or already the body
                else:
                    break
                j += 1
            if last > i:
                return i, last + 1
    return None


def mark_toc(doc: Document) -> tuple[int, int] | None:
    """Mark the blocks of a 目录 as kind 'toc', parse its entries into ``doc.toc``; return its span."""
    span = find_toc(doc.blocks)
    if span is None:
        return None
    i, j = span
    lines: list[str] = []
    for k in range(i, j):
        b = doc.blocks[k]
        if b.kind == "furniture":
            continue
        b.kind = "toc"
        if k > i:
            lines.extend(split_run_together(b.text))
    doc.toc = parse_entries(lines)
    return span


def split_run_together(text: str) -> list[str]:
    """One block holding several entries (PDF layout joined them) → one line per entry."""
    out: list[str] = []
    for line in text.split("\n"):
        cuts = [m.end() for m in _RUN_TOGETHER.finditer(line)
                if LEADER.search(line[max(0, m.start() - 40):m.start() + 1])]
        start = 0
        for c in cuts:
            out.append(line[start:c])
            start = c
        out.append(line[start:])
    return [s for s in out if s.strip()]


def parse_entries(lines: list[str]) -> list[TocEntry]:
    """Entries of a TOC from its lines (the 目录 line itself excluded)."""
    entries: list[TocEntry] = []
    pending: list[str] = []
    group = ""
    last_group_line = False

    def flush_pending() -> None:
        # lines that never got a page: an entry without one (a TOC printed without pages)
        nonlocal pending
        text = "".join(pending).strip()
        if text:
            entries.append(_make_entry(text, None, group))
        pending = []

    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if is_front_title(line):
            pending, last_group_line = [], False  # 序 / 后记 without a page: front matter
            continue
        m = PAGE_END.search(line)
        if m is None:
            if not pending and _GROUP.match(line) and not _BULLET.match(line):
                group = _clean_group(line)
                last_group_line = True
                continue
            if pending and _starts_entry(line) and _starts_entry(pending[0]):
                flush_pending()
            pending.append(line)
            last_group_line = False
            continue
        page = int(m.group(1) or m.group(2))
        rest = line[: m.start()].rstrip()
        if not pending and not _strip_leaders(rest) and last_group_line:
            entries.append(TocEntry(title=group, page=page, group=group))  # "二、图片 ….. (34)"
            last_group_line = False
            continue
        if pending:
            if _starts_entry(line) and _starts_entry(pending[0]) and not _is_tail(line):
                flush_pending()
                text = rest
            elif _is_tail(rest):
                text = "".join(pending).rstrip() + "\t" + _BULLET.sub("", rest)
            else:
                text = "".join(p.rstrip() for p in pending) + rest.lstrip()
        else:
            text = rest
        pending = []
        last_group_line = False
        if is_front_title(_strip_leaders(text)):
            entries.append(TocEntry(title=_strip_leaders(text), page=page, group="front"))
            continue
        entries.append(_make_entry(text, page, group))
    if pending:
        flush_pending()
    return entries


def _strip_leaders(text: str) -> str:
    return LEADER.sub(" ", text).strip()


def _starts_entry(line: str) -> bool:
    return bool(_BULLET.match(line) or _ENTRY_NO.match(line))


def _is_tail(text: str) -> bool:
    """The second line of a wrapped entry that holds only its unit/author: '- 城东区纪委',
    '..... 区信访局 金 琴', '\t中共西宁市委办公厅'."""
    s = text.strip()
    if not s:
        return True
    if re.match(r"^(?:[.…·•．]{2,}|…|\t)", text.lstrip(" ")):
        return True
    body = _BULLET.sub("", s)
    if _BULLET.match(s) and not _ENTRY_NO.match(body):
        unit, author = split_unit_author(_strip_leaders(body))
        return bool(unit and looks_like_unit(unit)) or bool(author and not unit)
    return False


def _clean_group(line: str) -> str:
    return re.sub(r"^\s*#+\s*", "", line).strip()


def _make_entry(text: str, page: int | None, group: str) -> TocEntry:
    text = _BULLET.sub("", text)
    doc_number = ""
    m = DOC_NUMBER.search(text)
    if m:
        doc_number = compact(m.group(1))
        text = (text[: m.start()] + "\t" + text[m.end():]).strip()
    parts = [p.strip() for p in LEADER.split(text) if p.strip()]
    title = parts[0] if parts else ""
    rest = parts[1:]
    # a preface's byline printed into the first entry ("…组织部部长 建设学习型机关 …\t高海宾"):
    # leading words that end in a job title are not the title, the name after it is not the author
    byline = False
    tokens = title.split()
    cut = max((k + 1 for k, t in enumerate(tokens[:-1]) if t.endswith(offices())), default=0)
    if cut:
        title, byline = " ".join(tokens[cut:]), True
    unit = author = ""
    for r in rest:
        u, a = split_unit_author(r)
        if byline and not u and a:
            continue
        unit, author = unit or u, author or a
    if not rest:
        title, unit, author = _split_tail(title)
    title = _ENTRY_NO.sub("", title).strip()
    return TocEntry(title=title, unit=unit, author=author, page=page, group=group,
                    doc_number=doc_number)


def _split_tail(title: str) -> tuple[str, str, str]:
    """'身边的党课 区财政局 郑红平' (no leaders) → title, unit, author — only when the unit is a
    known unit or names a place level (市/区/县/省), so '努力构建机关党建新格局' stays a title."""
    tokens = title.split()
    for k in (2, 1):
        if len(tokens) <= k:
            continue
        tail = tokens[-k:]
        unit, author = split_unit_author(" ".join(tail))
        if unit and (known_unit(unit) or re.search(r"[市区县省州]|^中共|^团", unit)):
            if k == 1 or author or is_person_name(tail[-1]):
                return " ".join(tokens[:-k]), unit, author
    return title, "", ""
