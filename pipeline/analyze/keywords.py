"""Distinctive words per unit: weighted log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words": each unit's word counts against all other
units', smoothed by a prior proportional to the season's word frequencies, and divided by the
estimate's standard error, so rare words do not win on chance alone. ``score`` is that z-score.

Everything is computed on sparse unit × word counts (only the words a unit used), so a season of
1,000 units and 100,000 words never builds a dense table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from .matrix import content_sentences
from .text import WordCodes, sentence_tokens, unit_names, word_codes

COLUMNS = ["unit", "word", "score", "n"]
TOP_N = 30
MIN_Z = 1.96  # only words distinctive at the 5 % level
PRIOR_SIZE = 1000.0  # α₀: how many pseudo-words the prior is worth
MIN_DF = 2  # a word must occur in at least this many sentences


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS).astype({"score": "float64", "n": "int64"})


def keyword_part(sentences: pd.DataFrame, words: WordCodes | None = None) -> dict[str, np.ndarray]:
    """One file's word counts: its units and content words (each in order of first appearance),
    (unit, word, count) triples and per word the number of sentences holding it (``df``).

    ``words``: content-word codes of ``content_sentences(sentences)`` when already built.
    """
    s = content_sentences(sentences)
    if words is None:
        words = word_codes(sentence_tokens(s))
    codes, names = pd.factorize(unit_names(s))
    x = words.counts()  # sentences × words
    membership = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                               shape=(len(names), len(codes)))
    y = (membership @ x).tocoo()
    # units and words as Arrow arrays: a combine concatenates and encodes 1,000 of them in Arrow
    # (no Python strings), and they pickle as flat buffers
    return {"units": pa.array(np.asarray(names, dtype=object), type=pa.string()),
            "vocab": pa.array(words.vocab, type=pa.string()),
            "df": np.bincount(x.indices, minlength=x.shape[1]).astype(np.int32),
            "u": y.row.astype(np.int32), "w": y.col.astype(np.int32), "n": y.data.astype(np.int32)}


def combine_keywords(parts: Iterable[Mapping[str, np.ndarray]], top_n: int = TOP_N) -> pd.DataFrame:
    """keywords.parquet from the files' counts: up to ``top_n`` words per unit with z ≥ ``MIN_Z``.

    Units and words are numbered in order of first appearance over the files in input order, as
    if the season were counted at once, so every sum runs in the same order (same bits).
    """
    units, vocab, dfs, us, ws, ns = [], [], [], [], [], []
    u_off = w_off = 0
    for p in parts:
        units.append(p["units"])
        vocab.append(p["vocab"])
        dfs.append(p["df"])
        us.append(p["u"].astype(np.int64) + u_off)
        ws.append(p["w"].astype(np.int64) + w_off)
        ns.append(p["n"])
        u_off += len(p["units"])
        w_off += len(p["vocab"])
    if not units or not u_off:
        return _empty()
    u_code, names = _factorize(units)
    if len(names) < 2:
        return _empty()
    w_code, vocab_arrow = _factorize(vocab, python=False)
    df = np.bincount(w_code, weights=np.concatenate(dfs), minlength=len(vocab_arrow))
    cols = np.flatnonzero(df >= MIN_DF)
    if not len(cols):  # no word occurs twice
        return _empty()
    new_col = np.full(len(vocab_arrow), -1, dtype=np.int64)
    new_col[cols] = np.arange(len(cols))
    vocab_kept = vocab_arrow.take(pa.array(cols))
    u = u_code[np.concatenate(us)]
    w = new_col[w_code[np.concatenate(ws)]]
    n = np.concatenate(ns).astype(np.float64)
    keep = w >= 0
    y = sp.csr_matrix((n[keep], (u[keep], w[keep])), shape=(len(names), len(cols)))
    y.sum_duplicates()  # a unit reporting in several files
    y = y.tocoo()
    u, w, yv = y.row, y.col, y.data
    total = np.bincount(w, weights=yv, minlength=len(cols))
    alpha = PRIOR_SIZE * total / total.sum()
    a0 = alpha.sum()
    n_unit = np.bincount(u, weights=yv, minlength=len(names))
    n_rest = n_unit.sum() - n_unit
    al, yr = alpha[w], total[w] - yv
    # log-odds of each word in the unit vs in the rest, both smoothed by the prior
    d = (np.log((yv + al) / (n_unit[u] + a0 - yv - al))
         - np.log((yr + al) / (n_rest[u] + a0 - yr - al)))
    z = d / np.sqrt(1.0 / (yv + al) + 1.0 / (yr + al))
    ok = (z >= MIN_Z) & (yv > 0)
    u, w, z, yv = u[ok], w[ok], z[ok], yv[ok]
    # per unit, highest score first; ties by the word itself so the order never depends on hashing
    # (Arrow sorts UTF-8 bytes: code point order, as numpy's; the words are distinct, no ties)
    word_rank = np.empty(len(cols), dtype=np.int64)
    word_rank[pc.sort_indices(vocab_kept).to_numpy()] = np.arange(len(cols))
    order = np.lexsort((word_rank[w], -z, u))
    u, w, z, yv = u[order], w[order], z[order], yv[order]
    rank = np.arange(len(u)) - np.searchsorted(u, u, side="left")
    keep = rank < top_n
    words = np.asarray(vocab_kept.take(pa.array(w[keep])).to_pylist(), dtype=object)
    out = pd.DataFrame({"unit": np.asarray(names, dtype=object)[u[keep]], "word": words,
                        "score": np.round(z[keep], 4), "n": yv[keep].astype(np.int64)})
    return out.astype({"score": "float64", "n": "int64"}).reset_index(drop=True)


def _factorize(chunks: list[Any], python: bool = True) -> tuple[np.ndarray, Any]:
    """Codes and uniques (in order of first appearance) of the files' arrays taken as one: one
    Arrow hash table over all chunks (they share the resulting dictionary). ``python``: uniques
    as a numpy object array, else as an Arrow array."""
    arrays = [c if isinstance(c, pa.Array) else pa.array(np.asarray(c, dtype=object), type=pa.string())
              for c in chunks]
    enc = pa.chunked_array(arrays, type=pa.string()).dictionary_encode()
    if not enc.num_chunks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks])
    dictionary = enc.chunks[0].dictionary
    return codes.astype(np.int64), (np.asarray(dictionary.to_pylist(), dtype=object) if python
                                     else dictionary)


def distinctive_words(sentences: pd.DataFrame, top_n: int = TOP_N,
                      words: WordCodes | None = None) -> pd.DataFrame:
    """keywords.parquet: up to ``top_n`` words per unit with z-score ≥ ``MIN_Z``.

    ``words``: content-word codes of ``content_sentences(sentences)`` when already built.
    """
    return combine_keywords([keyword_part(sentences, words)], top_n)
