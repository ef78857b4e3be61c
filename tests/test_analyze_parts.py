"""Issue 8: the season tables from per-file parts equal the whole-frame analysis; the memo of
problem-block groupings never changes a result, and a changed file re-clusters only its blocks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from pipeline.analyze import DIGEST, analyze, analyze_parts, document_parts, season_part
from pipeline.analyze.copies import RATIO_MEMO, ROWS_MEMO, combine_copies, copy_part, fetch_rows
from pipeline.analyze.keywords import PART as KW_PART
from pipeline.analyze.keywords import STATE as KW_STATE
from pipeline.analyze.keywords import combine_keywords
from pipeline.analyze.problems import (
    PROBLEM_LABELS,
    anchor_blocks,
    cluster_texts,
    item_blocks,
    part_key,
    problem_items,
    problem_part,
)
from pipeline.run import process_path
from pipeline.tables import document_rows, to_frames  # noqa: F401 - document_rows: INTERFACE
from pipeline.testing import with_new_ids

GOV = SHARED / "corpus" / "gov2026"
TABLES = ("matrix", "keywords", "problems", "copies", "figures")


class CountingMemo(MutableMapping[str, Any]):
    """A dict that records its lookups (``reads``) and those that missed."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = dict(data or {})
        self.misses: list[str] = []
        self.reads: list[str] = []

    def __getitem__(self, k: str) -> Any:
        self.reads.append(k)
        if k not in self.data:
            self.misses.append(k)
        return self.data[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.data[k] = v

    def __delitem__(self, k: str) -> None:
        del self.data[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, pd.DataFrame]]:
    """The gov2026 season, one DocTables per file (as a run builds them), plus a reissue of one
    report under another unit (so the season holds copies)."""
    docs = [to_frames([process_path(p, str(p))]) for p in sorted(GOV.glob("*.txt"))]
    reissue = {}
    for k, df in docs[1].items():
        df = df.copy()
        for c in ("doc_id", "article_id", "unit"):
            if c in df:
                df[c] = df[c].astype(str) + "-再版"
        reissue[k] = df
    return [*docs, reissue]


def _parts(docs: list[dict[str, pd.DataFrame]]) -> list[dict[str, Any]]:
    return [season_part(d) for d in docs]


def test_parts_combine_equals_whole_frame_analysis(docs: list[dict[str, pd.DataFrame]]) -> None:
    whole = {k: pd.concat([d[k] for d in docs], ignore_index=True) for k in docs[0]}
    want = analyze(whole)
    got = analyze_parts(_parts(docs), {k: v for k, v in whole.items() if k != "sentences"})
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
        assert len(got[name]) > 0, name
    # parts are deterministic: same rows → equal values
    again = document_parts(docs[0])
    first = document_parts(docs[0])
    for label in PROBLEM_LABELS:
        assert again[part_key(label)].equals(first[part_key(label)])  # Arrow tables
    assert again[DIGEST] == first[DIGEST]
    assert np.array_equal(again["copies"]["bands"], first["copies"]["bands"])


