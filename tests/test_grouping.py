"""Problem grouping without scikit-learn: ``text.tfidf_matrix`` and
``grouping.average_linkage_groups`` against sklearn itself (TfidfVectorizer and
AgglomerativeClustering, as the grouping used them), on real problem statements of the gov2026
reports and the hand grouping, and on small blocks full of ties. problems.parquet numbers its
groups from the cluster labels, so the labels must be the same numbers, not only the same
partition."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import SHARED

from pipeline.analyze.grouping import average_linkage_groups
from pipeline.analyze.problems import (
    BLOCK_SIZE,
    CHAR_WEIGHT,
    DISTANCE_THRESHOLD,
    item_blocks,
    problem_items,
    topic_from_words,
)
from pipeline.analyze.text import content_words, tfidf_matrix
from pipeline.run import process_path
from pipeline.tables import to_frames

sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
sklearn_cluster = pytest.importorskip("sklearn.cluster")

DATA = Path(__file__).parent / "data"
GOV = SHARED / "corpus" / "gov2026"


def _words(ws: Iterable[str]) -> Iterable[str]:
    return ws


def sklearn_tfidf(word_lists: list[list[str]], char_weight: float) -> sp.csr_matrix:
    """The grouping's vectors as they were made with sklearn (the code tfidf_matrix replaced)."""
    wv = sklearn_text.TfidfVectorizer(analyzer=_words, sublinear_tf=True, min_df=1, dtype=np.float64)
    cv = sklearn_text.TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True, min_df=1)
    n = len(word_lists)
    try:
        w = wv.fit_transform(word_lists)
    except ValueError:  # empty vocabulary
        w = sp.csr_matrix((n, 0))
    try:
        c = cv.fit_transform(["".join(ws) for ws in word_lists]) * char_weight
    except ValueError:
        c = sp.csr_matrix((n, 0))
    m = sp.hstack([w, c]).tocsr()
    norms = np.sqrt(np.asarray(abs(m).power(2).sum(axis=1)).ravel())  # = scipy's sparse norm
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ m


