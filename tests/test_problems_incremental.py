"""Issue 8: when one file's problem statements change, its labels are updated from the last table
(the file's old rows out, its new ones in, only the touched blocks re-clustered) — byte-identical to
a rebuild, with an empty memo and with a full one, edit after edit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from conftest import SHARED

import pipeline.analyze.problems as P
from pipeline.analyze import DIGEST, season_part
from pipeline.run import process_path
from pipeline.tables import to_frames
from pipeline.testing import parquet_bytes

GOV = SHARED / "corpus" / "gov2026"
#: small blocks, so the 20 reports' labels are split into many blocks (as a 1,000-report season's are)
SMALL_BLOCKS = 40


@pytest.fixture(scope="module")
def docs() -> list[dict[str, pd.DataFrame]]:
    # ten of the twenty reports: enough items for many blocks, half the tagging time
    return [to_frames([process_path(p, str(p))]) for p in sorted(GOV.glob("*.txt"))[:10]]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(P, "BLOCK_SIZE", SMALL_BLOCKS)
    yield


def _combine(parts: list[dict[str, Any]], memo: dict[str, Any] | None) -> pd.DataFrame:
    digests = [p[DIGEST] for p in parts] if memo is not None else None
    return P.combine_problems(parts, memo=memo, digests=digests)


def _with(doc: dict[str, pd.DataFrame], add: pd.DataFrame | None = None,
          drop_labels: tuple[str, ...] = (), drop_n: int = 0) -> dict[str, pd.DataFrame]:
    """The file with ``add`` appended (new idx) and its first ``drop_n`` sentences of
    ``drop_labels`` removed."""
    d = {k: v.copy() for k, v in doc.items()}
    s = d["sentences"]
    if drop_n:
        gone = s.index[s["label"].isin(drop_labels)][:drop_n]
        s = s.drop(gone)
    if add is not None:
        base = s[s["kind"] == "body"].iloc[[-1]]
        rows = [base.assign(**{c: r[c] for c in add.columns}) for _, r in add.iterrows()]
        rows = [r.assign(idx=int(s["idx"].max()) + 1 + i) for i, r in enumerate(rows)]
        s = pd.concat([s, *rows], ignore_index=True)
    d["sentences"] = s.reset_index(drop=True)
    return d


def _no_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a: Any, **k: Any) -> None:
        raise AssertionError("label re-assembled from every file's items")

    monkeypatch.setattr(P, "_combine_label", fail)


def test_edits_update_labels_byte_identical_to_a_rebuild(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [season_part(d) for d in docs]
    memo: dict[str, Any] = {}
    _combine(parts, memo)
    assert any(k.startswith(P.STATE) for k in memo)
    other = docs[7]["sentences"]
    shared = other[other["label"] == "gap"].iloc[:2]  # statements another file has too
    edits = [
        # a new gap sentence (the benchmark's "problem" change)
        (3, dict(add=pd.DataFrame({
            "text": ["同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。"],
            "label": ["gap"], "theme": ["卫生"],
            "tokens": ["同时 也 要 看到 ， 基层 医疗 服务 能力 不足 ， 第 3 批 乡镇卫生院 人才 短缺 "
                       "问题 仍然 突出 。"]}))),
        # a new measure sentence (the "figure" change)
        (5, dict(add=pd.DataFrame({"text": ["补充说明：截至年底新增就业3万人。"], "label": ["measure"],
                                   "theme": ["就业"],
                                   "tokens": ["补充 说明 ： 截至 年底 新增 就业 3 万人 。"]}))),
        # problem statements removed (groups shrink, some stop recurring)
        (8, dict(drop_labels=("gap", "measure", "cause"), drop_n=6)),
        # statements another file has word for word (groups gain a unit)
        (2, dict(add=shared[["text", "label", "theme", "tokens"]].reset_index(drop=True))),
        # and the same file again: its first edit's items out
        (3, dict(drop_labels=("gap",), drop_n=3)),
    ]
    current = list(docs)
    for i, kw in edits:
        current[i] = _with(current[i], **kw)
        new = season_part(current[i])
        assert new[DIGEST] != parts[i][DIGEST]
        parts[i] = new
        with monkeypatch.context() as m:
            _no_rebuild(m)
            got = _combine(parts, memo)
        want = _combine(parts, None)  # a rebuild, empty memo
        assert len(want) > 0
        assert parquet_bytes(got) == parquet_bytes(want), (i, kw.keys())
        assert parquet_bytes(_combine(parts, memo)) == parquet_bytes(want)  # and from the full memo
    assert set(pd.concat([d["sentences"] for d in current])["doc_id"]) >= set(want["doc_id"])


def test_update_reclusters_only_the_touched_blocks(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [season_part(d) for d in docs]
    memo: dict[str, Any] = {}
    _combine(parts, memo)
    calls: list[int] = []
    real = P._cluster_block

    def counting(x: Any, threshold: float) -> Any:
        calls.append(x.shape[0])
        return real(x, threshold)

    monkeypatch.setattr(P, "_cluster_block", counting)
    d = _with(docs[4], add=pd.DataFrame({
        "text": ["基层党组织建设还有薄弱环节，招商引资质效不高。"], "label": ["gap"],
        "theme": ["组织"], "tokens": ["基层 党组织 建设 还有 薄弱环节 ， 招商引资 质效 不高 。"]}))
    parts[4] = season_part(d)
    with monkeypatch.context() as m:
        _no_rebuild(m)
        got = _combine(parts, memo)
    n_blocks = len([k for k in memo if k.startswith("problems-block-")])
    assert 1 <= len(calls) <= 2 < n_blocks, (calls, n_blocks)
    assert max(calls) <= SMALL_BLOCKS
    monkeypatch.setattr(P, "_cluster_block", real)
    assert parquet_bytes(got) == parquet_bytes(_combine(parts, None))


def test_a_text_whose_first_item_leaves_the_changed_file_takes_the_next_files_words(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A text's words (and so its block and its group's name) are its first item's: when the
    changed file held that item and loses it, the next file's item is read from its part."""
    parts = [season_part(d) for d in docs]
    memo: dict[str, Any] = {}
    s7 = docs[7]["sentences"]
    shared = s7[s7["label"] == "gap"].iloc[:2][["text", "label", "theme", "tokens"]]
    # file 0 holds the texts first, with other words and theme than file 7's
    first = _with(docs[0], add=shared.reset_index(drop=True).assign(theme="其他", tokens=""))
    parts[0] = season_part(first)
    _combine(parts, memo)
    parts[0] = season_part(docs[0])
    with monkeypatch.context() as m:
        _no_rebuild(m)
        got = _combine(parts, memo)
    assert parquet_bytes(got) == parquet_bytes(_combine(parts, None))