def test_memo_never_changes_results_and_changed_file_misses_only_its_blocks(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    parts = _parts(docs)
    memo = CountingMemo()
    cold = analyze_parts(parts, {}, memo)
    assert len(memo) > 0 and memo.misses  # every block computed once
    warm_memo = CountingMemo(memo.data)
    warm = analyze_parts(parts, {}, warm_memo)
    assert warm_memo.misses == []  # nothing re-clustered
    for name in TABLES:
        pd.testing.assert_frame_equal(warm[name], cold[name], obj=name)
    # one extra gap sentence in one file: only the blocks its items fall in are missed
    d = _plus_sentence({k: v.copy() for k, v in docs[3].items()},
                       "基层党组织建设还有薄弱环节，招商引资质效不高。", "gap", "组织",
                       "基层 党组织 建设 还有 薄弱环节 ， 招商引资 质效 不高 。")
    changed = list(parts)
    changed[3] = _parts([d])[0]
    memo2 = CountingMemo(memo.data)
    after = analyze_parts(changed, {}, memo2)
    blocks = [k for k in memo.data if k.startswith("problems-block-")]
    missed = {k for k in memo2.misses if k.startswith("problems-block-")}
    assert 1 <= len(missed) <= 2 < len(blocks), (missed, len(blocks))
    # per label: only the changed label's table is rebuilt (the others are one memo read each)
    assert len({k for k in memo2.misses if k.startswith("problems-label-")}) == 1
    fresh = analyze_parts(changed, {}, None)  # and the result is the memo-free one
    for name in TABLES:
        pd.testing.assert_frame_equal(after[name], fresh[name], obj=name)


def test_copies_memo_reuses_scores_and_rows_and_never_changes_the_table(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    """Pair scores (under the texts' hashes) and fetched rows (under each file's digest) are
    reused from the memo; a stale memo (another season's entries) gives the memo-free table."""
    parts = [p["copies"] for p in _parts(docs)]
    sentences = [d["sentences"] for d in docs]
    fetched: list[int] = []

    def fetch(f: int, rows: np.ndarray) -> list[tuple[Any, ...]]:
        fetched.append(len(rows))
        return fetch_rows(parts[f], sentences[f], rows)

    plain = combine_copies(parts, fetch)
    assert len(plain) > 0 and fetched
    memo: dict[str, Any] = {}
    pd.testing.assert_frame_equal(combine_copies(parts, fetch, memo), plain)
    assert len(memo[RATIO_MEMO]["r"]) > 0 and memo[ROWS_MEMO]
    fetched.clear()
    pd.testing.assert_frame_equal(combine_copies(parts, fetch, memo), plain)
    assert fetched == []  # every row came from the memo
    # the per-file digest follows what a copy row shows: another unit → another digest
    assert copy_part(sentences[-1].copy())["digest"] == parts[-1]["digest"]
    moved_sentences = [*sentences[:-1], sentences[-1].assign(unit=sentences[-1]["unit"] + "办")]
    moved = [*parts[:-1], copy_part(moved_sentences[-1])]
    assert moved[-1]["digest"] != parts[-1]["digest"]
    # a stale memo (from the season with the reissue under another unit) gives the memo-free table
    stale: dict[str, Any] = {}
    moved_table = combine_copies(
        moved, lambda f, rows: fetch_rows(moved[f], moved_sentences[f], rows), stale)
    assert set(moved_table["unit_a"]) | set(moved_table["unit_b"]) != set(plain["unit_a"]) | set(
        plain["unit_b"])
    assert stale[ROWS_MEMO].keys() != memo[ROWS_MEMO].keys()
    pd.testing.assert_frame_equal(combine_copies(parts, fetch, stale), plain)


def test_item_blocks_are_item_local(docs: list[dict[str, pd.DataFrame]]) -> None:
    """A set larger than the block size is split by theme, then by the item's own anchor word:
    adding items never moves an existing item into another block (unless its block splits)."""
    s = pd.concat([d["sentences"] for d in docs], ignore_index=True)
    items = problem_items(s, ("measure",)).drop_duplicates("text").sort_values("text")
    assert len(items) > 1500  # the season really is blocked
    texts, words, themes = (items["text"].tolist(), items["words"].tolist(),
                            items["theme"].tolist())
    blocks = item_blocks(texts, words, themes, 300)
    assert sorted(np.concatenate(blocks).tolist()) == list(range(len(texts)))
    assert max(map(len, blocks)) <= 300
    block_of = {texts[i]: k for k, b in enumerate(blocks) for i in b.tolist()}
    for k, b in enumerate(blocks):
        assert len({themes[i] for i in b.tolist()}) == 1, k  # one theme per block
    # drop every tenth item: the rest stay with the same companions, or in a sub-block of theirs
    keep = [i for i in range(len(texts)) if i % 10]
    sub = item_blocks([texts[i] for i in keep], [words[i] for i in keep], [themes[i] for i in keep], 300)
    for b in sub:
        assert len({block_of[texts[keep[i]]] for i in b.tolist()}) <= 2
    # and the grouping of a blocked set is the same with and without a memo
    labels = cluster_texts(texts[:2000], word_lists=words[:2000], themes=themes[:2000], block_size=300)
    memo: dict[str, Any] = {}
    assert np.array_equal(labels, cluster_texts(texts[:2000], word_lists=words[:2000],
                                                themes=themes[:2000], block_size=300, memo=memo))
    assert np.array_equal(labels, cluster_texts(texts[:2000], word_lists=words[:2000],
                                                themes=themes[:2000], block_size=300, memo=memo))


def test_part_anchors_give_the_item_blocks(docs: list[dict[str, pd.DataFrame]]) -> None:
    """The anchor hashes stored per file (computed in the file's worker) block a season exactly
    as ``item_blocks`` does from the texts and topic words in the combine."""
    s = pd.concat([d["sentences"] for d in docs], ignore_index=True)
    part = problem_part(s, ("measure",)).drop_duplicates("text").sort_values("text")
    texts, themes = part["text"].tolist(), part["theme"].tolist()
    topics = [t.split(" ") if t else [] for t in part["topic"].tolist()]
    want = item_blocks(texts, topics, themes, 300)
    got = anchor_blocks(part["anchor"].to_numpy(dtype=np.uint64), themes, 300)
    assert len(want) > 3
    assert [b.tolist() for b in got] == [b.tolist() for b in want]



def _plus_sentence(doc: dict[str, pd.DataFrame], text: str, label: str, theme: str,
                   tokens: str) -> dict[str, pd.DataFrame]:
    """The file with one more body sentence at its end (its rows replaced, not changed in place)."""
    s = doc["sentences"]
    extra = s[s["kind"] == "body"].iloc[[-1]].assign(
        text=text, label=label, theme=theme, idx=int(s["idx"].max()) + 1, tokens=tokens)
    return {**doc, "sentences": pd.concat([s, extra], ignore_index=True)}


def test_an_edit_outside_problems_renames_the_last_tables_instead_of_rebuilding(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    """A file edited outside its problem statements (here: a figure sentence) gets new doc and
    article ids, so every label it has items in has a new key; the label tables are then the
    last ones with the ids replaced and re-sorted — no item re-assembled, no block read — and
    equal the memo-free tables. A second edit (a new problem) still rebuilds that label."""
    parts = _parts(docs)
    memo = CountingMemo()
    analyze_parts(parts, {}, memo)
    d = _plus_sentence(with_new_ids(docs[2], "-v2"), "补充说明：截至年底新增就业3万人。", "strength",
                       "就业", "补充 说明 ： 截至 年底 新增 就业 3 万人 。")
    changed = list(parts)
    changed[2] = _parts([d])[0]
    assert changed[2][DIGEST] != parts[2][DIGEST]
    memo2 = CountingMemo(memo.data)
    after = analyze_parts(changed, {}, memo2)
    labels = [lab for lab in PROBLEM_LABELS if changed[2][part_key(lab)].num_rows]
    assert len({k for k in memo2.misses if k.startswith("problems-label-")}) == len(labels) > 0
    assert not [k for k in memo2.reads if k.startswith("problems-block-")]  # nothing re-assembled
    fresh = analyze_parts(changed, {}, None)
    for name in TABLES:
        pd.testing.assert_frame_equal(after[name], fresh[name], obj=name)
    # keywords: the memo's counts updated with the file's old part out and its new one in
    assert any(k.startswith(KW_PART) for k in memo2.reads)
    assert memo2.data[KW_STATE]["files"] == [p[DIGEST]["keywords"] for p in changed]
    problems = after["problems"]
    assert problems["doc_id"].str.endswith("-v2").any()  # the file's rows, under their new ids
    assert not problems["doc_id"].isin(docs[2]["documents"]["doc_id"]).any()
    # then a new problem statement in the same file: its label is re-assembled (blocks read)
    d2 = _plus_sentence(d, "基层医疗服务能力不足，乡镇卫生院人才短缺问题仍然突出。", "gap", "卫生",
                        "基层 医疗 服务 能力 不足 ， 乡镇卫生院 人才 短缺 问题 仍然 突出 。")
    changed2 = list(changed)
    changed2[2] = _parts([d2])[0]
    memo3 = CountingMemo(memo2.data)
    again = analyze_parts(changed2, {}, memo3)
    assert [k for k in memo3.reads if k.startswith("problems-block-")]
    fresh2 = analyze_parts(changed2, {}, None)
    for name in TABLES:
        pd.testing.assert_frame_equal(again[name], fresh2[name], obj=name)


def test_importing_the_analysis_does_not_import_the_part_makers_libraries() -> None:
    """A rerun combines cached parts: jieba, scipy and scikit-learn (~2 s to import) are needed
    only to make a file's parts or to group a block, and are imported then."""
    code = ("import sys, pipeline.analyze; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jieba', 'scipy', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_keyword_counts_updated_in_the_memo_equal_a_recount(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    """Files replaced one after another (fewer sentences, more, another unit; the first file
    too, whose words come first): the counts kept in the memo, updated with each file's old part
    out and new part in, give the table a recount gives — words numbered by first appearance."""
    parts = [p["keywords"] for p in _parts(docs)]
    digests = [p[DIGEST]["keywords"] for p in _parts(docs)]
    memo: dict[str, Any] = {}
    base = combine_keywords(parts, memo=memo, digests=digests)
    pd.testing.assert_frame_equal(base, combine_keywords(parts))
    assert len(base) > 0 and memo[KW_STATE]["files"] == digests
    edits = []
    for i, d in enumerate(docs[:3]):
        s = d["sentences"]
        edits.append((i, {**d, "sentences": s.iloc[len(s) // 3:]}))  # its opening third gone
    s = docs[1]["sentences"]
    edits.append((1, {**docs[1], "sentences": s.assign(unit=s["unit"].astype(str) + "委")}))
    edits.append((0, docs[0]))  # and back
    for i, d in edits:
        p = _parts([d])[0]
        parts[i], digests[i] = p["keywords"], p[DIGEST]["keywords"]
        got = combine_keywords(parts, memo=memo, digests=digests)
        pd.testing.assert_frame_equal(got, combine_keywords(parts))
        assert memo[KW_STATE]["files"] == digests


class _Tracked(dict):
    """A file's parts that record which of them were loaded."""

    def __init__(self, parts: dict[str, Any], seen: list[str]) -> None:
        super().__init__(parts)
        self.seen = seen

    def __getitem__(self, k: str) -> Any:
        self.seen.append(k)
        return super().__getitem__(k)


def test_matrix_and_figures_load_only_the_changed_files_parts(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    """With the memo, the matrix is the stored sum with the changed file's old counts out and
    new ones in (a cell that drops to 0 disappears) and the figures the stored season with that
    file's rows replaced: only its parts are loaded, and both tables are byte-identical to the
    memo-free ones — also after more edits (the files changed since the season was stored),
    and for a season of another length."""
    from pipeline.analyze.figures import FILES_KEY
    from pipeline.analyze.matrix import SUM_KEY
    from pipeline.testing import parquet_bytes

    parts = _parts(docs)
    memo: dict[str, Any] = {}
    analyze_parts(parts, {}, memo)
    assert SUM_KEY in memo and FILES_KEY in memo
    for step, (i, tag) in enumerate(((3, "-a"), (3, "-b"), (7, "-c"))):
        d = {k: v.copy() for k, v in docs[i].items()}
        s = d["sentences"]
        body = s.index[s["kind"] == "body"]
        # one sentence becomes a figure; every sentence of one (theme, label) cell goes
        s.loc[body[-1], "text"] = f"截至年底新增就业{step + 3}万人。"
        cell = s.loc[body[0], ["theme", "label"]]
        d["sentences"] = s[~((s["theme"] == cell["theme"]) & (s["label"] == cell["label"]))
                           | (s.index == body[-1])].reset_index(drop=True)
        parts[i] = season_part(with_new_ids(d, tag))
        seen: list[list[str]] = [[] for _ in parts]
        tracked = [_Tracked(p, seen[k]) for k, p in enumerate(parts)]
        got = analyze_parts(tracked, {}, memo)
        fresh = analyze_parts(parts, {}, None)
        for name in ("matrix", "figures"):
            assert parquet_bytes(got[name]) == parquet_bytes(fresh[name]), (step, name)
            # the files changed since the season was stored (the first run)
            assert [k for k, s_ in enumerate(seen) if name in s_] == ([3, 7] if step == 2 else [3])
    fewer = parts[:-1]
    got = analyze_parts(fewer, {}, memo)
    fresh = analyze_parts(fewer, {}, None)
    for name in ("matrix", "figures"):
        assert parquet_bytes(got[name]) == parquet_bytes(fresh[name]), name


def _score_reference(names: np.ndarray, vocab: Any, u: np.ndarray, w: np.ndarray,
                     yv: np.ndarray, top_n: int) -> pd.DataFrame:
    """keywords._score as it was: every cell's z, then one sort by unit, score and word."""
    import pyarrow as pa

    from pipeline.analyze.keywords import MIN_Z, PRIOR_SIZE

    total = np.bincount(w, weights=yv, minlength=len(vocab))
    alpha = PRIOR_SIZE * total / total.sum()
    a0 = alpha.sum()
    n_unit = np.bincount(u, weights=yv, minlength=len(names))
    n_rest = n_unit.sum() - n_unit
    al, yr = alpha[w], total[w] - yv
    d = (np.log((yv + al) / (n_unit[u] + a0 - yv - al))
         - np.log((yr + al) / (n_rest[u] + a0 - yr - al)))
    z = d / np.sqrt(1.0 / (yv + al) + 1.0 / (yr + al))
    ok = (z >= MIN_Z) & (yv > 0)
    u, w, z, yv = u[ok], w[ok], z[ok], yv[ok]
    word_rank = np.empty(len(vocab), dtype=np.int64)
    word_rank[np.argsort(np.asarray(vocab, dtype=str), kind="stable")] = np.arange(len(vocab))
    order = np.lexsort((word_rank[w], -z, u))
    u, w, z, yv = u[order], w[order], z[order], yv[order]
    keep = (np.arange(len(u)) - np.searchsorted(u, u, side="left")) < top_n
    words = np.asarray(pa.array(vocab).take(pa.array(w[keep])).to_pylist(), dtype=object)
    out = pd.DataFrame({"unit": names[u[keep]], "word": words, "score": np.round(z[keep], 4),
                        "n": yv[keep].astype(np.int64)})
    return out.astype({"score": "float64", "n": "int64"}).reset_index(drop=True)


@pytest.mark.parametrize("top_n", [1, 3, 30])
def test_keyword_scores_from_the_candidate_cells_equal_sorting_every_cell(top_n: int) -> None:
    """``_score`` takes logs only where the unit's odds beat the rest's and sorts only each
    unit's top candidates: the same table as scoring and sorting every cell, on counts full of
    ties (units with the same counts, words with the same count in a unit) and with a unit's
    cells split over several runs."""
    import pyarrow as pa

    from pipeline.analyze.keywords import _score

    rng = np.random.default_rng(5)
    n_units, n_words = 40, 300
    vocab = [f"词{int(x):04d}" for x in rng.permutation(n_words)]
    pattern = rng.integers(1, 6, size=(4, n_words)) * (rng.random((4, n_words)) < 0.3) * 10
    dense = np.vstack([pattern[k % 4] for k in range(n_units)]).astype(float)  # equal units
    dense[::7] += rng.integers(0, 30, size=dense[::7].shape) * (rng.random(dense[::7].shape) < .1)
    u, w = np.nonzero(dense)
    yv = dense[u, w]
    names = np.array([f"单位{k}" for k in range(n_units)], dtype=object)
    for cells in (np.arange(len(u)), rng.permutation(len(u))):  # grouped by unit, and not
        got = _score(names, pa.array(vocab), u[cells], w[cells], yv[cells], top_n)
        want = _score_reference(names, vocab, u[cells], w[cells], yv[cells], top_n)
        assert len(want) > n_units // 2
        pd.testing.assert_frame_equal(got, want, check_exact=True)
