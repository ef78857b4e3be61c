"""Figures: every reported quantity with what it counts and its unit ("发展党员56名" → 发展党员, 56, 名).

A figure is an Arabic number, optionally with a magnitude (万/亿/万亿…) and a unit of measure from
``dictionaries/measure_units.txt`` (longest match). Its subject is the noun phrase before it in
its clause, with verbs such as 增长/达到 trimmed off (``figure_subject_trim.txt``); when nothing
but a verb stands before it ("建成12个省市医院新院区项目") the noun phrase after it is taken.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..dictionaries import read_lines, read_table
from ..resources import process_model
from .matrix import content_sentences
from .text import files_table, unit_list

if TYPE_CHECKING:
    from jieba.posseg import POSTokenizer

COLUMNS = ["unit", "doc_id", "article_id", "subject", "value", "measure_unit", "is_target", "text",
           "page", "idx", "label"]

MAGNITUDES = ("万亿", "亿", "万", "千", "百")
_BOUNDARY = "，,；;：:。！？!?（）()\n"  # clause ends; 、 only separates list items
_QUOTES = "“”\"'‘’《》「」"


@cache
def _figure_re() -> re.Pattern[str]:
    units = sorted({u for u in read_lines("measure_units.txt")}, key=len, reverse=True)
    unit_alt = "|".join(re.escape(u) for u in units)
    mag_alt = "|".join(MAGNITUDES)
    # number (1,234.5) · optional 多/余 · optional magnitude · unit (or a bare magnitude: "420万群众")
    return re.compile(
        rf"(?<![\d.A-Za-z])(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)"
        rf"(?P<approx>多|余)?"
        rf"(?:(?P<unit>(?:{mag_alt})?(?:{unit_alt})|％)|(?P<mag>{mag_alt}))"
    )


@cache
def _trim_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = read_table("figure_subject_trim.txt")
    tails = tuple(sorted((r[1] for r in rows if r[0] == "tail" and len(r) > 1), key=len, reverse=True))
    heads = tuple(sorted((r[1] for r in rows if r[0] == "head" and len(r) > 1), key=len, reverse=True))
    return tails, heads


@cache
def _target_re() -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in read_lines("figure_cues.txt")))


@process_model
def _pos() -> POSTokenizer:
    """jieba's POS tagger over our segmenter (its user words and their tags included).

    Imported here: jieba.posseg reads the POS tags of jieba's dictionary on import (~0.5 s),
    needed only to make parts. ``POSTokenizer(tokenizer())`` would read them a second time; the
    dictionary is the same, so the tagger takes a copy of the tags the import read."""
    from jieba import posseg

    from ..segment import tokenizer

    pos = posseg.POSTokenizer.__new__(posseg.POSTokenizer)
    pos.tokenizer = tokenizer()
    pos.word_tag_tab = dict(posseg.dt.word_tag_tab)
    return pos


@lru_cache(maxsize=200_000)  # subjects recur across reports ("地区生产总值增长")
def _trim(subject: str) -> str:
    tails, heads = _trim_words()
    s = subject.strip(_QUOTES + " ")
    changed = True
    while changed and s:
        changed = False
        for t in tails:
            if s.endswith(t) and len(s) > len(t):
                s, changed = s[: -len(t)], True
                break
            if s == t:
                s, changed = "", True
                break
        for h in heads:
            if s.startswith(h) and len(s) > len(h):
                s, changed = s[len(h):], True
                break
        s = s.strip(_QUOTES + " ")
    return s


def _noun_after(rest: str) -> str:
    """The noun phrase opening ``rest`` (the words after a figure), by jieba part of speech."""
    return _noun_phrase(rest[:30])


# part-of-speech cuts are the slow step; the same short phrases ("增长", "新增…") recur across
# reports, so each distinct phrase is cut once per process
@lru_cache(maxsize=200_000)
def _noun_phrase(rest: str) -> str:
    out = []
    for w, flag in _pos().lcut(rest, HMM=False):
        if w in _QUOTES:
            continue
        if flag.startswith(("n", "vn", "b", "j", "l", "eng", "f", "s")) or (out and flag in ("a", "m")):
            out.append(w)
        else:
            break
    return "".join(out)


@lru_cache(maxsize=200_000)
def _all_verbs(s: str) -> bool:
    return bool(s) and all(f.startswith(("v", "d", "p", "c", "u", "m")) for _, f in _pos().lcut(s, HMM=False))


_STOP_RE = re.compile("[" + re.escape(_BOUNDARY) + "]")
_END_RE = re.compile("[" + re.escape(_BOUNDARY + "、") + "]")


class _Clauses:
    """Where the clauses of one sentence start and end (its marks found once, then bisected for
    each figure: searching the text for each mark per figure was a quarter of figure_part)."""

    def __init__(self, text: str) -> None:
        self.n = len(text)
        self.stops = [m.start() for m in _STOP_RE.finditer(text)]
        self.ends = [m.start() for m in _END_RE.finditer(text)]

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """(just after the last clause end before ``start``, the first end or 、 at/after ``end``)."""
        k = bisect_left(self.stops, start)
        j = bisect_left(self.ends, end)
        return (self.stops[k - 1] + 1 if k else 0), (self.ends[j] if j < len(self.ends) else self.n)


def extract_figures(text: str, label: str = "") -> list[dict]:
    """Every figure in one sentence: subject, value, measure_unit, is_target."""
    out: list[dict] = []
    last_subject = ""
    colon = re.split(r"[：:]", text, maxsplit=1)[0] if re.search(r"[：:]", text) else ""
    clauses: _Clauses | None = None
    for m in _figure_re().finditer(text):
        num = m.group("num").replace(",", "")
        try:
            value = float(num)
        except ValueError:  # cannot happen with the pattern, but never crash on odd input
            continue
        unit = (m.group("unit") or m.group("mag") or "").replace("％", "%")
        clauses = clauses or _Clauses(text)
        a, b = clauses.bounds(m.start(), m.end())
        # the subject runs back to the previous figure or the clause start
        prev_end = out[-1]["_end"] if out and out[-1]["_end"] > a else a
        raw_before = text[prev_end:m.start()]
        listed = raw_before.startswith("、")  # "…3万亿元、年均增长4.7%": a list of figures
        before = _trim(raw_before.lstrip("、"))
        after = text[m.end():b]
        subject = before
        if (len(before) <= 2 or _all_verbs(before)) and after:
            noun = _noun_after(after)
            if noun:
                subject = _trim(noun)
        if not subject or listed and len(subject) <= 2 or _all_verbs(subject):
            # "产值分别达到1230亿元、120亿元" / "收入增加1000亿元，稳步达到3000亿元": same subject
            subject = last_subject or subject
        clause = text[a:b]
        is_target = label == "measure" or bool(_target_re().search(clause)) or bool(
            colon and _target_re().search(colon))
        out.append({"subject": subject, "value": value, "measure_unit": unit,
                    "is_target": is_target, "_end": m.end()})
        last_subject = subject or last_subject
    for f in out:
        del f["_end"]
    return out


def figure_part(sentences: pd.DataFrame) -> pd.DataFrame:
    """One file's figures: one row per reported quantity in its report text."""
    return _figure_frame(_figure_rows(sentences))


