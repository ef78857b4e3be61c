"""Copies on a rerun after a few changed files (issue 8): the search's state (distinct texts with
their band keys, confirmed pairs with the bands that proposed them, best matches) is kept in the
memo and updated for the changed files instead of searching the season again. On real reports:
every table is byte for byte the one a search with an empty memo gives, and every updated state
is the one that search leaves — after a copied passage comes, after one goes, after files come,
go and change order, and across the LSH bucket limit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from pipeline.analyze import copies
from pipeline.analyze.copies import (
    MAX_BUCKET,
    ROWS_MEMO,
    STATE_MEMO,
    TABLE_MEMO,
    combine_copies,
    copy_part,
    fetch_rows,
)
from pipeline.run import process_path
from pipeline.tables import to_frames
from pipeline.testing import parquet_bytes, reissued

GOV = SHARED / "corpus" / "gov2026"
PROBLEM = "同时也要看到，基层医疗服务能力不足，乡镇卫生院人才短缺问题仍然突出。"


@pytest.fixture(scope="module")
def gov() -> list[pd.DataFrame]:
    """The gov2026 reports' sentences, one frame per file."""
    return [to_frames([process_path(p, str(p))])["sentences"] for p in sorted(GOV.glob("*.txt"))]


def _new_ids(s: pd.DataFrame, tag: str) -> pd.DataFrame:
    """As an edit gives the file: new doc and article ids (ids hash the file)."""
    s = s.reset_index(drop=True)
    for c in ("doc_id", "article_id"):
        s[c] = s[c].where(s[c].isna() | (s[c] == ""), s[c].astype(str) + tag)
    return s


def _appended(s: pd.DataFrame, texts: Sequence[str], tag: str) -> pd.DataFrame:
    """The file after an edit that adds body sentences at its end."""
    last = s[s["kind"] == "body"].iloc[[-1]]
    extra = [last.assign(text=t, idx=int(s["idx"].max()) + 1 + k) for k, t in enumerate(texts)]
    return _new_ids(pd.concat([s, *extra], ignore_index=True), tag)


def _cut(s: pd.DataFrame, texts: Sequence[str], tag: str) -> pd.DataFrame:
    """The file after an edit that deletes these sentences."""
    return _new_ids(s[~s["text"].isin(list(texts))], tag)


def _long_body(s: pd.DataFrame, n: int, skip: int = 0) -> list[str]:
    """n consecutive long body sentences of a report (a passage worth a copy row)."""
    body = s[(s["kind"] == "body") & (s["text"].str.len() >= 40)]["text"].tolist()
    return body[skip:skip + n]


def _combine(files: list[pd.DataFrame], memo: dict[str, Any] | None) -> pd.DataFrame:
    parts = [copy_part(s) for s in files]
    return combine_copies(parts, lambda f, rows: fetch_rows(parts[f], files[f], rows), memo,
                          digests=[p["digest"] for p in parts])


