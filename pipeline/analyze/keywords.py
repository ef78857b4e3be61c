"""Distinctive words per unit: weighted log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words": each unit's word counts against all other
units', smoothed by a prior proportional to the season's word frequencies, and divided by the
estimate's standard error, so rare words do not win on chance alone. ``score`` is that z-score.

Everything is computed on sparse unit × word counts (only the words a unit used), so a season of
1,000 units and 100,000 words never builds a dense table.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    import scipy.sparse as sp  # parts are made in the workers: the combine never imports scipy

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


#: memo entries: the season's aggregated counts (``_Counts``) and each file's part by its digest
STATE = "keywords-counts-v1"
PART = "keywords-part-"
_NONE = np.int64(1) << np.int64(62)  # "no file": a first-appearance key above every real one


def part_digest(part: Mapping[str, Any]) -> str:
    """A content hash of a keyword part (its pickle: equal bytes, equal part)."""
    return hashlib.blake2b(pickle.dumps(dict(part), protocol=pickle.HIGHEST_PROTOCOL),
                           digest_size=16).hexdigest()


def combine_keywords(parts: Iterable[Mapping[str, Any]], top_n: int = TOP_N,
                     memo: MutableMapping[str, Any] | None = None,
                     digests: Sequence[str | None] | None = None) -> pd.DataFrame:
    """keywords.parquet from the files' counts: up to ``top_n`` words per unit with z ≥ ``MIN_Z``.

    Units and words are numbered in order of first appearance over the files in input order, as
    if the season were counted at once, so every sum runs in the same order (same bits).

    ``memo`` with ``digests`` (each file's ``part_digest``; ``parts`` then a sequence): the
    season's summed counts are kept and, when files changed, updated with the old parts (kept in
    the memo under their digests) taken out and the new ones put in — integer counts, so exactly
    the sums of a recount — instead of re-adding every file's counts.
    """
    counts = None
    use_memo = memo is not None and digests is not None and all(digests)
    if use_memo:
        assert memo is not None and digests is not None
        counts = _updated(memo.get(STATE), parts, list(digests), memo)  # type: ignore[arg-type]
        keep = getattr(memo, "keep", None)  # the season's parts are the state: never pruned
        if keep is not None:
            for d in digests:
                keep(PART + str(d))
    if counts is None:
        loaded = list(parts)  # each file's part read once (a lazy part is read on access)
        counts = _Counts.build(loaded)
        if use_memo:
            assert memo is not None and digests is not None
            memo[STATE] = counts.state(list(digests))
            for d, p in zip(digests, loaded, strict=True):
                if PART + str(d) not in memo:
                    memo[PART + str(d)] = dict(p)
    return counts.table(top_n)


class _Counts:
    """A season's keyword counts, summed over its files: global unit and word codes (any order),
    each file's unit codes, per word the first-appearance key ``file << 32 | place in the
    file's vocabulary``, the number of files using it and its document frequency, and the
    (unit, word) cells with their counts (sorted keys ``unit << 32 | word``)."""

    def __init__(self, units: list[str], file_units: list[np.ndarray], vocab: pa.Array,
                 first: np.ndarray, nfiles: np.ndarray, df: np.ndarray, cell: np.ndarray,
                 count: np.ndarray) -> None:
        self.units, self.file_units, self.vocab = units, file_units, vocab
        self.first, self.nfiles, self.df, self.cell, self.count = first, nfiles, df, cell, count

    @classmethod
    def build(cls, parts: list[Mapping[str, Any]]) -> _Counts:
        units, vocab, dfs, us, ws, ns = [], [], [], [], [], []
        u_off = w_off = 0
        n_units, n_vocab = [], []
        for p in parts:
            units.append(p["units"])
            vocab.append(p["vocab"])
            dfs.append(p["df"])
            us.append(p["u"].astype(np.int64) + u_off)
            ws.append(p["w"].astype(np.int64) + w_off)
            ns.append(p["n"])
            n_units.append(len(p["units"]))
            n_vocab.append(len(p["vocab"]))
            u_off += len(p["units"])
            w_off += len(p["vocab"])
        u_code, names = _factorize(units) if units else (np.zeros(0, np.int64), np.zeros(0, object))
        w_code, vocab_arrow = (_factorize(vocab, python=False) if vocab
                               else (np.zeros(0, np.int64), pa.array([], pa.string())))
        n_words = len(vocab_arrow)
        file_of = np.repeat(np.arange(len(parts), dtype=np.int64), n_vocab)
        starts = np.repeat(np.cumsum([0, *n_vocab])[:-1], n_vocab).astype(np.int64)
        key = (file_of << 32) | (np.arange(len(w_code), dtype=np.int64) - starts)
        first = np.full(n_words, _NONE, dtype=np.int64)
        first[w_code[::-1]] = key[::-1]  # the last write wins: each word's first appearance
        nfiles = np.bincount(w_code, minlength=n_words).astype(np.int64)
        df = (np.bincount(w_code, weights=np.concatenate(dfs), minlength=n_words).astype(np.int64)
              if dfs else np.zeros(0, np.int64))
        u = u_code[np.concatenate(us)] if us else np.zeros(0, np.int64)
        w = w_code[np.concatenate(ws)] if ws else np.zeros(0, np.int64)
        n = np.concatenate(ns).astype(np.float64) if ns else np.zeros(0)
        cell, total = _sum_cells(u * max(n_words, 1) + w, n, len(names) * n_words)
        cell = ((cell // max(n_words, 1)) << 32) | (cell % max(n_words, 1))  # (unit, word) order kept
        bounds = np.cumsum([0, *n_units])
        file_units = [u_code[bounds[i]:bounds[i + 1]] for i in range(len(parts))]
        return cls([str(x) for x in names], file_units, vocab_arrow, first, nfiles, df, cell,
                   total.astype(np.int64))

    def state(self, digests: list[str]) -> dict[str, Any]:
        return {"files": digests, "units": self.units, "file_units": self.file_units,
                "vocab": self.vocab, "first": self.first, "nfiles": self.nfiles, "df": self.df,
                "cell": self.cell, "count": self.count}

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> _Counts:
        return cls(list(st["units"]), list(st["file_units"]), st["vocab"], st["first"].copy(),
                   st["nfiles"].copy(), st["df"].copy(), st["cell"], st["count"])

    def _codes(self, words: pa.Array, add: bool) -> np.ndarray | None:
        """Global codes of a part's words (new ones appended when ``add``; else None if any is
        unknown)."""
        pos = pc.index_in(words, value_set=self.vocab)
        codes = np.asarray(pos.fill_null(-1), dtype=np.int64)
        new = np.flatnonzero(codes < 0)
        if len(new):
            if not add:
                return None
            codes[new] = len(self.vocab) + np.arange(len(new))
            self.vocab = pa.concat_arrays([self.vocab, words.take(pa.array(new)).cast(self.vocab.type)])
            grow = len(new)
            self.first = np.concatenate([self.first, np.full(grow, _NONE, dtype=np.int64)])
            self.nfiles = np.concatenate([self.nfiles, np.zeros(grow, dtype=np.int64)])
            self.df = np.concatenate([self.df, np.zeros(grow, dtype=np.int64)])
        return codes

    def _unit_codes(self, names: pa.Array) -> np.ndarray:
        index = {u: i for i, u in enumerate(self.units)}
        out = []
        for u in names.to_pylist():
            if u not in index:
                index[u] = len(self.units)
                self.units.append(u)
            out.append(index[u])
        return np.asarray(out, dtype=np.int64)

    def replace(self, m: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """File ``m``'s part ``old`` replaced by ``new``; False when the first appearance of a
        word it alone introduced can no longer be told (the caller recounts)."""
        oc = self._codes(old["vocab"], add=False)
        if oc is None:
            return False
        ou = self._unit_codes(old["units"])
        nc = self._codes(new["vocab"], add=True)
        assert nc is not None
        nu = self._unit_codes(new["units"])
        self.nfiles[oc] -= 1
        self.nfiles[nc] += 1
        self.df[oc] -= old["df"].astype(np.int64)
        self.df[nc] += new["df"].astype(np.int64)
        lo, hi = np.int64(m) << 32, np.int64(m + 1) << 32
        was = oc[(self.first[oc] >= lo) & (self.first[oc] < hi)]
        self.first[was] = _NONE
        self.first[nc] = np.minimum(self.first[nc], lo | np.arange(len(nc), dtype=np.int64))
        lost = was[self.first[was] == _NONE]
        if (self.nfiles[lost] > 0).any():  # first seen in m, now first in some later file
            return False
        self.file_units[m] = nu
        # cells: the old file's counts out, the new one's in (each part's cells are distinct)
        cell, count = self.cell, self.count.copy()
        k_old = (ou[old["u"].astype(np.int64)] << 32) | oc[old["w"].astype(np.int64)]
        pos = np.searchsorted(cell, k_old)
        if len(k_old) and (pos.max() >= len(cell) or not np.array_equal(cell[pos], k_old)):
            return False  # the memo's counts do not hold this part: recount
        count[pos] -= old["n"].astype(np.int64)
        k_new = (nu[new["u"].astype(np.int64)] << 32) | nc[new["w"].astype(np.int64)]
        n_new = new["n"].astype(np.int64)
        order = np.argsort(k_new, kind="stable")
        k_new, n_new = k_new[order], n_new[order]
        pos = np.searchsorted(cell, k_new)
        hit = pos < len(cell)
        hit[hit] = cell[pos[hit]] == k_new[hit]
        count[pos[hit]] += n_new[hit]
        cell = np.insert(cell, pos[~hit], k_new[~hit])
        count = np.insert(count, pos[~hit], n_new[~hit])
        if (count < 0).any():
            return False
        keep = count != 0
        self.cell, self.count = cell[keep], count[keep]
        return True

    def table(self, top_n: int) -> pd.DataFrame:
        """The keywords table from the summed counts: units and kept words numbered in order of
        first appearance (as a recount numbers them), then ``_score``."""
        fu = [f for f in self.file_units if len(f)]
        if not fu:
            return _empty()
        seq = np.concatenate(fu)
        first_at = np.full(len(self.units), len(seq), dtype=np.int64)
        first_at[seq[::-1]] = np.arange(len(seq))[::-1]
        order = np.argsort(first_at, kind="stable")[: len(_distinct_int(seq))]
        if len(order) < 2:
            return _empty()
        unit_rank = np.full(len(self.units), -1, dtype=np.int64)
        unit_rank[order] = np.arange(len(order))
        names = np.asarray([self.units[i] for i in order.tolist()], dtype=object)
        cols = np.flatnonzero(self.df >= MIN_DF)
        if not len(cols):  # no word occurs twice
            return _empty()
        cols = cols[np.argsort(self.first[cols], kind="stable")]
        col_of = np.full(len(self.vocab), -1, dtype=np.int64)
        col_of[cols] = np.arange(len(cols))
        w = col_of[self.cell & np.int64(0xFFFFFFFF)]
        keep = w >= 0
        u = unit_rank[self.cell[keep] >> 32]
        return _score(names, self.vocab.take(pa.array(cols)), u, w[keep],
                      self.count[keep].astype(np.float64), top_n)


def _distinct_int(a: np.ndarray) -> np.ndarray:
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _updated(state: Any, parts: Sequence[Mapping[str, Any]], digests: list[str],
             memo: MutableMapping[str, Any]) -> _Counts | None:
    """The memo's counts brought up to these files (same number, some replaced in place), the
    memo updated; None when a recount is needed."""
    if not isinstance(state, dict) or len(state.get("files", ())) != len(digests):
        return None
    changed = [i for i, (a, b) in enumerate(zip(state["files"], digests, strict=True)) if a != b]
    counts = _Counts.from_state(state)
    if not changed:
        return counts
    if len(changed) > max(8, len(digests) // 10):
        return None  # many files changed: a recount is as fast
    for m in changed:
        old = memo.get(PART + state["files"][m])
        if old is None:
            return None
        new = dict(parts[m])
        if not counts.replace(m, old, new):
            return None
        if PART + digests[m] not in memo:
            memo[PART + digests[m]] = new
    memo[STATE] = counts.state(digests)
    return counts


def _score(names: np.ndarray, vocab_kept: pa.Array, u: np.ndarray, w: np.ndarray, yv: np.ndarray,
           top_n: int) -> pd.DataFrame:
    """Weighted log-odds z-scores of the (unit, kept word) cells (any order: every sum below is
    of integer counts, exact in any order, except ``a0``, summed in word-number order)."""
    n_cols = len(vocab_kept)
    total = np.bincount(w, weights=yv, minlength=n_cols)
    alpha = PRIOR_SIZE * total / total.sum()
    a0 = alpha.sum()
    n_unit = np.bincount(u, weights=yv, minlength=len(names))
    n_rest = n_unit.sum() - n_unit
    al, yr = alpha[w], total[w] - yv
    # log-odds of each word in the unit vs in the rest, both smoothed by the prior
    odds_u = (yv + al) / (n_unit[u] + a0 - yv - al)
    odds_r = (yr + al) / (n_rest[u] + a0 - yr - al)
    # z ≥ MIN_Z > 0 needs odds_u > odds_r: the logs (most of the time) are taken of those cells
    # only — each cell's value is computed as before, so the same bits (the margin covers any
    # rounding of log)
    up = np.flatnonzero((odds_u >= odds_r * (1.0 - 1e-9)) & (yv > 0))
    u, w, yv, al, yr = u[up], w[up], yv[up], al[up], yr[up]
    d = np.log(odds_u[up]) - np.log(odds_r[up])
    z = d / np.sqrt(1.0 / (yv + al) + 1.0 / (yr + al))
    ok = z >= MIN_Z
    u, w, z, yv = u[ok], w[ok], z[ok], yv[ok]
    # only the cells that can be among their unit's top_n are sorted below
    cand = _top_candidates(u, z, top_n)
    u, w, z, yv = u[cand], w[cand], z[cand], yv[cand]
    # per unit, highest score first; ties by the word itself so the order never depends on hashing
    # (Arrow sorts UTF-8 bytes: code point order, as numpy's; the words are distinct, no ties)
    word_rank = np.empty(n_cols, dtype=np.int64)
    word_rank[pc.sort_indices(vocab_kept).to_numpy()] = np.arange(n_cols)
    order = np.lexsort((word_rank[w], -z, u))
    u, w, z, yv = u[order], w[order], z[order], yv[order]
    rank = np.arange(len(u)) - np.searchsorted(u, u, side="left")
    keep = rank < top_n
    words = np.asarray(vocab_kept.take(pa.array(w[keep])).to_pylist(), dtype=object)
    out = pd.DataFrame({"unit": names[u[keep]], "word": words,
                        "score": np.round(z[keep], 4), "n": yv[keep].astype(np.int64)})
    return out.astype({"score": "float64", "n": "int64"}).reset_index(drop=True)


def _top_candidates(u: np.ndarray, z: np.ndarray, top_n: int) -> np.ndarray:
    """The cells (positions) whose score is at least the ``top_n``-th largest of their run of
    cells of one unit, ties included: every cell of a unit's top ``top_n`` is among them. The
    cells come grouped by unit (sorted by unit code), so each run is cut on its own by a
    partition — instead of sorting half a million cells by unit and score (0.1-0.3 s of a
    rerun at 1,000 reports). A unit split over several runs keeps each run's top: still a
    superset."""
    n = len(u)
    if n <= top_n:
        return np.arange(n)
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    ends = np.concatenate((starts[1:], [n]))
    keep = np.ones(n, dtype=bool)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if b - a > top_n:
            seg = z[a:b]
            k = (b - a) - top_n
            keep[a:b] = seg >= np.partition(seg, k)[k]
    return np.flatnonzero(keep)


def _sum_cells(cell: np.ndarray, n: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cell numbers in increasing order, each with the sum of its ``n``. Integer-valued counts: the sums are exact in any order. A dense
    count when the grid is not much bigger than the entries (a few hundred units: one pass,
    no sort), else one sort."""
    if n_cells <= max(8 * len(cell), 1 << 20):
        total = np.bincount(cell, weights=n, minlength=n_cells)
        hit = np.bincount(cell, minlength=n_cells) > 0  # a cell summing to 0 is still a cell
        out = np.flatnonzero(hit)
        return out, total[out]
    out, inv = np.unique(cell, return_inverse=True)
    return out, np.bincount(np.ravel(inv), weights=n, minlength=len(out))


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