def _figure_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.astype({"value": "float64", "is_target": "bool", "page": "Int64"})


def _figure_rows(sentences: pd.DataFrame) -> list[dict[str, Any]]:
    """``figure_part``'s rows, the sentences' values as pandas gives them (``tolist``)."""
    s = content_sentences(sentences)
    pos = _with_digits(s["text"])
    rows: list[dict[str, Any]] = []
    if not pos:
        return rows
    units = unit_list(s)
    # plain lists: iterating rows of Arrow-backed columns is several times slower
    cols = [s[c].tolist() if c in s else [""] * len(s)
            for c in ("text", "label", "doc_id", "article_id", "page", "idx")]
    for k in pos:
        text, label, doc_id, article_id, page, idx = (c[k] for c in cols)
        for f in extract_figures(text, label):
            rows.append({"unit": units[k], "doc_id": doc_id, "article_id": article_id, **f,
                         "text": text, "page": page, "idx": idx, "label": label})
    return rows


def _with_digits(text: pd.Series) -> list[int]:
    r"""Rows whose text holds a digit, as ``text.str.contains(r"\d", na=False)`` finds them (on an
    Arrow-backed column that is RE2's ASCII ``\d``: asked of Arrow directly, without the
    Series round trip)."""
    if isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow":
        hit = pc.fill_null(pc.match_substring_regex(pa.array(text), r"\d"), False)
        return np.flatnonzero(np.asarray(hit, dtype=bool)).tolist()
    return np.flatnonzero(text.str.contains(r"\d", regex=True, na=False).to_numpy()).tolist()