def distances(x: sp.csr_matrix) -> np.ndarray:
    """Cosine distances as problems._cluster_block computes them."""
    d = np.clip(1.0 - (x @ x.T).toarray(), 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return d


def sklearn_groups(dist: np.ndarray, threshold: float) -> np.ndarray:
    model = sklearn_cluster.AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average")
    return model.fit_predict(dist)


def assert_same_matrix(ours: sp.csr_matrix, theirs: sp.csr_matrix) -> None:
    assert ours.shape == theirs.shape
    if theirs.nnz:
        assert abs(ours - theirs).max() <= 1e-12
    # stronger: the same floats in the same order in every row, so x @ x.T and with it every
    # distance the grouping compares to its threshold is the same to the last bit
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.array_equal(ours.data, theirs.data)


@pytest.fixture(scope="module")
def gov_blocks() -> list[list[list[str]]]:
    """The topic-word lists of every block the grouping makes of the gov2026 reports' problem
    statements (per label: distinct texts sorted, split into blocks as a season is)."""
    s = to_frames([process_path(p, str(p)) for p in sorted(GOV.glob("*.txt"))])["sentences"]
    items = problem_items(s)
    out = []
    for _, it in items.groupby("label", sort=True):
        first = it.drop_duplicates("text").sort_values("text")
        texts = first["text"].tolist()
        words = [topic_from_words(ws) for ws in first["words"]]
        blocks = (item_blocks(texts, words, [str(t) for t in first["theme"]], BLOCK_SIZE)
                  if len(texts) > BLOCK_SIZE else [np.arange(len(texts))])
        out += [[words[i] for i in b.tolist()] for b in blocks]
    assert len(out) >= 4 and sum(map(len, out)) > 4000  # both labels, measures in several blocks
    return out


@pytest.fixture(scope="module")
def hand_words() -> list[list[str]]:
    hand = [json.loads(line) for line in (DATA / "problem_groups.jsonl").read_text("utf-8").splitlines()]
    return [topic_from_words(content_words(h["text"])) for h in sorted(hand, key=lambda h: h["text"])]


def test_tfidf_matrix_is_sklearns_on_real_blocks(gov_blocks: list[list[list[str]]],
                                                 hand_words: list[list[str]]) -> None:
    for words in [*gov_blocks, hand_words]:
        texts = ["".join(ws) for ws in words]
        for weight in (CHAR_WEIGHT, 1.0):
            assert_same_matrix(tfidf_matrix(texts, words, weight), sklearn_tfidf(words, weight))


def test_tfidf_matrix_edge_cases() -> None:
    """Uppercase Latin (sklearn lowercases the char half only), whitespace runs (collapsed),
    texts without words, a single word, no words at all (empty vocabulary), one text."""
    cases = [
        [["GDP", "增长"], ["gdp", "增长", "GDP"], [], ["A  B", "c\t\td"], ["A B"], ["新"]],
        [[], []],
        [["单"]],
        [["发展", "发展", "不足"]],
        [["一"], ["二"], ["一", "二"]],  # single characters: few char 2-grams
        [["一"], ["二"], []],  # words, but no char 2-gram at all
    ]
    for words in cases:
        texts = ["".join(ws) for ws in words]
        assert_same_matrix(tfidf_matrix(texts, words, CHAR_WEIGHT), sklearn_tfidf(words, CHAR_WEIGHT))


def test_groups_are_sklearns_on_real_blocks(gov_blocks: list[list[list[str]]],
                                            hand_words: list[list[str]]) -> None:
    compared = 0
    for words in [*gov_blocks, hand_words]:
        d = distances(tfidf_matrix(["".join(ws) for ws in words], words, CHAR_WEIGHT))
        for threshold in (0.5, DISTANCE_THRESHOLD, 0.95):
            ours, theirs = average_linkage_groups(d, threshold), sklearn_groups(d, threshold)
            assert np.array_equal(ours, theirs), (len(words), threshold)
            compared += 1
            assert 1 < ours.max() + 1 < len(words)  # a real cut, neither one group nor none
    assert compared >= 15


def test_groups_are_sklearns_with_ties() -> None:
    """Small blocks full of equal distances (duplicate rows, rounded values, all equal): ties
    decide which merge comes first and so the numbering."""
    rng = np.random.default_rng(8)
    for trial in range(300):
        n = int(rng.integers(2, 40))
        kind = trial % 3
        if kind == 0:  # duplicate rows of a few vectors
            base = rng.random((max(1, n // 3), 6)) ** 3
            x = base[rng.integers(0, len(base), size=n)]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            d = np.clip(1.0 - x @ x.T, 0.0, 2.0)
        elif kind == 1:  # a few distinct distance values
            a = rng.random((n, n))
            d = np.round((a + a.T) / 2, 1)
        else:  # every distance the same
            d = np.full((n, n), float(rng.choice([0.0, 0.5, DISTANCE_THRESHOLD, 1.0])))
        np.fill_diagonal(d, 0.0)
        for threshold in (0.3, DISTANCE_THRESHOLD, 1.0, 2.5):
            assert np.array_equal(average_linkage_groups(d, threshold),
                                  sklearn_groups(d, threshold)), (trial, n, threshold)
    # threshold 0: every merge counts, every item its own group
    d = np.round(rng.random((7, 7)), 1)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    assert np.array_equal(average_linkage_groups(d, 0.0), sklearn_groups(d, 0.0))
    assert np.array_equal(average_linkage_groups(np.zeros((1, 1)), 0.5), [0])
    assert len(average_linkage_groups(np.zeros((0, 0)), 0.5)) == 0
    with pytest.raises(ValueError):
        average_linkage_groups(np.zeros((2, 3)), 0.5)


def test_regrouping_a_block_does_not_import_sklearn(hand_words: list[list[str]]) -> None:
    """A rerun regroups one block: sklearn (~2 s to import with scipy.stats) is not needed."""
    texts = ["".join(ws) for ws in hand_words]
    code = ("import json, sys\n"
            "from pipeline.analyze.problems import _block_groups\n"
            "texts, words = json.loads(sys.stdin.read())\n"
            "print(json.dumps(_block_groups(texts, words, 0.85, None).tolist()))\n"
            "print('sklearn' in sys.modules, 'scipy.cluster' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps([texts, hand_words]),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[1] == "False False"  # nor scipy.cluster (0.2-0.6 s): its compiled module alone
    expected = sklearn_groups(distances(sklearn_tfidf(hand_words, CHAR_WEIGHT)), 0.85)
    assert json.loads(out[0]) == expected.tolist()
    assert pd.Series(expected).nunique() > 10


def test_linkage_without_scipy_cluster_is_scipys() -> None:
    """The compiled nn_chain loaded without scipy.cluster (``grouping._average_linkage``) gives
    the merge tree ``scipy.cluster.hierarchy.linkage(y, "average")`` gives, ties included, and
    that package imported afterwards takes the same compiled module; non-finite distances are
    refused as linkage refuses them."""
    code = """
import sys
import numpy as np
from pipeline.analyze.grouping import _average_linkage
rng = np.random.default_rng(3)
cases = []
for trial in range(200):
    n = int(rng.integers(2, 60))
    a = rng.random((n, n))
    d = (a + a.T) / 2
    if trial % 2:
        d = np.round(d, 1)  # ties
    np.fill_diagonal(d, 0.0)
    y = d[np.triu(np.ones((n, n), dtype=bool), k=1)]
    cases.append((y, n, _average_linkage(y, n)))
assert "scipy.cluster" not in sys.modules and "scipy.cluster._hierarchy" in sys.modules
try:
    _average_linkage(np.array([0.1, np.nan, 0.3]), 3)
    raise SystemExit("nan accepted")
except ValueError:
    pass
from scipy.cluster.hierarchy import linkage
for y, n, z in cases:
    assert np.array_equal(z, linkage(y, method="average")), n
print("ok", len(cases))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "200"]
