"""Copies on a rerun (issue 8): the last table is kept in the memo under the ordered digests of
the files' copy parts. An unchanged season reads it without loading a single part (when the
digests are known); any change (one file, the order, a stale memo) gives the memo-free table."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SHARED

from pipeline.analyze import DIGEST, SENTENCES, analyze_parts, copies, document_parts
from pipeline.analyze.copies import ROWS_MEMO, TABLE_MEMO, combine_copies, copy_part, fetch_rows
from pipeline.run import process_path
from pipeline.tables import to_frames
from pipeline.testing import parquet_bytes, reissued

GOV = SHARED / "corpus" / "gov2026"


@pytest.fixture(scope="module")
def season() -> tuple[list[pd.DataFrame], list[dict[str, Any]]]:
    """gov2026 plus a reissue of one report under another unit (so copies exist): each file's
    sentences and copy part."""
    docs = [to_frames([process_path(p, str(p))]) for p in sorted(GOV.glob("*.txt"))]
    s = docs[1]["sentences"].copy()
    for c in ("doc_id", "article_id", "unit"):
        s[c] = s[c].astype(str) + "-再版"
    sentences = [d["sentences"] for d in docs] + [s]
    return sentences, [copy_part(x) for x in sentences]


class Lazy(Sequence[Any]):
    """Parts that count how often one is loaded (as a run's lazy parts would read the disk)."""

    def __init__(self, parts: list[dict[str, Any]]) -> None:
        self.parts, self.loads = parts, 0

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        self.loads += 1
        return self.parts[i]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


def _fetch(parts: Sequence[Mapping[str, Any]], sentences: list[pd.DataFrame]) -> Any:
    return lambda f, rows: fetch_rows(parts[f], sentences[f], rows)


def test_unchanged_season_reads_the_table_without_loading_parts(season: Any) -> None:
    sentences, parts = season
    plain = combine_copies(parts, _fetch(parts, sentences))
    assert len(plain) > 0
    memo: dict[str, Any] = {}
    digests = [p["digest"] for p in parts]
    lazy = Lazy(parts)
    first = combine_copies(lazy, _fetch(lazy, sentences), memo, digests=digests)
    pd.testing.assert_frame_equal(first, plain)
    assert lazy.loads > 0 and TABLE_MEMO in memo
    first.loc[0, "unit_a"] = "改过"  # the table handed out is not the memo's
    lazy.loads = 0
    again = combine_copies(lazy, _fetch(lazy, sentences), memo, digests=digests)
    pd.testing.assert_frame_equal(again, plain)
    assert lazy.loads == 0  # the table came from the memo: no part was read
    # the caller may change its table: the memo's is not touched
    again.loc[0, "text"] = "改过"
    pd.testing.assert_frame_equal(combine_copies(lazy, _fetch(lazy, sentences), memo,
                                                 digests=digests), plain)
    # without digests the parts are read for theirs (once each), and the table still comes back
    lazy.loads = 0
    pd.testing.assert_frame_equal(combine_copies(lazy, _fetch(lazy, sentences), memo), plain)
    assert lazy.loads == len(parts)


def test_any_change_gives_the_memo_free_table(season: Any) -> None:
    sentences, parts = season
    memo: dict[str, Any] = {}
    plain = combine_copies(parts, _fetch(parts, sentences), memo)
    key = memo[TABLE_MEMO]["key"]
    # one file changed: the reissue under yet another unit (its digest follows what rows show)
    moved_s = [*sentences[:-1], sentences[-1].assign(unit=sentences[-1]["unit"] + "办")]
    moved = [*parts[:-1], copy_part(moved_s[-1])]
    got = combine_copies(moved, _fetch(moved, moved_s), memo)
    pd.testing.assert_frame_equal(got, combine_copies(moved, _fetch(moved, moved_s)))
    assert not got.equals(plain) and set(got["unit_b"]) != set(plain["unit_b"])
    assert memo[TABLE_MEMO]["key"] != key  # one entry, overwritten: the memo stays bounded
    # the files in another order: another season key (ties break by input order)
    order = [*range(1, len(parts)), 0]
    rp, rs = [parts[i] for i in order], [sentences[i] for i in order]
    pd.testing.assert_frame_equal(combine_copies(rp, _fetch(rp, rs), memo),
                                  combine_copies(rp, _fetch(rp, rs)))
    # a part without a digest is never answered from the memo
    nodig = [{k: v for k, v in p.items() if k != "digest"} for p in parts]
    stale = {TABLE_MEMO: {"key": None, "table": got}}
    pd.testing.assert_frame_equal(combine_copies(nodig, _fetch(nodig, sentences), stale), plain)
    # and back to the first season: the memo-free table again
    pd.testing.assert_frame_equal(combine_copies(parts, _fetch(parts, sentences), memo), plain)


def test_analyze_parts_leaves_copy_parts_on_disk_when_digests_say_nothing_changed(
        season: Any) -> None:
    """analyze_parts passes each file's digest["copies"] (when the parts carry it) so that an
    unchanged season's copy parts are not loaded at all."""
    sentences, _ = season
    reads: list[int] = []

    class Part(dict):  # type: ignore[type-arg]
        def __getitem__(self, k: str) -> Any:
            if k == "copies":
                reads.append(1)
            return super().__getitem__(k)

    parts = []
    for s in sentences:
        p = document_parts({"sentences": s})
        p[SENTENCES] = pa.Table.from_pandas(s, preserve_index=False)
        p[DIGEST] = {**p[DIGEST], "copies": p["copies"]["digest"]}
        parts.append(Part(p))
    memo: dict[str, Any] = {}
    first = analyze_parts(parts, {}, memo)["copies"]
    assert reads and len(first) > 0
    reads.clear()
    again = analyze_parts(parts, {}, memo)["copies"]
    assert reads == []
    pd.testing.assert_frame_equal(again, first)
    assert np.array_equal(again["share_a"].to_numpy(), first["share_a"].to_numpy())


def _edited(s: pd.DataFrame, tag: str) -> pd.DataFrame:
    """The file after an edit: one more body sentence, and (ids hash the file) new ids."""
    extra = s[s["kind"] == "body"].iloc[[-1]].assign(
        text="同时也要看到，基层医疗服务能力不足，乡镇卫生院人才短缺问题仍然突出。",
        idx=int(s["idx"].max()) + 1)
    out = pd.concat([s, extra], ignore_index=True)
    for c in ("doc_id", "article_id"):
        out[c] = out[c].where(out[c].isna() | (out[c] == ""), out[c].astype(str) + tag)
    return out


def test_changed_seasons_reuse_unchanged_pairs_and_give_the_memo_free_table(
        season: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sequence of reruns with one memo (a file added, several added, dropped, edited, the files
    reordered): every table is byte for byte the memo-free one, and a rerun after one edit takes
    the rows of the article pairs it did not touch from the last table (assembles fewer pairs).
    Reissues of one report make passages shared by 2 … 6 articles: past MAX_SPREAD they are
    boilerplate, so adding or dropping one reissue changes pairs between files that did not
    change."""
    sentences, _ = season
    gov = sentences[:-1]
    extra = {k: reissued(gov[1], f"-再版{k}") for k in range(1, 6)}
    steps: list[tuple[str, list[pd.DataFrame]]] = [
        ("two reissues", [*gov, extra[1], extra[2]]),
        ("one added", [*gov, extra[1], extra[2], extra[3]]),
        ("boilerplate", [*gov, extra[1], extra[2], extra[3], extra[4], extra[5]]),
        ("one dropped", [*gov, extra[1], extra[2], extra[3], extra[4]]),
        ("back under MAX_SPREAD", [*gov, extra[1], extra[2], extra[3]]),
        ("one edited", [*gov, extra[1], _edited(extra[2], "-改"), extra[3]]),
        ("another edited", [_edited(gov[0], "-改"), *gov[1:], extra[1], _edited(extra[2], "-改"),
                            extra[3]]),
        ("reordered", [extra[3], _edited(extra[2], "-改"), *gov[1:][::-1], extra[1],
                       _edited(gov[0], "-改")]),
        ("dropped a report", [extra[3], _edited(extra[2], "-改"), *gov[2:], extra[1]]),
    ]
    memo: dict[str, Any] = {}
    assembled: list[int] = []  # article pairs whose rows are made (not taken from the last table)
    passages = copies._passages
    monkeypatch.setattr(copies, "_passages", lambda rows: assembled.append(1) or passages(rows))
    sizes = []
    seasons = []  # each step's files (their digests)
    for what, files in steps:
        parts = [copy_part(s) for s in files]
        seasons.append({p["digest"] for p in parts})
        plain = combine_copies(parts, _fetch(parts, files))
        every = len(assembled)
        got = combine_copies(parts, _fetch(parts, files), memo)
        assert parquet_bytes(got) == parquet_bytes(plain), what
        sizes.append((what, len(plain), len(assembled) - every, every))
        assembled.clear()
        memo[TABLE_MEMO] = pickle.loads(pickle.dumps(memo[TABLE_MEMO]))  # as a folder memo keeps it
        memo[TABLE_MEMO] = pickle.loads(pickle.dumps(memo[TABLE_MEMO]))  # as a folder memo reads it
    by = {w: (n, f, e) for w, n, f, e in sizes}
    assert by["two reissues"][0] > 0 and by["one added"][0] > by["two reissues"][0]
    assert by["boilerplate"][0] < by["one added"][0]  # the reissued report's passages: boilerplate
    # an edit: only the edited file's pairs are assembled again, the rest come from the last table
    assert 0 < by["one edited"][1] < by["one edited"][2], sizes
    assert by["reordered"][1] == 0, sizes  # the same pairs: every row from the last table
    # the memo holds one season: one table entry, rows only of one season's files (those of the
    # last season searched anew: a rerun that updates the search state fetches only its new rows)
    assert any(set(memo[ROWS_MEMO]) <= season for season in seasons)


def test_a_stale_or_foreign_pair_key_is_never_trusted(season: Any) -> None:
    """Rows are reused only under the 128-bit content key of their article pair: a last table
    whose keys do not match (another season's) is not used, and one whose keys match but whose
    rows were altered would be — so the keys must cover everything a row is made of: a file
    that changes only a shown column (unit) gets other rows."""
    sentences, parts = season
    memo: dict[str, Any] = {}
    combine_copies(parts, _fetch(parts, sentences), memo)
    moved_s = [*sentences[:-1], sentences[-1].assign(unit=sentences[-1]["unit"] + "办")]
    moved = [*parts[:-1], copy_part(moved_s[-1])]
    got = combine_copies(moved, _fetch(moved, moved_s), memo)
    assert parquet_bytes(got) == parquet_bytes(combine_copies(moved, _fetch(moved, moved_s)))
    assert (got["unit_b"].str.endswith("办") | got["unit_a"].str.endswith("办")).any()
    # a last table from a season without copies: nothing to reuse, the same table
    empty = {TABLE_MEMO: {"key": "x", "table": combine_copies(parts[:1], _fetch(parts, sentences)),
                          "g1": np.zeros(0, np.uint64), "g2": np.zeros(0, np.uint64),
                          "run": np.zeros(0, np.int64)}}
    assert parquet_bytes(combine_copies(moved, _fetch(moved, moved_s), empty)) == parquet_bytes(got)


def test_texts_are_numbered_by_hash_and_a_collision_falls_back_to_the_strings(season: Any) -> None:
    """The season's texts get their codes from their 64-bit hashes, checked against the strings:
    the same codes and texts as hashing the strings; two different texts under one (forged) hash
    still get two codes, and the table does not change."""
    sentences, parts = season
    chunks, hashes = [p["texts"] for p in parts], [p["hashes"] for p in parts]
    codes, uniq = copies._factorize_texts(chunks, hashes)
    want_codes, want_uniq = copies._factorize(chunks)
    assert np.array_equal(codes, want_codes) and uniq.equals(want_uniq)
    assert len(uniq) < len(codes)  # the reissue repeats texts: codes are shared
    forged = dict(parts[-1])
    h = forged["hashes"].copy()
    h[1] = h[0]  # two different texts, one hash
    forged["hashes"] = h
    assert forged["texts"][0] != forged["texts"][1]
    fp = [*parts[:-1], forged]
    codes, uniq = copies._factorize_texts([p["texts"] for p in fp], [p["hashes"] for p in fp])
    assert np.array_equal(codes, want_codes) and uniq.equals(want_uniq)
    assert parquet_bytes(combine_copies(fp, _fetch(fp, sentences))) == parquet_bytes(
        combine_copies(parts, _fetch(parts, sentences)))


def test_a_file_given_twice_gives_the_memo_free_table(season: Any) -> None:
    """Two files with one digest (the same part twice) could give two article pairs one content
    key (nothing is reused then): the table is still the memo-free one."""
    sentences, parts = season
    memo: dict[str, Any] = {}
    combine_copies(parts, _fetch(parts, sentences), memo)
    twice, twice_s = [*parts, parts[-1]], [*sentences, sentences[-1]]
    want = combine_copies(twice, _fetch(twice, twice_s))
    assert len(want) > len(combine_copies(parts, _fetch(parts, sentences)))
    assert parquet_bytes(combine_copies(twice, _fetch(twice, twice_s), memo)) == parquet_bytes(want)