_TEXT_COLUMNS = ("unit", "doc_id", "article_id", "subject", "measure_unit", "text", "label")


def figure_table(sentences: pd.DataFrame) -> pa.Table:
    """``figure_part`` as the Arrow table a file's part holds. Rows of a run's values (text all
    ``str``, ``page`` ints or NA, ``idx`` ints) go straight to Arrow (the table
    ``pa.Table.from_pandas(figure_part(...))`` gives, pandas metadata included); anything else
    through the frame."""
    rows = _figure_rows(sentences)
    plain = (rows and all(set(type(r[c]) for r in rows) <= {str} for c in _TEXT_COLUMNS)
             and set(type(r["idx"]) for r in rows) <= {int}
             and set(type(r["page"]) for r in rows) <= {int, type(pd.NA)})
    if not plain:
        return pa.Table.from_pandas(_figure_frame(rows), preserve_index=False)
    schema = _part_schema()
    return pa.Table.from_arrays(
        [pa.array([r[c] for r in rows], schema.field(c).type, from_pandas=True) for c in COLUMNS],
        schema=schema)


@cache
def _part_schema() -> pa.Schema:
    """The schema (pandas metadata included) of ``figure_part``'s frame of a run's rows."""
    dtypes = {c: "str" for c in COLUMNS} | {"value": "float64", "is_target": "bool", "page": "Int64",
                                            "idx": "int64"}
    empty = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})
    return pa.Schema.from_pandas(empty, preserve_index=False)


#: memo entry: the season's figures stored whole (``text.files_table``)
FILES_KEY = "figures-files-v1"


def combine_figures(parts: Iterable[pd.DataFrame | pa.Table], memo: Any = None,
                    digests: Sequence[str | None] | None = None) -> pd.DataFrame:
    """figures.parquet: the files' figures (frames or Arrow tables) one after the other (each row
    is local to its file). ``memo`` with ``digests`` (each file's ``table_digest`` of its part;
    ``parts`` then a sequence): the unchanged files' rows are read from the season's figures as
    last stored whole, not from 1,000 parts."""
    if memo is not None and digests is not None and isinstance(parts, Sequence) and len(parts) > 1:
        t = files_table(parts, digests, memo, FILES_KEY)
        if t is not None:
            return t.to_pandas()
    frames = [p for p in parts if len(p)]
    if not frames:
        return figure_part(pd.DataFrame(columns=["kind", "text"]))
    if all(isinstance(f, pa.Table) for f in frames):  # one concatenation in Arrow, one conversion
        return pa.concat_tables(frames, promote_options="permissive").to_pandas()
    frames = [f.to_pandas() if isinstance(f, pa.Table) else f for f in frames]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def figures_table(sentences: pd.DataFrame) -> pd.DataFrame:
    """figures.parquet: one row per reported quantity in the season's report text."""
    return combine_figures([figure_part(sentences)])