def test_an_update_after_a_rename_keeps_rows_and_items_together(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit outside the problems gives the file new ids: the label is renamed and re-sorted
    (``_renamed``); a later problem edit must still find each row's item."""
    parts = [season_part(d) for d in docs]
    memo: dict[str, Any] = {}
    _combine(parts, memo)
    d = {}
    for k, df in docs[1].items():
        df = df.copy()
        for c in ("doc_id", "article_id"):
            if c in df:  # ids that sort elsewhere among the other files' ids
                df[c] = df[c].where(df[c].isna() | (df[c] == ""), "0-" + df[c].astype(str))
        d[k] = df
    parts[1] = season_part(d)
    renamed = _combine(parts, memo)
    assert any("order" in v for k, v in memo.items() if k.startswith(P.LAST))
    assert parquet_bytes(renamed) == parquet_bytes(_combine(parts, None))
    d2 = _with(d, add=pd.DataFrame({
        "text": ["同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。"],
        "label": ["gap"], "theme": ["卫生"], "tokens": ["基层 医疗 服务 能力 不足 ， 乡镇卫生院 人才 短缺"]}),
        drop_labels=("measure",), drop_n=2)
    parts[1] = season_part(d2)
    with monkeypatch.context() as m:
        _no_rebuild(m)
        got = _combine(parts, memo)
    assert parquet_bytes(got) == parquet_bytes(_combine(parts, None))


@pytest.mark.parametrize("block_size", [10**6, 0])
def test_one_block_labels_and_a_label_crossing_the_block_size_are_updated_too(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch, block_size: int) -> None:
    """A label of at most ``BLOCK_SIZE`` texts is one block (any new text re-clusters it all,
    but the rows are still updated, not re-assembled); a label that crosses the size between
    two runs is blocked anew — the same table as a rebuild either way."""
    parts = [season_part(d) for d in docs]
    gap_texts = len({t for p in parts for t in p[P.part_key("gap")]["text"].to_pylist()})
    # 0: the gap label's size exactly, so the added statement makes it cross into blocks
    monkeypatch.setattr(P, "BLOCK_SIZE", block_size or gap_texts)
    memo: dict[str, Any] = {}
    _combine(parts, memo)
    d = _with(docs[6], add=pd.DataFrame({
        "text": ["同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。"],
        "label": ["gap"], "theme": ["卫生"], "tokens": ["基层 医疗 服务 能力 不足 ， 乡镇卫生院 人才 短缺"]}))
    parts[6] = season_part(d)
    with monkeypatch.context() as m:
        _no_rebuild(m)
        got = _combine(parts, memo)
    assert parquet_bytes(got) == parquet_bytes(_combine(parts, None))
    parts[6] = season_part(docs[6])  # and back below the size
    with monkeypatch.context() as m:
        _no_rebuild(m)
        back = _combine(parts, memo)
    assert parquet_bytes(back) == parquet_bytes(_combine(parts, None))


def _renamed_ids(doc: dict[str, pd.DataFrame], tag: str) -> dict[str, pd.DataFrame]:
    """The file with new ids only (an edit outside the problems), sorting first among the ids."""
    out = {}
    for k, df in doc.items():
        df = df.copy()
        for c in ("doc_id", "article_id"):
            if c in df:
                df[c] = df[c].where(df[c].isna() | (df[c] == ""), tag + df[c].astype(str))
        out[k] = df
    return out


def test_renames_after_renames_are_recipes_on_the_last_whole_table(
        docs: list[dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A renamed label is kept as a recipe (ids renamed and rows' order) on the last table stored
    whole, not compressed again: renames after renames (the same file twice, another file), a
    rerun with nothing changed and then a problem edit all give the rebuild's table."""
    parts = [season_part(d) for d in docs]
    memo: dict[str, Any] = {}
    _combine(parts, memo)
    whole = {k for k, v in memo.items() if isinstance(v, bytes)}
    for i, tag in ((1, "0-"), (1, "1-"), (3, "00-"), (3, "00-")):  # the last: nothing changed
        parts[i] = season_part(_renamed_ids(docs[i], tag))
        with monkeypatch.context() as m:
            _no_rebuild(m)
            got = _combine(parts, memo)
        assert parquet_bytes(got) == parquet_bytes(_combine(parts, None)), (i, tag)
        recipes = [v for v in memo.values() if isinstance(v, dict) and "base" in v]
        assert recipes and all(r["base"] in whole for r in recipes)  # one level, never a chain
        assert {k for k, v in memo.items() if isinstance(v, bytes)} == whole
    d = _with(_renamed_ids(docs[3], "00-"), add=pd.DataFrame({
        "text": ["同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。"],
        "label": ["gap"], "theme": ["卫生"], "tokens": ["基层 医疗 服务 能力 不足 ， 乡镇卫生院 人才 短缺"]}),
        drop_labels=("measure",), drop_n=1)
    parts[3] = season_part(d)
    with monkeypatch.context() as m:
        _no_rebuild(m)
        got = _combine(parts, memo)
    assert parquet_bytes(got) == parquet_bytes(_combine(parts, None))
