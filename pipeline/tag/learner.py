"""The learned part of the tagger: a calibrated logistic regression over the context features.

scikit-learn fits it (``training.py``); tagging only needs its numbers. The model is saved next to
this file (``model.joblib``: a dict of plain lists and numpy arrays, see :class:`LinearCalibrated`)
with a JSON sidecar (``model.json``: version, hashes of the model and of the training data, training
figures). Loading it imports neither scikit-learn nor SciPy's statistics: those cost ~1.3 s of
start-up, which a rerun that re-tags one changed report paid in full. It is loaded once per
process without network; if it is missing the rules decide alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from ..resources import process_model
from .features import Context

if TYPE_CHECKING:
    import scipy.sparse as sp

MODEL_PATH = Path(__file__).resolve().parent / "model.joblib"
SIDECAR_SUFFIX = ".json"
FORMAT = 4  # bump when the feature set or the saved layout changes incompatibly
# lexical features (words, character bigrams, openings) count less than the guide's context
# features: with few annotated reports they would otherwise learn the reports' topics
LEXICAL = ("w=", "c2=", "b1=", "b2=", "w0=")
LEXICAL_WEIGHT = 0.3
# the guide's rule decision counts more: with one held-out report at a time the model otherwise
# overrides sound rule labels on the strength of a few reports' wording (CV per kind showed it)
RULE = ("rule=", "rk=", "why=")
RULE_WEIGHT = 2.0


def feature_scale(vocab: dict[str, int]) -> np.ndarray:
    scale = np.ones(len(vocab))
    for f, i in vocab.items():
        if f.startswith(LEXICAL):
            scale[i] = LEXICAL_WEIGHT
        elif f.startswith(RULE):
            scale[i] = RULE_WEIGHT
    return scale


class FeatureRows(NamedTuple):
    """Sentences × features in CSR layout, as plain numpy arrays: tagging needs no more, and
    SciPy's sparse package costs ~0.2 s to import in every fresh process (``vectorize`` gives
    scikit-learn the same rows as a SciPy matrix for training)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int


