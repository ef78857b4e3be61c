"""Issue 8, session 4: the per-file parts built on plain lists and Arrow (the fast paths) equal what
the pandas frame paths give for the same rows: tables (schema and pandas metadata included), digests,
words, copy parts and the digest fragments."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import SHARED

from pipeline.analyze import document_parts
from pipeline.analyze.copies import _NOISE, _NOISE_RE2, _norm, copy_part
from pipeline.analyze.figures import figure_part, figure_table
from pipeline.analyze.matrix import content_sentences, matrix_part, matrix_table
from pipeline.analyze.problems import (
    PROBLEM_LABELS,
    _frame_parts,
    _part_frame,
    problem_items,
    problem_parts,
)
from pipeline.analyze.text import sentence_tokens, sentence_word_codes, word_codes
from pipeline.digest import qdpx, xlsx
from pipeline.run import process_path
from pipeline.tables import to_frames

GOV = SHARED / "corpus" / "gov2026"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, pd.DataFrame]]:
    """The gov2026 reports, one DocTables per file, as a run builds them."""
    return [to_frames([process_path(p, str(p))]) for p in sorted(GOV.glob("*.txt"))]


def _same(a: Any, b: Any) -> None:
    """Equal values, Arrow tables with equal schemas (pandas metadata included) and chunks."""
    if isinstance(a, pa.Table):
        assert a.equals(b, check_metadata=True)
        assert [c.num_chunks for c in a.columns] == [c.num_chunks for c in b.columns]
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, pa.Array):
        assert a.type == b.type and a.equals(b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    else:
        assert a == b


def test_problem_parts_fast_path_equals_frame_path(docs: list[dict[str, pd.DataFrame]]) -> None:
    n_items = 0
    for d in docs:
        s = content_sentences(d["sentences"])
        fast = problem_parts(s)
        slow = _frame_parts(_part_frame(problem_items(s)), PROBLEM_LABELS)
        _same(fast[0], slow[0])
        _same(fast[1], slow[1])
        n_items += sum(t.num_rows for t in fast[0].values())
    assert n_items > 100  # the reports hold problem statements: the fast path was exercised


def test_problem_parts_with_a_missing_id_take_the_frame_path(
        docs: list[dict[str, pd.DataFrame]]) -> None:
    s = content_sentences(docs[0]["sentences"]).copy()
    s["article_id"] = s["article_id"].astype(object)
    s.loc[s.index[s["label"].isin(PROBLEM_LABELS)][0], "article_id"] = None
    fast = problem_parts(s)
    slow = _frame_parts(_part_frame(problem_items(s)), PROBLEM_LABELS)
    _same(fast[0], slow[0])
    _same(fast[1], slow[1])


def test_matrix_and_figure_tables_equal_their_frames(docs: list[dict[str, pd.DataFrame]]) -> None:
    n_figures = 0
    for d in docs:
        s = content_sentences(d["sentences"])
        _same(matrix_table(s), pa.Table.from_pandas(matrix_part(s), preserve_index=False))
        t = figure_table(s)
        _same(t, pa.Table.from_pandas(figure_part(s), preserve_index=False))
        n_figures += t.num_rows
    assert n_figures > 50
    # object columns (as hand-made frames have) go through the frames: the same values
    s = content_sentences(docs[0]["sentences"]).astype({"text": object, "unit": object})
    assert figure_table(s).to_pandas().equals(figure_part(s))
    assert matrix_table(s).to_pandas().equals(matrix_part(s))


def test_sentence_word_codes_equal_the_python_split(docs: list[dict[str, pd.DataFrame]]) -> None:
    for d in docs:
        s = content_sentences(d["sentences"])
        a, b = sentence_word_codes(s), word_codes(sentence_tokens(s))
        for field in ("vocab", "codes", "offsets"):
            _same(getattr(a, field), getattr(b, field))
    # a row without tokens is cut again: the Python path, the same words
    s = content_sentences(docs[0]["sentences"]).copy()
    s.loc[s.index[0], "tokens"] = ""
    assert sentence_word_codes(s).lists() == word_codes(sentence_tokens(s)).lists()


def test_noise_pattern_for_arrow_removes_what_python_removes() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    arrow = pc.replace_substring_regex(pa.array([every], pa.large_string()), _NOISE_RE2, "")
    assert arrow[0].as_py() == _norm(every)
    removed = set(every) - set(arrow[0].as_py())
    assert removed == {c for c in every if _NOISE.fullmatch(c)}
    assert {"\u3000", "\x85", "\u2009", "，", "…"} <= removed  # Python's \s beyond ASCII, marks


def test_copy_part_same_with_arrow_or_python_cleaning(docs: list[dict[str, pd.DataFrame]]) -> None:
    for d in docs[:4]:
        s = content_sentences(d["sentences"])
        _same(copy_part(s), copy_part(s.astype({"text": object})))  # object: per-sentence _norm


def test_digest_fragments_do_not_depend_on_the_frame_path(docs: list[dict[str, pd.DataFrame]]) -> None:
    for d in docs[:4]:
        part = xlsx.document_part(d)
        rows = xlsx.sentence_rows(d["sentences"], xlsx.file_name(d), True)
        assert part.columns == tuple(rows.columns) and part.rows == len(rows)
        assert part.body == xlsx.deflate(xlsx.rows_xml(rows, xlsx.SENTENCE_WRAP))
        # the qdpx source is the sentences in idx order, whatever order the rows come in
        shuffled = dict(d, sentences=d["sentences"].sample(frac=1.0, random_state=7))
        a, b = qdpx.document_part(d), qdpx.document_part(shuffled)
        assert a is not None and dataclasses.astuple(a) == dataclasses.astuple(b)


def test_document_parts_deterministic(docs: list[dict[str, pd.DataFrame]]) -> None:
    a, b = document_parts(docs[0]), document_parts(docs[0])
    _same({k: v for k, v in a.items() if k not in ("keywords", "copies")},
          {k: v for k, v in b.items() if k not in ("keywords", "copies")})