def _same_state(got: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        if isinstance(v, np.ndarray):
            assert got[k].dtype == v.dtype and np.array_equal(got[k], v), k
        else:
            assert got[k] == v, k


class Searches:
    """Counts the whole-season searches (the update counts none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        search = copies._combine

        def counted(*a: Any, **k: Any) -> Any:
            self.count += 1
            return search(*a, **k)

        monkeypatch.setattr(copies, "_combine", counted)


def _pairs_between(table: pd.DataFrame, doc_a: str, doc_b: str) -> pd.DataFrame:
    a, b = table["doc_id_a"], table["doc_id_b"]
    return table[((a == doc_a) & (b == doc_b)) | ((a == doc_b) & (b == doc_a))]


def test_reruns_update_the_state_to_what_a_search_from_scratch_gives(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A sequence of reruns with one memo, each a few files away from the last: a passage copied
    from one report into another, a passage deleted from a reissue, a problem sentence added, a
    file added, one dropped, the files reordered, the copied passage deleted again. Each table
    is the memo-free one, made without a whole-season search, and each state is the one a
    search from scratch leaves."""
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)  # 21 reports: one file is ~5 % of texts
    monkeypatch.setattr(copies, "REWRITE_SHARE", -1.0)  # the state written every run: compared
    reissue = reissued(gov[1], "-再版")
    copied = _long_body(gov[8], 5, skip=10)
    deleted = _long_body(gov[1], 6, skip=30)
    with_copy = _appended(gov[5], copied, "-抄")
    steps: list[tuple[str, list[pd.DataFrame]]] = [
        ("copied passage", [*gov[:5], with_copy, *gov[6:], reissue]),
        ("passage deleted", [*gov[:5], with_copy, *gov[6:], _cut(reissue, deleted, "-删")]),
        ("problem added", [*gov[:3], _appended(gov[3], [PROBLEM], "-问题"), gov[4], with_copy,
                           *gov[6:], _cut(reissue, deleted, "-删")]),
        ("file added", [*gov[:3], _appended(gov[3], [PROBLEM], "-问题"), gov[4], with_copy,
                        *gov[6:], _cut(reissue, deleted, "-删"), reissued(gov[2], "-再版")]),
        ("file dropped", [*gov[:3], _appended(gov[3], [PROBLEM], "-问题"), gov[4], with_copy,
                          gov[6], *gov[8:], _cut(reissue, deleted, "-删"), reissued(gov[2], "-再版")]),
        ("reordered", [reissued(gov[2], "-再版"), _cut(reissue, deleted, "-删"), *gov[8:][::-1],
                       gov[6], with_copy, gov[4], _appended(gov[3], [PROBLEM], "-问题"),
                       *gov[:3]]),
        ("copy deleted", [reissued(gov[2], "-再版"), _cut(reissue, deleted, "-删"), *gov[8:][::-1],
                          gov[6], _cut(with_copy, copied, "-改"), gov[4],
                          _appended(gov[3], [PROBLEM], "-问题"), *gov[:3]]),
    ]
    memo: dict[str, Any] = {}
    first = _combine([*gov, reissue], memo)
    assert len(first) > 0 and STATE_MEMO in memo
    searches = Searches(monkeypatch)
    tables = {}
    for what, files in steps:
        got = _combine(files, memo)
        assert searches.count == 0, what  # updated, not searched
        cold: dict[str, Any] = {}
        want = _combine(files, cold)
        searches.count = 0
        assert parquet_bytes(got) == parquet_bytes(want), what
        _same_state(memo[STATE_MEMO], cold[STATE_MEMO])
        tables[what] = got
    # the steps really change passages: the copy comes and goes with the edits
    copy_doc = str(with_copy["doc_id"].iloc[0])
    assert _pairs_between(first, copy_doc, str(gov[8]["doc_id"].iloc[0])).empty
    came = _pairs_between(tables["copied passage"], copy_doc, str(gov[8]["doc_id"].iloc[0]))
    # (one passage seen from the copy, or several from the source when the copied sentences lie
    # apart there: which report is side a follows the ids, i.e. the files' paths)
    assert len(came) >= 1 and all(any(c in t for t in came["text"]) for c in copied)
    assert sum(map(len, came["text"])) == len("".join(copied))
    assert _pairs_between(tables["copy deleted"], copy_doc, str(gov[8]["doc_id"].iloc[0])).empty
    before = _pairs_between(tables["copied passage"], str(gov[1]["doc_id"].iloc[0]),
                            str(reissue["doc_id"].iloc[0]))
    after = _pairs_between(tables["passage deleted"], str(gov[1]["doc_id"].iloc[0]),
                           str(reissue["doc_id"].iloc[0]) + "-删")
    assert after["n_chars"].sum() < before["n_chars"].sum()
    assert not any(deleted[2] in t for t in after["text"])


