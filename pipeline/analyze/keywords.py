"""Distinctive words per unit: weighted log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words": each unit's word counts against all other
units', smoothed by a prior proportional to the season's word frequencies, and divided by the
estimate's standard error, so rare words do not win on chance alone. ``score`` is that z-score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from .matrix import content_sentences
from .text import content_words, unit_names

COLUMNS = ["unit", "word", "score", "n"]
TOP_N = 30
MIN_Z = 1.96  # only words distinctive at the 5 % level
PRIOR_SIZE = 1000.0  # α₀: how many pseudo-words the prior is worth


def distinctive_words(sentences: pd.DataFrame, top_n: int = TOP_N,
                      words: list[list[str]] | None = None) -> pd.DataFrame:
    """keywords.parquet: up to ``top_n`` words per unit with z-score ≥ ``MIN_Z``."""
    s = content_sentences(sentences)
    units = unit_names(s)
    if s.empty or units.nunique() < 2:
        return pd.DataFrame(columns=COLUMNS).astype({"score": "float64", "n": "int64"})
    if words is None:
        words = [content_words(t) for t in s["text"]]
    cv = CountVectorizer(analyzer=lambda ws: ws, min_df=2)
    try:
        x = cv.fit_transform(words)
    except ValueError:  # no word occurs twice
        return pd.DataFrame(columns=COLUMNS).astype({"score": "float64", "n": "int64"})
    codes, names = pd.factorize(units)
    membership = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                               shape=(len(names), len(codes)))
    y = np.asarray((membership @ x).todense(), dtype=float)  # units × words
    vocab = cv.get_feature_names_out()
    total = y.sum(axis=0)
    alpha = PRIOR_SIZE * total / total.sum()
    a0 = alpha.sum()
    n_unit = y.sum(axis=1, keepdims=True)
    y_rest, n_rest = total[None, :] - y, n_unit.sum() - n_unit
    # log-odds of each word in the unit vs in the rest, both smoothed by the prior
    d = (np.log((y + alpha) / (n_unit + a0 - y - alpha))
         - np.log((y_rest + alpha) / (n_rest + a0 - y_rest - alpha)))
    z = d / np.sqrt(1.0 / (y + alpha) + 1.0 / (y_rest + alpha))
    rows = []
    for u, name in enumerate(names):
        order = np.argsort(-z[u])[:top_n]
        for w in order:
            if z[u, w] < MIN_Z or y[u, w] == 0:
                break
            rows.append({"unit": name, "word": vocab[w], "score": round(float(z[u, w]), 4),
                         "n": int(y[u, w])})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"score": "float64", "n": "int64"})
