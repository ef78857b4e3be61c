"""Copies on a rerun (issue 8): the last table is kept in the memo under the ordered digests of
the files' copy parts. An unchanged season reads it without loading a single part (when the
digests are known); any change (one file, the order, a stale memo) gives the memo-free table."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SHARED

from pipeline.analyze import DIGEST, SENTENCES, analyze_parts, document_parts
from pipeline.analyze.copies import TABLE_MEMO, combine_copies, copy_part, fetch_rows
from pipeline.run import process_path
from pipeline.tables import to_frames

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
