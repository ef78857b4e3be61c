"""Analyze: cross-unit tables over a season's tagged sentences.

Two steps (issue 8): ``document_parts(doc)`` computes, once per input file and cached with it,
everything the season tables need from that file alone (counts, problem items, MinHash band keys,
figures); ``analyze_parts(parts, frames, memo)`` combines the files' parts into the tables run.py
writes as ``<name>.parquet``: the role matrix, distinctive words per unit, recurring problems,
shared passages (copies) and figures. Cross-file work worth keeping between runs (the grouping
of each block of problem items) goes into ``memo``, keyed by content.

``analyze(frames)`` is the same computation from whole-season frames (API, notebook, tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ..forked import Beside
from ..season import SENTENCES, docs_from_frames
from .copies import combine_copies, copy_part, fetch_rows, find_copies
from .figures import combine_figures, figure_table, figures_table
from .keywords import combine_keywords, distinctive_words, keyword_part
from .keywords import part_digest as keyword_digest
from .matrix import combine_matrix, content_sentences, matrix_table, role_matrix
from .problems import PROBLEM_LABELS, combine_problems, part_key, problem_parts, recurring_problems
from .text import sentence_word_codes, table_digest

__all__ = ["analyze", "analyze_parts", "document_parts", "season_part", "role_matrix",
           "content_sentences", "distinctive_words", "recurring_problems", "find_copies",
           "figures_table"]

DocTables = dict[str, pd.DataFrame]
#: parts[i]["sentences"]: the file's sentences as an Arrow table (INTERFACE)
_NAMES = frozenset({"matrix", "keywords", "copies", "figures", "digest",
                    *(part_key(label) for label in PROBLEM_LABELS)})


#: a file's content digest of each table's part (``digest[name]``): what the memo keys on
DIGEST = "digest"


def document_parts(doc: DocTables) -> dict[str, Any]:
    """Everything the season tables need from one input file (its rows only; picklable and
    deterministic). Words are taken once from the segment stage's ``tokens`` and shared.
    Problem items are one value per label (a combine loads only the labels it rebuilds), and
    ``digest`` holds a content hash of each of those values (and of the keyword counts), plus
    per label the hash of its items with their ids as codes and those ids (``problems._shape``).
    Frames are stored as Arrow tables: 1,000 of them unpickle several times faster."""
    content = content_sentences(doc["sentences"])
    problems, digests = problem_parts(content)
    keywords = keyword_part(content, words=sentence_word_codes(content))
    digests["keywords"] = keyword_digest(keywords)
    copies = copy_part(content)
    digests["copies"] = copies["digest"]  # a season of unchanged copy parts: the table from the memo
    matrix, figures = matrix_table(content), figure_table(content)
    # unchanged files' matrix counts and figures are read from the season's as last stored
    digests["matrix"], digests["figures"] = table_digest(matrix), table_digest(figures)
    return {
        "matrix": matrix,
        "keywords": keywords,
        **problems,
        "copies": copies,
        "figures": figures,
        DIGEST: digests,
    }


def season_part(doc: DocTables) -> dict[str, Any]:
    """One file's parts as :func:`analyze_parts` sees them: :func:`document_parts` plus the file's
    sentences as an Arrow table (what a run reads from the cache)."""
    part = document_parts(doc)
    part[SENTENCES] = pa.Table.from_pandas(doc["sentences"], preserve_index=False)
    return part


def analyze_parts(parts: Sequence[Mapping[str, Any]], frames: Mapping[str, pd.DataFrame],
                  memo: MutableMapping[str, Any] | None = None, *,
                  timings: dict[str, float] | None = None, fork: bool = False,
                  ready: Callable[[str, pd.DataFrame], None] | None = None,
                  meanwhile: Callable[[], None] | None = None) -> dict[str, pd.DataFrame]:
    """Season tables from the files' parts (in input order). ``frames`` (documents, articles,
    toc) are not needed by today's tables; ``memo`` keeps, across runs, the season's summed
    keyword counts (updated by the changed files' old and new parts, kept under their digests),
    each problem label's table (under the digests of its files' items; a label whose files only
    got new ids is renamed from the last table), the block groupings of recurring problems, the
    scores of candidate copy pairs (under the texts' hashes), the copy search's state (updated for
    the changed files on a rerun), the rows copies show (under each file's digest), and the
    season's matrix counts and figures as last stored whole (the files
    whose digest changed since are patched in) — same result with an empty memo as with a full
    one. A file whose part
    failed (its mapping lacks the tables' keys) is left out. ``timings``: seconds per table,
    filled in when given. ``fork``: the keywords and copies are made in a forked child meanwhile
    (:mod:`pipeline.forked`; with a memo that cannot take a child's use back, e.g. a dict, here).
    ``ready(name, table)`` is called for each table as soon as it is made here (the run writes it
    while the child is still busy), and for the child's once they are back. ``meanwhile()`` is
    run here once this process's tables are made, before waiting for the child's: work of a later
    stage that needs no table (the digest's page text)."""
    ok = [p for p in parts if _NAMES <= set(p)]  # names only: a lazy part's values stay on disk
    tm = timings if timings is not None else {}
    digests = [p[DIGEST] for p in ok] if memo is not None else None

    def words_and_copies() -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
        out, secs = {}, {}
        t0 = time.perf_counter()
        out["keywords"] = combine_keywords(
            _Column(ok, "keywords"), memo=memo,
            digests=[d.get("keywords") for d in digests] if digests is not None else None)
        _release()
        t1 = time.perf_counter()
        out["copies"] = _copies(ok, memo, digests)
        _release()
        secs.update(keywords=t1 - t0, copies=time.perf_counter() - t1)
        return out, secs

    with Beside(words_and_copies, fork=fork, memo=memo) as beside:
        out: dict[str, pd.DataFrame] = {}
        t0 = time.perf_counter()
        out["matrix"] = combine_matrix(_Column(ok, "matrix"), memo=memo,
                                       digests=_digests(digests, "matrix"))
        _release()
        t1 = time.perf_counter()
        out["problems"] = combine_problems(ok, memo=memo, digests=digests)
        _release()
        t2 = time.perf_counter()
        out["figures"] = combine_figures(_Column(ok, "figures"), memo=memo,
                                         digests=_digests(digests, "figures"))
        t3 = time.perf_counter()
        tm.update(matrix=t1 - t0, problems=t2 - t1, figures=t3 - t2)
        if ready is not None:
            for name, table in out.items():
                ready(name, table)
        if meanwhile is not None:
            meanwhile()
        tables, secs = beside.result()
    tm.update(secs)
    if ready is not None:
        for name, table in tables.items():
            ready(name, table)
    # the tables in their documented order
    return {name: (tables | out)[name] for name in ("matrix", "keywords", "problems", "copies", "figures")}


def _digests(digests: list[dict[str, Any]] | None, name: str) -> list[str | None] | None:
    return [d.get(name) for d in digests] if digests is not None else None


def each_part(parts: Sequence[Mapping[str, Any]], name: str) -> Iterator[Any]:
    """One part of every file, one file at a time (a lazy part is loaded on access)."""
    return (p[name] for p in parts)


def _copies(ok: Sequence[Mapping[str, Any]], memo: MutableMapping[str, Any] | None,
            digests: list[dict[str, Any]] | None) -> pd.DataFrame:
    # with every file's copy digest known (digest["copies"]), the parts stay on disk unless the
    # table is not in the memo
    copy_digests = [d.get("copies") for d in digests] if digests is not None else None
    copy_parts: Sequence[Any] = (_Column(ok, "copies") if copy_digests and all(copy_digests)
                                 else [p["copies"] for p in ok])
    return combine_copies(
        copy_parts, lambda f, rows: fetch_rows(copy_parts[f], ok[f][SENTENCES], rows), memo,
        digests=copy_digests)


class _Column(Sequence[Any]):
    """One part name of every file, each loaded when accessed (nothing kept)."""

    def __init__(self, parts: Sequence[Mapping[str, Any]], name: str) -> None:
        self.parts, self.name = parts, name

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        return self.parts[i][self.name]

    def __iter__(self) -> Iterator[Any]:
        return (p[self.name] for p in self.parts)


def _release() -> None:
    """Hand the memory Arrow's allocator keeps after a combine back to the system: each combine
    reads and drops hundreds of MB of Arrow buffers (a problem label's table and grouping state),
    and the next one would otherwise peak on top of them (measured at 1,000 reports: ~330 MB
    returned after the problems)."""
    pa.default_memory_pool().release_unused()


def analyze(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Season tables from the whole-season frames (stage 6): the same code path as a run, the
    parts built here from ``frames["sentences"]`` grouped by document."""
    parts = [season_part(doc) for doc in docs_from_frames(frames)]
    small = {k: v for k, v in frames.items() if k != "sentences"}
    return analyze_parts(parts, small)