def test_buckets_crossing_max_bucket_give_and_take_bands(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """One long sentence and variants of it (one character added) in other reports: up to
    MAX_BUCKET texts, their LSH buckets propose pairs; one more and those buckets propose none
    (their pairs lose those bands), one fewer again and the pairs are back. The updated state
    and table are those of a search from scratch at each step."""
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)
    monkeypatch.setattr(copies, "REWRITE_SHARE", -1.0)
    base = max(_long_body(gov[0], 400), key=len)
    assert len(base) >= 80 and not any((s["text"] == base).any() for s in gov[1:])
    marks = "甲乙丙丁戊己庚辛壬癸"

    def season(n_variants: int) -> list[pd.DataFrame]:
        return [gov[0], *(_appended(s, [base + marks[k]], f"-变{k}") if k < n_variants else s
                          for k, s in enumerate(gov[1:]))]

    memo: dict[str, Any] = {}
    _combine(season(MAX_BUCKET - 1), memo)  # the sentence and its variants: MAX_BUCKET texts
    searches = Searches(monkeypatch)
    masks = {}
    for n in (MAX_BUCKET, MAX_BUCKET - 1, MAX_BUCKET - 2, MAX_BUCKET, MAX_BUCKET - 1):
        files = season(n)
        got = _combine(files, memo)
        assert searches.count == 0, n
        cold: dict[str, Any] = {}
        want = _combine(files, cold)
        searches.count = 0
        assert parquet_bytes(got) == parquet_bytes(want), n
        _same_state(memo[STATE_MEMO], cold[STATE_MEMO])
        mask = _mask_of(cold[STATE_MEMO], copy_part(files[0]), copy_part(files[1]), base)
        assert masks.setdefault(n + 1, mask) == mask  # texts in the buckets → the pair's bands
    # up to MAX_BUCKET texts the buckets they share propose the pair; one more, some do not
    at_limit, over = masks[MAX_BUCKET], masks[MAX_BUCKET + 1]
    assert at_limit == masks[MAX_BUCKET - 1] and at_limit != 0
    assert over != at_limit and over & at_limit == over  # bands taken, none given


def _mask_of(state: Mapping[str, Any], part_a: Mapping[str, Any], part_b: Mapping[str, Any],
             base: str) -> int:
    """The bands of the state's pair (the sentence in part_a, its variant in part_b); 0: none."""
    norm = copies._norm(base)
    ha = next(int(h) for h, t in zip(part_a["hashes"], part_a["texts"].to_pylist(), strict=True)
              if t == norm)
    hb = next(int(h) for h, t in zip(part_b["hashes"], part_b["texts"].to_pylist(), strict=True)
              if t.startswith(norm) and t != norm)
    lo, hi = np.uint64(min(ha, hb)), np.uint64(max(ha, hb))
    at = np.flatnonzero((state["e_lo"] == lo) & (state["e_hi"] == hi))
    return int(state["e_mask"][at[0]]) if len(at) else 0


def test_the_state_is_kept_while_the_season_stays_near_it(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file edited again and again never moves the season further from the state: the state
    is not written again (each rerun updates from the same one), and the tables are right."""
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)
    monkeypatch.setattr(copies, "REWRITE_SHARE", 0.5)
    reissue = reissued(gov[1], "-再版")
    memo: dict[str, Any] = {}
    _combine([*gov, reissue], memo)
    state = memo[STATE_MEMO]
    searches = Searches(monkeypatch)
    for k in range(3):
        files = [*gov[:4], _appended(gov[4], _long_body(gov[1], 3 + k), f"-改{k}"), *gov[5:], reissue]
        got = _combine(files, memo)
        assert memo[STATE_MEMO] is state and searches.count == 0
        assert parquet_bytes(got) == parquet_bytes(_combine(files, None)), k
        searches.count = 0
    # moved far enough, the state is written: the one a search from scratch leaves
    monkeypatch.setattr(copies, "REWRITE_SHARE", 0.0)
    files = [*gov[:4], _appended(gov[4], [PROBLEM], "-改"), *gov[5:], reissue]
    _combine(files, memo)
    assert memo[STATE_MEMO] is not state
    cold: dict[str, Any] = {}
    _combine(files, cold)
    _same_state(memo[STATE_MEMO], cold[STATE_MEMO])


def test_a_far_damaged_or_colliding_state_is_searched_anew(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """The update does not apply, and the season is searched from scratch (same table), when
    the changed files hold too many of the texts, when the state is not one this code wrote, or
    when a changed file's text comes under the hash of another text."""
    reissue = reissued(gov[1], "-再版")
    memo: dict[str, Any] = {}
    _combine([*gov, reissue], memo)
    good = memo[STATE_MEMO]
    searches = Searches(monkeypatch)
    many = [*(_appended(s, [PROBLEM], f"-改{k}") for k, s in enumerate(gov[:6])), *gov[6:], reissue]
    assert parquet_bytes(_combine(many, {STATE_MEMO: good})) == parquet_bytes(_combine(many, None))
    assert searches.count == 2  # far: searched (and so is the memo-free table)
    one = [*gov[:3], _appended(gov[3], [PROBLEM], "-改"), *gov[4:], reissue]
    want = parquet_bytes(_combine(one, None))
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)
    for damaged in ({**good, "version": 0}, {"version": good["version"], "digests": good["digests"]},
                    {**good, "t_files": good["t_files"][:-1]}, "not a state"):
        searches.count = 0
        assert parquet_bytes(_combine(one, {STATE_MEMO: damaged})) == want
        assert searches.count == 1
    searches.count = 0
    assert parquet_bytes(_combine(one, {STATE_MEMO: good})) == want and searches.count == 0
    # the edited file's new text under the hash of another report's text: searched anew, and the
    # search tells the two apart by their strings (the table of the forged parts)
    parts = [copy_part(s) for s in one]
    edited = dict(parts[3])
    texts = edited["texts"].to_pylist()
    new = texts.index(copies._norm(PROBLEM))
    other = parts[0]["texts"].to_pylist()
    k = next(i for i, t in enumerate(other) if t not in texts)
    hashes = edited["hashes"].copy()
    hashes[new] = parts[0]["hashes"][k]
    edited["hashes"] = hashes
    forged = [*parts[:3], edited, *parts[4:]]

    def fetch(f: int, rows: np.ndarray) -> list[tuple[Any, ...]]:
        return fetch_rows(forged[f], one[f], rows)

    searches.count = 0
    got = combine_copies(forged, fetch, {STATE_MEMO: good}, digests=[p["digest"] for p in forged])
    assert searches.count == 1
    assert parquet_bytes(got) == parquet_bytes(combine_copies(forged, fetch)) == want


