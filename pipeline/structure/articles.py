"""Articles: where each report in a file starts, with title, unit, author, kind, page and 文号.

With a table of contents the entries are matched to body headings (tolerant of small differences
and of titles wrapped over two lines); without one — or where the TOC does not match — articles
start at separator lines ("一 : 机关党建工作调研报告") or at a title line followed by a byline (a unit
name, an author). Covers, prefaces, the TOC and afterwords become articles of kind ``front``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from ..dictionaries import read_table
from ..model import Article, Block, Document, TocEntry, stable_id
from .headings import marker_of
from .toc import DOC_NUMBER, front_words, is_front_title, offices
from .units import (
    canonical_unit,
    compact,
    is_person_name,
    looks_like_unit,
    split_unit_author,
    unit_from_source,
    unit_from_title,
)

_TEXT_KINDS = ("para", "heading")
_TERMINAL = re.compile(r"[。！？!?；;]")
_PUNCT = re.compile(r"[\s“”\"'‘’《》〈〉「」『』、，,.．。:：;；!！?？·•—\-_()（）\[\]【】#*]")
# "一 : 机关党建工作调研报告": several reports pasted into one web page
_SEPARATOR = re.compile(r"^\s*[一二三四五六七八九十]+\s*[:：]\s*(\S.{1,80})$")
_MD = re.compile(r"^\s*#{1,6}\s*")
_SUBTITLE = re.compile(r"^\s*(?:[—―─–-]{1,2})")
_DATE_LINE = re.compile(r"^\s*[（(]?\s*\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?\s*[)）]?\s*$")
#: a TOC title must match a body heading at least this well (rapidfuzz ratio, 0–100)
MATCH_RATIO = 88


@dataclass
class Start:
    block: int
    title: str
    kind: str = ""  # "front" or "" (decided from the title later)
    entry: TocEntry | None = None
    heading: str = ""  # the heading line as printed in the body
    at: int = -1  # block of the title line (block, unless leading lines were merged in)

    def __post_init__(self) -> None:
        if self.at < 0:
            self.at = self.block


@lru_cache(maxsize=1)
def _kinds() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(row[0]), row[1]) for row in read_table("article_kinds.txt") if len(row) > 1)


@lru_cache(maxsize=1)
def _author_patterns() -> tuple[re.Pattern[str], ...]:
    rows = read_table("bylines.txt")
    return tuple(re.compile(" ".join(r[1:])) for r in rows if r[0] == "author" and len(r) > 1)


def report_kind(title: str) -> str:
    """工作总结 / 调研报告 / 讲话 / 意见 / 要点 / 政府工作报告 … from the title, else 'report'."""
    for pat, kind in _kinds():
        if pat.search(title):
            return kind
    return "report"


def author_line(text: str) -> str:
    """'（执笔：汪彦明 马锐）' → '汪彦明 马锐'; '' when the line is not an author note."""
    s = text.strip()
    if len(s) > 50:
        return ""
    for pat in _author_patterns():
        m = pat.match(s)
        if m:
            return re.sub(r"\s+", " ", m.group(1)).strip()
    return ""


def byline(text: str) -> tuple[str, str] | None:
    """(unit, author) when the line is a byline: '市直属机关工委', '区信访局 金琴',
    '中共西宁市委副书记、市纪委书记、组织部部长 高海宾', '作者：王英'; else None."""
    s = _MD.sub("", text).strip()
    if not s or len(compact(s)) > 40 or _TERMINAL.search(s) or marker_of(s):
        return None
    a = author_line(s)
    if a:
        return "", a
    tokens = s.split()
    if len(tokens) >= 2 and is_person_name(tokens[-1]):
        head = " ".join(tokens[:-1])
        if compact(head).endswith(offices()):
            return "", tokens[-1]
    unit, author = split_unit_author(s)
    if unit and looks_like_unit(unit):
        return unit, author
    return None


def _key(text: str) -> str:
    """A title in the form TOC and body are compared in: no markdown, numbering or punctuation."""
    s = _MD.sub("", text)
    s = re.sub(r"^\s*[-*•·]\s*", "", s)
    s = re.sub(r"^\s*\d{1,3}\s*(?:、|[.．](?!\d))\s*", "", s)
    return _PUNCT.sub("", compact(s))


def _is_title_line(b: Block) -> bool:
    s = b.text.strip()
    return (b.kind in _TEXT_KINDS and 2 <= len(compact(s)) <= 90 and not _TERMINAL.search(s[:-1] or s)
            and not s.endswith(("，", ",", "：", ":")))


def match_toc(blocks: list[Block], entries: list[TocEntry], begin: int) -> dict[int, int]:
    """TOC entry index → block index of its heading in the body, in TOC order."""
    cands = [i for i in range(begin, len(blocks)) if _is_title_line(blocks[i])]
    keys = {i: _key(blocks[i].text) for i in cands}
    nxt = {a: b for a, b in zip(cands, cands[1:], strict=False)}
    found: dict[int, int] = {}
    pos = 0  # index into cands: matches go forward only
    for ei, e in enumerate(entries):
        ek = _key(e.title)
        if len(ek) < 2:
            continue
        for ci in range(pos, len(cands)):
            i = cands[ci]
            if _matches(ek, keys[i], keys.get(nxt.get(i, -1), "")):
                found[ei] = i
                pos = ci + 1
                break
    return found


def _matches(ek: str, k: str, k_next: str) -> bool:
    if not k:
        return False
    if k == ek:
        return True
    if len(ek) >= 5 and ek in k and len(ek) >= 0.45 * len(k):
        return True  # the heading adds the issuing unit: "中共…委员会 关于…的意见"
    if len(k) >= 4 and ek.startswith(k) and k_next and (ek == k + k_next or (k + k_next).startswith(ek)):
        return True  # the title wraps over two lines in the body
    if len(ek) >= 6 and abs(len(k) - len(ek)) <= max(3, len(ek) // 5):
        return fuzz.ratio(ek, k) >= MATCH_RATIO
    return False


def heading_starts(blocks: list[Block], begin: int, end: int) -> list[Start]:
    """Article starts without a TOC: separator lines, or a title line followed by a byline."""
    idx = [i for i in range(begin, end) if blocks[i].kind in _TEXT_KINDS]
    seps = [i for i in idx if _SEPARATOR.match(blocks[i].text)]
    if len(seps) >= 2:
        return [Start(i, _SEPARATOR.match(blocks[i].text).group(1).strip(),  # type: ignore[union-attr]
                      heading=blocks[i].text) for i in seps]
    starts: list[Start] = []
    for n, i in enumerate(idx):
        b = blocks[i]
        if (not _is_title_line(b) or marker_of(_MD.sub("", b.text)) or is_front_title(b.text)
                or _SUBTITLE.match(b.text) or _DATE_LINE.match(b.text)):
            continue
        if byline(b.text) is not None or author_line(b.text):
            continue  # the byline itself
        follow = [j for j in idx[n + 1:n + 4]]
        k = 0
        if follow and _SUBTITLE.match(blocks[follow[0]].text):
            k = 1  # "——在…会议上的讲话" subtitle between title and byline
        if k < len(follow) and _is_byline_block(blocks[follow[k]]):
            starts.append(Start(i, _clean_title(b.text), heading=b.text))
    # a title with no body before the next one is a repeat (web pages print it twice): the
    # later one, followed by the text, names the article
    merged: list[Start] = []
    for st in starts:
        if merged and not _has_body(blocks, merged[-1].block, st.block, None):
            st.block = merged[-1].block
            merged[-1] = st
        else:
            merged.append(st)
    return merged


def _is_byline_block(b: Block) -> bool:
    if b.kind not in _TEXT_KINDS:
        return False
    by = byline(b.text)
    return by is not None and (bool(by[0]) or bool(by[1]))


def _clean_title(text: str) -> str:
    s = _MD.sub("", text).strip()
    m = _SEPARATOR.match(s)
    return m.group(1).strip() if m else s


def find_articles(doc: Document, toc_span: tuple[int, int] | None = None,
                  skip: set[int] | None = None) -> list[Article]:
    """The articles of a document; warnings for TOC entries not found go to ``doc.warnings``."""
    return [a for a, _ in locate_articles(doc, toc_span, skip)]


def locate_articles(doc: Document, toc_span: tuple[int, int] | None = None,
                    skip: set[int] | None = None) -> list[tuple[Article, int]]:
    """(article, block of its title line) for every article, in order."""
    blocks = doc.blocks
    n = len(blocks)
    body_begin = toc_span[1] if toc_span else 0
    starts: list[Start] = []
    if toc_span and len(doc.toc) >= 1:
        starts = _toc_starts(doc, body_begin, skip)
    else:
        starts = heading_starts(blocks, 0, n)
    starts = _add_front(blocks, starts, toc_span, skip)
    if starts and starts[0].block > 0 and not _has_body(blocks, 0, starts[0].block, skip):
        starts[0].block = 0  # only web furniture and a page title before it: one article
    if not starts or starts[0].block > 0:
        starts.insert(0, _opening(doc, starts))
    editor = _editor_unit(doc, starts) if toc_span else ""
    out: list[tuple[Article, int]] = []
    for k, s in enumerate(starts):
        end = starts[k + 1].block if k + 1 < len(starts) else n
        out.append((_article(doc, s, end, k, editor), s.at))
    return out


def _toc_starts(doc: Document, body_begin: int, skip: set[int] | None) -> list[Start]:
    """Article starts from the TOC entries found in the body; warnings name the ones not found."""
    blocks = doc.blocks
    report_entries = [(k, e) for k, e in enumerate(doc.toc) if e.group != "front"]
    found = match_toc(blocks, [e for _, e in report_entries], body_begin)
    matched = {report_entries[k][0]: i for k, i in found.items()}
    starts = [Start(i, doc.toc[k].title, entry=doc.toc[k], heading=blocks[i].text)
              for k, i in sorted(matched.items(), key=lambda kv: kv[1])]
    missing = [e for k, e in enumerate(doc.toc) if k not in matched and e.group != "front"]
    first = starts[0].block if starts else len(blocks)
    if _has_body(blocks, body_begin, first, skip):
        # body right after the TOC that no heading claims: the unmatched entry just before the
        # first matched one (its heading was lost in conversion), else headings and bylines
        first_k = min(matched) if matched else 0
        before = [e for k, e in enumerate(doc.toc)
                  if k < first_k and k not in matched and e.group != "front"]
        if before:
            e = before[-1]
            starts.insert(0, Start(_first_text(blocks, body_begin, first), e.title, entry=e))
            doc.warnings.append(f"TOC entry '{e.title}' has no heading in the body; "
                                "the text after the TOC was given to it")
            missing = [m for m in missing if m is not e]
        else:
            starts = heading_starts(blocks, body_begin, first) + starts
    if missing:
        names = "; ".join(f"{e.title} ({e.page})" if e.page is not None else e.title for e in missing)
        doc.warnings.append(f"{len(missing)} of {len(doc.toc)} TOC entries not found in the body: {names}")
    return starts


def _editor_unit(doc: Document, starts: list[Start]) -> str:
    """The unit that compiled a volume ('宁波市鄞州区直属机关党工委编' on the cover)."""
    end = next((s.block for s in starts if s.kind != "front"), len(doc.blocks))
    for b in doc.blocks[:end]:
        t = compact(b.text)
        if b.kind in _TEXT_KINDS and t.endswith(("编", "编印", "主编", "编辑")):
            head = re.sub(r"(?:编印|主编|编辑|编)$", "", t)
            if looks_like_unit(head):
                return head
    return ""


def _has_body(blocks: list[Block], begin: int, end: int, skip: set[int] | None) -> bool:
    """Whether real text (sentences, not titles, bylines or web chrome) lies in the range."""
    for i in range(begin, end):
        b = blocks[i]
        if b.kind not in _TEXT_KINDS or (skip and i in skip):
            continue
        n = len(compact(b.text))
        if n >= 80 or (n >= 20 and _TERMINAL.search(b.text)):
            return True
    return False


def _first_text(blocks: list[Block], begin: int, end: int) -> int:
    return next((i for i in range(begin, end) if blocks[i].kind != "furniture"), begin)


def _add_front(blocks: list[Block], starts: list[Start], toc_span: tuple[int, int] | None,
               skip: set[int] | None) -> list[Start]:
    """Front matter as articles of their own: cover, 序/前言, 目录, and 编后/后记 at the end."""
    first = starts[0].block if starts else len(blocks)
    last = starts[-1].block if starts else len(blocks)
    out = list(starts)
    taken = {s.block for s in starts}
    if toc_span:
        out.append(Start(toc_span[0], "目录", kind="front"))
        taken.add(toc_span[0])
    for i, b in enumerate(blocks):
        if i in taken or b.kind not in _TEXT_KINDS or not is_front_title(b.text):
            continue
        if toc_span and toc_span[0] <= i < toc_span[1]:
            continue
        back = "后" in compact(b.text)  # 编后 / 后记: back matter after the last article
        if (i < first and not back) or (back and i > last):
            out.append(Start(i, compact(_MD.sub("", b.text)), kind="front"))
    out.sort(key=lambda s: s.block)
    if starts and out and out[0].block > 0 and (toc_span or out[0].kind == "front" or (
            len(starts) > 1 and _has_body(blocks, 0, out[0].block, skip))):
        cover = [i for i in range(0, out[0].block) if blocks[i].kind in _TEXT_KINDS]
        if cover:
            title = _clean_title(blocks[cover[0]].text)
            out.insert(0, Start(0, title, kind="front"))
    return out


def _opening(doc: Document, starts: list[Start]) -> Start:
    """The article that opens the document (a single report, or what precedes the first start)."""
    title = doc.meta.get("title", "")
    end = starts[0].block if starts else len(doc.blocks)
    if not title:
        for b in doc.blocks[:end]:
            if b.kind in _TEXT_KINDS and len(b.text.strip()) <= 60:
                title = _clean_title(b.text)
                break
    return Start(0, title)


def _article(doc: Document, s: Start, end: int, k: int, editor: str = "") -> Article:
    blocks = doc.blocks
    e = s.entry
    title = s.title or (e.title if e else "")
    kind = "front" if s.kind == "front" or compact(title) in front_words() else report_kind(title)
    unit, author, doc_number = (e.unit, e.author, e.doc_number) if e else ("", "", "")
    # the lines right under the title: subtitle, date, 文号, byline
    for i in range(s.at + 1, min(end, s.at + 5) if title != "目录" else s.at + 1):
        b = blocks[i]
        if b.kind not in _TEXT_KINDS:
            continue
        t = b.text.strip()
        if _SUBTITLE.match(t) or _DATE_LINE.match(t):
            continue
        m = DOC_NUMBER.fullmatch(t)
        if m:
            doc_number = doc_number or compact(m.group(1))
            continue
        by = byline(t)
        if by is None:
            break
        unit, author = unit or by[0], author or by[1]
    if not author:
        for i in range(end - 1, max(s.block, end - 200) - 1, -1):  # 执笔 notes close an article
            a = author_line(blocks[i].text) if blocks[i].kind in _TEXT_KINDS else ""
            if a:
                author = a
                break
    if not unit and kind != "front":
        unit = (doc.meta.get("unit", "") or unit_from_title(s.heading or title)
                or unit_from_title(title) or editor or unit_from_source(doc.source))
    page = next((blocks[i].page for i in range(s.at, min(end, s.at + 3))
                 if blocks[i].page is not None), None)
    if page is None and e is not None:
        page = e.page
    return Article(article_id=stable_id(doc.doc_id, str(k)), title=title,
                   unit=canonical_unit(unit) if unit else "", author=author, kind=kind, page=page,
                   first_block=s.block, doc_number=doc_number)