class LinearCalibrated:
    """A fitted logistic regression, optionally with one sigmoid calibrator per class, as numbers:
    ``predict_proba`` gives what scikit-learn's ``LogisticRegression`` (multinomial) or
    ``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` over it gives (the same formulas:
    decision = X·coefᵀ + intercept; softmax, or per class expit(-(a·decision + b)) normalised to
    sum 1), checked against scikit-learn in tests/test_tag.py."""

    def __init__(self, classes: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                 sigmoid_a: np.ndarray | None = None, sigmoid_b: np.ndarray | None = None) -> None:
        self.classes_ = np.asarray(classes)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)  # one row per class, gathered by feature
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.sigmoid_a = None if sigmoid_a is None else np.asarray(sigmoid_a, dtype=np.float64)
        self.sigmoid_b = None if sigmoid_b is None else np.asarray(sigmoid_b, dtype=np.float64)

    @classmethod
    def from_sklearn(cls, clf: Any) -> LinearCalibrated:
        """From a fitted ``LogisticRegression`` or a sigmoid ``CalibratedClassifierCV`` of one
        (``ensemble=False``: one calibrated classifier) — the two ``training.fit`` makes."""
        calibrated = getattr(clf, "calibrated_classifiers_", None)
        if calibrated is None:
            return cls(clf.classes_, clf.coef_, clf.intercept_)
        if len(calibrated) != 1 or getattr(calibrated[0], "method", "sigmoid") != "sigmoid":
            raise ValueError("only one sigmoid-calibrated classifier can be saved")
        one = calibrated[0]
        est = one.estimator
        if list(est.classes_) != list(clf.classes_):
            raise ValueError("the calibrated estimator's classes differ from the model's")
        return cls(clf.classes_, est.coef_, est.intercept_,
                   np.array([c.a_ for c in one.calibrators]), np.array([c.b_ for c in one.calibrators]))

    def to_dict(self) -> dict[str, Any]:
        return {"classes": [str(c) for c in self.classes_], "coef": self.coef,
                "intercept": self.intercept, "sigmoid_a": self.sigmoid_a, "sigmoid_b": self.sigmoid_b}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearCalibrated:
        return cls(d["classes"], d["coef"], d["intercept"], d.get("sigmoid_a"), d.get("sigmoid_b"))

    def decision_function(self, X: FeatureRows | sp.csr_matrix) -> np.ndarray:
        if not isinstance(X, FeatureRows):
            return np.asarray(X @ self.coef.T) + self.intercept
        n = len(X.indptr) - 1
        # each row's sum of its features' weights, one class at a time (numpy may add in another
        # order than SciPy: the sums agree to ~1e-16, far below the 4 decimals a confidence keeps)
        row = np.repeat(np.arange(n), np.diff(X.indptr))
        out = np.column_stack([np.bincount(row, weights=w[X.indices] * X.data, minlength=n)
                               for w in self.coef]) if len(self.coef) else np.zeros((n, 0))
        return out + self.intercept

    def predict_proba(self, X: FeatureRows | sp.csr_matrix) -> np.ndarray:
        d = self.decision_function(X)
        if self.sigmoid_a is None:
            if d.shape[1] == 1:  # binary: one column for classes_[1]
                p1 = 1.0 / (1.0 + np.exp(-d[:, 0]))
                return np.column_stack([1.0 - p1, p1])
            e = np.exp(d - d.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        proba = 1.0 / (1.0 + np.exp(self.sigmoid_a * d + self.sigmoid_b))
        if d.shape[1] == 1:  # binary: the one calibrator is for classes_[1]
            out = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
        else:
            total = proba.sum(axis=1, keepdims=True)
            out = np.divide(proba, total, out=np.full_like(proba, 1.0 / proba.shape[1]),
                            where=total != 0)
        out[(1.0 < out) & (out <= 1.0 + 1e-5)] = 1.0
        return out


class Model:
    """Vocabulary + calibrated classifier; ``predict`` works on a document's contexts in one batch."""

    def __init__(self, vocab: dict[str, int], clf: Any, labels: Sequence[str], meta: dict[str, Any]):
        self.vocab = vocab
        self.clf = clf
        self.labels = list(labels)
        self.meta = meta
        # plain LR weights for the evidence of a model decision (which feature pushed hardest)
        self.coef = _base_coef(clf)
        self.scale = feature_scale(vocab)
        self.lexicon = Lexicon(vocab)

    def matrix(self, contexts: Sequence[Context]) -> FeatureRows:
        """The rows :func:`feature_rows` gives for the contexts' ``feats``, found faster: the
        lexical features (most of them) are looked up from the words and the text, not made as
        strings (``tests/test_tag_speed.py`` checks the two agree)."""
        get = self.vocab.get
        cols: list[int] = []
        counts: list[int] = []
        word, first = self.lexicon.word.get, self.lexicon.first.get
        for c in contexts:
            n = len(cols)
            cols.extend(map(get, c.head, repeat(-1)))
            cols.extend(map(get, c.tail, repeat(-1)))
            toks = c.tokens
            if toks:
                cols.extend(map(word, toks, repeat(-1)))  # one-character words: not in ``word``
                cols.append(first(toks[0], -1))
            counts.append(len(cols) - n)
        rows = np.repeat(np.arange(len(contexts), dtype=np.int64), counts)
        pair_rows, pair_cols = self.lexicon.bigrams([c.body for c in contexts])
        return _csr(np.concatenate([rows, pair_rows]),
                    np.concatenate([np.asarray(cols, dtype=np.int64), pair_cols]),
                    len(contexts), len(self.vocab), self.scale)

    def predict(self, contexts: Sequence[Context]) -> tuple[list[str], np.ndarray, FeatureRows]:
        X = self.matrix(contexts)
        if not contexts:
            return [], np.zeros((0, len(self.labels))), X
        P = self.clf.predict_proba(X)
        idx = P.argmax(axis=1)
        return [self.labels[k] for k in idx], P, X

    def top_feature(self, X: FeatureRows, row: int, label: str) -> str:
        if self.coef is None:
            return "model"
        k = self.labels.index(label)
        cols = X.indices[X.indptr[row]:X.indptr[row + 1]]
        if len(cols) == 0:
            return "model"
        w = self.coef[k, cols]
        inv = self._inverse()
        return inv[int(cols[int(np.argmax(w))])]

    @lru_cache(maxsize=1)  # noqa: B019 - one model object per process
    def _inverse(self) -> dict[int, str]:
        return {v: k for k, v in self.vocab.items()}


def _base_coef(clf: Any) -> np.ndarray | None:
    if isinstance(clf, LinearCalibrated):
        return clf.coef
    est = clf
    if hasattr(clf, "calibrated_classifiers_"):
        est = clf.calibrated_classifiers_[0].estimator
    return getattr(est, "coef_", None)


class Lexicon:
    """Vocabulary ids of the lexical features keyed by their source: ``w=`` and ``w0=`` by the
    word, ``c2=`` by the character pair as one number (:class:`IntIds`, a vectorised look-up)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        # only words of two characters or more make a ``w=`` feature (``features.lexical_feats``)
        self.word = {f[2:]: i for f, i in vocab.items() if f.startswith("w=") and len(f) > 3}
        self.first = {f[3:]: i for f, i in vocab.items() if f.startswith("w0=")}
        self.pairs = IntIds({_pair_key(ord(f[3]), ord(f[4])): i for f, i in vocab.items()
                             if f.startswith("c2=") and len(f) == 5})

    def bigrams(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, id) of every ``c2=`` feature of the texts found in the vocabulary (the text's
        number in ``texts`` as row), repeats included."""
        lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        # one code point per array item, as Python indexes a str (surrogatepass: a lone surrogate
        # is one item too)
        points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"),
                               dtype=np.uint32).astype(np.int64)
        row = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
        same = row[:-1] == row[1:]  # pairs inside one text, not across two
        ids = self.pairs.get(_pair_key(points[:-1], points[1:])[same])
        known = ids >= 0
        return row[:-1][same][known], ids[known]