def test_a_rerun_fetches_only_its_new_pairs_rows(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun that updates the state fetches only the rows of its new pairs (the edited file's,
    whose ids changed, and their partners'), leaves the rows memo alone, and writes this
    season's table (read back on the next run of the same season)."""
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)
    reissue = reissued(gov[1], "-再版")
    memo: dict[str, Any] = {}
    _combine([*gov, reissue], memo)
    rows_memo = memo[ROWS_MEMO]
    files = [*gov[:5], _appended(gov[5], _long_body(gov[8], 5, skip=10), "-抄"), *gov[6:], reissue]
    parts = [copy_part(s) for s in files]
    fetched: list[int] = []

    def fetch(f: int, rows: np.ndarray) -> list[tuple[Any, ...]]:
        fetched.append(f)
        return fetch_rows(parts[f], files[f], rows)

    got = combine_copies(parts, fetch, memo, digests=[p["digest"] for p in parts])
    edited = str(files[5]["doc_id"].iloc[0])
    mine = got[(got["doc_id_a"] == edited) | (got["doc_id_b"] == edited)]
    docs = {edited} | set(mine["doc_id_a"]) | set(mine["doc_id_b"])
    assert str(gov[8]["doc_id"].iloc[0]) in docs
    assert {str(files[f]["doc_id"].iloc[0]) for f in fetched} == docs
    assert memo[ROWS_MEMO] is rows_memo
    key = memo[TABLE_MEMO]["key"]
    fetched.clear()
    assert parquet_bytes(combine_copies(parts, fetch, memo)) == parquet_bytes(got)
    assert memo[TABLE_MEMO]["key"] == key and not fetched


def test_equal_partners_tie_by_their_first_row_in_the_season(
        gov: list[pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A sentence whose two variants (one character added each: the same ratio) stand in one
    other report: its best match there is the variant met first in the season's row order, as
    in the search from scratch — not the one with the smaller hash (the state's order)."""
    monkeypatch.setattr(copies, "MAX_CHANGED_SHARE", 1.0)
    monkeypatch.setattr(copies, "REWRITE_SHARE", -1.0)
    memo: dict[str, Any] = {}
    _combine(gov, memo)

    def text_hash(t: str) -> int:  # as copy_part hashes a text
        return int.from_bytes(hashlib.blake2b(copies._norm(t).encode("utf-8"), digest_size=8)
                              .digest(), "little")

    variants = []
    for base in _long_body(gov[12], 4, skip=20):
        one, two = (base + mark for mark in "甲乙")
        # the variant with the larger hash first: hash order and row order disagree
        variants += [one, two] if text_hash(one) > text_hash(two) else [two, one]
    files = [*gov[:9], _appended(gov[9], variants, "-变"), *gov[10:]]
    searches = Searches(monkeypatch)
    got = _combine(files, memo)
    assert searches.count == 0
    cold: dict[str, Any] = {}
    assert parquet_bytes(got) == parquet_bytes(_combine(files, cold))
    _same_state(memo[STATE_MEMO], cold[STATE_MEMO])
