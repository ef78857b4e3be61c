"""Copies: passages two reports share, word for word or nearly, with each report's shared share.

Sentences of at least ``MIN_SENTENCE_CHARS`` characters get a MinHash signature over character
4-grams; locality-sensitive hashing (``BANDS`` bands of ``ROWS`` signature values) proposes
near-duplicate sentences and rapidfuzz confirms each proposed pair. A pair of articles is a copy
only at passage level: at least ``MIN_SHARED_SENTENCES`` matched sentences and
``MIN_SHARED_CHARS`` characters — a handful of stock phrases ("以习近平新时代中国特色社会主义思想
为指导…") shared by every government report is not a copy. A sentence that recurs in more than
``MAX_SPREAD`` articles is boilerplate and ignored.

Speed: the signatures of all sentences are computed at once with numpy (one pass over all
4-grams per permutation, multiply-shift hashing) and the LSH buckets are found by sorting band
keys, so a 1,000-report season (~300,000 distinct sentences) takes seconds, not minutes of
per-sentence Python. Identical sentences are hashed once. Every step is seeded and sorted:
the table is the same in every run and under every PYTHONHASHSEED.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from .matrix import content_sentences
from .text import unit_names

COLUMNS = ["doc_id_a", "doc_id_b", "article_id_a", "article_id_b", "unit_a", "unit_b", "text",
           "n_chars", "share_a", "share_b", "page_a", "page_b", "similarity"]

MIN_SENTENCE_CHARS = 15
SHINGLE = 4
NUM_PERM = 64
ROWS = 4  # signature values per LSH band: 16 bands × 4 rows ≈ 50 % Jaccard "threshold"
BANDS = NUM_PERM // ROWS
MIN_RATIO = 80.0  # rapidfuzz ratio (0–100) that confirms a near-duplicate sentence
MIN_SHARED_SENTENCES = 3
MIN_SHARED_CHARS = 150
MAX_SPREAD = 4  # a sentence found in more articles than this is boilerplate
#: an LSH bucket with more texts than this holds variants of boilerplate (more near-identical
#: texts than MAX_SPREAD articles may share): skipped, which keeps the pair count linear
MAX_BUCKET = 2 * MAX_SPREAD
MAX_GAP = 2  # matched sentences at most this far apart form one passage
SEED = 20260  # fixed: the same permutations in every run
_CHUNK = 2_000_000  # 4-grams hashed per numpy pass (bounds memory)

_NOISE = re.compile(r"[\s\u3000，,。.；;：:、！!？?“”\"'‘’（）()《》\-—…*]+")
_U64 = np.uint64


def _norm(text: str) -> str:
    return _NOISE.sub("", text)


def _article_key(s: pd.DataFrame) -> pd.Series:
    art = s["article_id"].fillna("").astype(str) if "article_id" in s else pd.Series("", index=s.index)
    return art.where(art != "", "doc:" + s["doc_id"].astype(str))


def minhash_signatures(texts: list[str], num_perm: int = NUM_PERM, seed: int = SEED) -> np.ndarray:
    """(len(texts), num_perm) MinHash signatures over character ``SHINGLE``-grams.

    Each 4-gram is hashed from its code points, then permuted ``num_perm`` times with
    multiply-shift hashing ((a·x + b) mod 2⁶⁴ ≫ 32, a odd); the minimum per text is its
    signature. Texts must hold at least ``SHINGLE`` characters.
    """
    n = len(texts)
    sig = np.zeros((n, num_perm), dtype=np.uint64)
    if not n:
        return sig
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) | _U64(1)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    n_sh = np.maximum(lengths - SHINGLE + 1, 1)
    lo = 0
    with np.errstate(over="ignore"):  # wrap-around is the hash
        while lo < n:  # chunks of whole texts, about _CHUNK 4-grams each
            hi = int(np.searchsorted(np.cumsum(n_sh[lo:]), _CHUNK, side="right")) + lo
            hi = max(hi, lo + 1)
            chunk = texts[lo:hi]
            cps = np.frombuffer("".join(chunk).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            starts = np.concatenate(([0], np.cumsum(lengths[lo:hi])[:-1]))
            # 4-gram at every position (a polynomial of its code points), then keep the ones
            # that lie inside one text
            m = len(cps)
            pad = np.concatenate((cps, np.zeros(SHINGLE, dtype=np.uint64)))
            x = np.zeros(m, dtype=np.uint64)
            for k in range(SHINGLE):
                x = x * _U64(0x100000001B3) + pad[k:k + m]
            x = (x * _U64(0x9E3779B97F4A7C15)) >> _U64(32)
            pos = np.arange(m) - np.repeat(starts, lengths[lo:hi])
            keep = pos <= np.repeat(np.maximum(lengths[lo:hi] - SHINGLE, 0), lengths[lo:hi])
            x = x[keep]
            first = np.concatenate(([0], np.cumsum(n_sh[lo:hi])[:-1]))
            for j in range(num_perm):
                sig[lo:hi, j] = np.minimum.reduceat((x * a[j] + b[j]) >> _U64(32), first)
            lo = hi
    return sig


def candidate_pairs(sig: np.ndarray, rows: int = ROWS, max_bucket: int = MAX_BUCKET) -> np.ndarray:
    """(i, j) pairs, i < j, that share at least one LSH band; sorted, no repeats.

    Buckets are runs of equal band keys after sorting; the pairs inside all buckets are made at
    once (member k with member k + d of the same bucket, for d = 1, 2, …), not bucket by bucket.
    """
    n, num_perm = sig.shape
    ids = np.arange(n, dtype=np.int64)
    found: list[np.ndarray] = []
    with np.errstate(over="ignore"):
        for band in range(num_perm // rows):
            key = np.zeros(n, dtype=np.uint64)
            for k in range(band * rows, (band + 1) * rows):
                key = key * _U64(0x100000001B3) + sig[:, k]
            order = np.lexsort((ids, key))  # by key, then by id: pairs come out with i < j
            ks = key[order]
            start = np.concatenate(([True], ks[1:] != ks[:-1]))
            bucket = np.cumsum(start) - 1
            size = np.bincount(bucket)[bucket]
            ok = (size >= 2) & (size <= max_bucket)
            if not ok.any():
                continue
            m, b = order[ok], bucket[ok]
            for d in range(1, int(size[ok].max())):
                same = b[:-d] == b[d:]
                found.append(m[:-d][same] * n + m[d:][same])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    flat = np.unique(np.concatenate(found))
    return np.stack((flat // n, flat % n), axis=1)


def find_copies(sentences: pd.DataFrame) -> pd.DataFrame:
    """copies.parquet: one row per shared passage between two articles (or documents)."""
    s = content_sentences(sentences)
    if s.empty:
        return _empty()
    s = s.assign(key=_article_key(s), unit=unit_names(s), norm=s["text"].fillna("").astype(str).map(_norm))
    s = s.sort_values(["key", "idx"], kind="stable").reset_index(drop=True)
    n_norm = s["norm"].str.len()
    total_chars = n_norm.groupby(s["key"]).sum().to_dict()
    long = s[n_norm >= MIN_SENTENCE_CHARS]
    if long["key"].nunique() < 2:
        return _empty()

    # identical sentences are hashed once; each unique text remembers where it occurs
    codes, texts_arr = pd.factorize(long["norm"])
    texts = texts_arr.tolist()
    where: list[list[int]] = [[] for _ in texts]
    for i, c in zip(long.index.tolist(), codes.tolist(), strict=True):
        where[c].append(i)
    pairs = candidate_pairs(minhash_signatures(texts))
    if len(pairs):
        ratios = process.cpdist([texts[i] for i in pairs[:, 0]], [texts[j] for j in pairs[:, 1]],
                                scorer=fuzz.ratio, workers=1)
        pairs, ratios = pairs[ratios >= MIN_RATIO], ratios[ratios >= MIN_RATIO]
    else:
        ratios = np.zeros(0)
    # edges text → confirmed near-duplicate (both ways, and each text to itself at 100)
    self_loops = np.arange(len(texts))
    edges = pd.DataFrame({
        "j": np.concatenate((self_loops, pairs[:, 0], pairs[:, 1])),
        "c": np.concatenate((self_loops, pairs[:, 1], pairs[:, 0])),
        "r": np.concatenate((np.full(len(texts), 100.0), ratios, ratios)),
    })
    occ = pd.DataFrame({"c": codes, "row": long.index.to_numpy(),
                        "key": pd.factorize(long["key"])[0]})
    # every sentence a text stands for (its own and its confirmed partners'), and in how many
    # articles they occur: 1 = nothing shared, more than MAX_SPREAD = boilerplate
    spread = edges.merge(occ, on="c").groupby("j")["key"].nunique()
    shared = np.flatnonzero(((spread >= 2) & (spread <= MAX_SPREAD)).reindex(
        range(len(texts)), fill_value=False).to_numpy())
    partners: dict[int, list[tuple[int, float]]] = defaultdict(list)
    e = edges[edges["j"].isin(shared)].sort_values(["j", "c"], kind="stable")
    for j, c, r in zip(e["j"].tolist(), e["c"].tolist(), e["r"].tolist(), strict=True):
        partners[j].append((c, r))

    keys = s["key"].to_numpy()
    match: dict[tuple[str, str], dict[int, tuple[int, float]]] = defaultdict(dict)
    for j in shared.tolist():
        rows = [(i, r) for c, r in partners[j] for i in where[c]]
        for a in where[j]:
            for b, r in rows:
                if keys[a] != keys[b]:
                    prev = match[(keys[a], keys[b])].get(a)
                    if prev is None or r > prev[1]:
                        match[(keys[a], keys[b])][a] = (b, r)

    # plain lists: row lookups in the loop below stay cheap however large the season
    nlen = n_norm.tolist()
    text, doc, unit, page = (s["text"].tolist(), s["doc_id"].tolist(), s["unit"].tolist(),
                             s["page"].tolist())
    aid = s["article_id"].fillna("").astype(str).tolist() if "article_id" in s else [""] * len(s)
    out = []
    for (ka, kb), pairs_ab in sorted(match.items()):
        if ka > kb:
            continue  # each unordered pair once, from its first article's side
        n_chars_a = sum(nlen[i] for i in pairs_ab)
        if len(pairs_ab) < MIN_SHARED_SENTENCES or n_chars_a < MIN_SHARED_CHARS:
            continue
        back = match.get((kb, ka), {})
        share_a = n_chars_a / max(total_chars.get(ka, 1), 1)
        share_b = sum(nlen[i] for i in back) / max(total_chars.get(kb, 1), 1)
        for run in _passages(sorted(pairs_ab)):
            a0, b0 = run[0], pairs_ab[run[0]][0]
            out.append({
                "doc_id_a": doc[a0], "doc_id_b": doc[b0], "article_id_a": aid[a0],
                "article_id_b": aid[b0], "unit_a": unit[a0], "unit_b": unit[b0],
                "text": "".join(text[i] for i in run), "n_chars": int(sum(nlen[i] for i in run)),
                "share_a": round(min(share_a, 1.0), 4), "share_b": round(min(share_b, 1.0), 4),
                "page_a": page[a0], "page_b": page[b0],
                "similarity": round(float(np.mean([pairs_ab[i][1] for i in run])) / 100, 4),
            })
    if not out:
        return _empty()
    df = pd.DataFrame(out, columns=COLUMNS)
    return df.astype({"page_a": "Int64", "page_b": "Int64"}).sort_values(
        ["share_a", "doc_id_a", "article_id_a", "doc_id_b", "article_id_b", "text"],
        ascending=[False, True, True, True, True, True], kind="stable").reset_index(drop=True)


def _passages(rows: list[int]) -> list[list[int]]:
    """Runs of matched sentences (row numbers in article order), allowing small gaps."""
    runs: list[list[int]] = []
    for i in rows:
        if runs and i - runs[-1][-1] <= MAX_GAP:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS).astype(
        {"n_chars": "int64", "share_a": "float64", "share_b": "float64", "page_a": "Int64",
         "page_b": "Int64", "similarity": "float64"})