def _pair_key(a: Any, b: Any) -> Any:
    """Two code points as one number (a code point needs 21 bits)."""
    return (a << 21) | b


class IntIds:
    """A fixed map of int64 keys to ids, looked up for a whole array at once (pandas' hash index:
    a sorted-array search cost ~1.5 ms per report)."""

    def __init__(self, ids: dict[int, int]) -> None:
        self.index = pd.Index(np.fromiter(ids, dtype=np.int64, count=len(ids)))
        self.ids = np.fromiter(ids.values(), dtype=np.int64, count=len(ids))

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The id of each key, -1 where there is none."""
        if not len(self.ids):
            return np.full(len(keys), -1, dtype=np.int64)
        at = self.index.get_indexer(keys)
        return np.where(at >= 0, self.ids[at], -1)


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_features: int,
         scale: np.ndarray | None) -> FeatureRows:
    """Rows from (row, column) pairs, column -1 = unknown feature: each row's columns sorted and
    unique, as :func:`feature_rows` makes them."""
    width = max(1, n_features)
    keys = rows * width + cols
    keys = keys[cols >= 0]
    if n_rows * width < 2**31:
        keys = keys.astype(np.int32)  # sorts in about half the time
    keys.sort()  # by row, then column
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys  # unique
    rows = keys // width
    cols_arr = (keys - rows * width).astype(np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = scale[cols_arr] if scale is not None else np.ones(len(cols_arr), dtype=np.float64)
    return FeatureRows(indptr, cols_arr, data, n_features)


def feature_rows(feats: Sequence[Sequence[str]], vocab: dict[str, int],
                 scale: np.ndarray | None = None) -> FeatureRows:
    """Feature strings → rows (value 1, or the feature's scale); unseen features are dropped."""
    indptr = [0]
    indices: list[int] = []
    get = vocab.get
    for fs in feats:
        cols = set(map(get, fs))
        cols.discard(None)
        indices.extend(sorted(cols))  # type: ignore[arg-type]
        indptr.append(len(indices))
    cols_arr = np.asarray(indices, dtype=np.int32)
    data = scale[cols_arr] if scale is not None else np.ones(len(indices), dtype=np.float64)
    return FeatureRows(np.asarray(indptr, dtype=np.int64), cols_arr, data, len(vocab))


def vectorize(feats: Sequence[Sequence[str]], vocab: dict[str, int],
              scale: np.ndarray | None = None) -> sp.csr_matrix:
    """:func:`feature_rows` as a SciPy CSR matrix (what scikit-learn trains on)."""
    import scipy.sparse as sp

    rows = feature_rows(feats, vocab, scale)
    return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(len(feats), rows.n_features))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(path: Path | None = None) -> Model | None:
    """The shipped (or given) model, or None when there is none or it was made for other features."""
    return _load(str(path or MODEL_PATH))


@process_model
def _load(path: str) -> Model | None:
    p = Path(path)
    if not p.is_file():
        return None
    import warnings

    import joblib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a pickle from another scikit-learn minor version
            obj = joblib.load(p)
    except Exception as e:  # unreadable model: the rules still tag; say why once
        import sys

        print(f"huibian: tag model {p.name} not loaded ({type(e).__name__}: {e}); rules only",
              file=sys.stderr)
        return None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        return None
    meta = {}
    side = p.with_suffix(SIDECAR_SUFFIX)
    if side.is_file():
        meta = json.loads(side.read_text(encoding="utf-8"))
    vocab = {f: i for i, f in enumerate(obj["features"])}
    return Model(vocab, LinearCalibrated.from_dict(obj["clf"]), obj["labels"], meta)
