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

import hashlib
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process

from .matrix import CONTENT_KINDS, content_sentences
from .text import UNKNOWN_UNIT, str_list

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
#: memo entry of confirmed-pair scores: fuzz.ratio of two texts under their content hashes (a pure
#: function of the key, so a stale or missing entry only costs time, never changes a result)
RATIO_MEMO = "copies-ratios-fuzz.ratio-v1"
#: memo entry of the sentences fetched for copies: per file digest, (text, doc, article, unit, page)
ROWS_MEMO = "copies-rows-v1"
#: memo entry of the last finished table, under the ordered digests of the files' parts: a rerun
#: whose copy parts are all unchanged (the table is a pure function of them, in order) reads it;
#: with each row's article-pair content key ("g1", "g2") and passage number ("run"), a rerun
#: after a change takes the rows of its unchanged article pairs from it
TABLE_MEMO = "copies-table-v2"
_ROW_COLUMNS = ("doc_id", "article_id", "unit", "page", "idx", "kind", "text")
_CHUNK = 2_000_000  # 4-grams hashed per numpy pass (bounds memory)

_NOISE = re.compile(r"[\s\u3000，,。.；;：:、！!？?“”\"'‘’（）()《》\-—…*]+")
_U64 = np.uint64


def _norm(text: str) -> str:
    return _NOISE.sub("", text)


#: ``_NOISE`` for Arrow (RE2), its characters listed: RE2's ``\s`` is ASCII only, Python's is
#: every ``str.isspace`` character (tests check the two remove the same characters)
_PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000")
_NOISE_RE2 = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(
    set(_PY_SPACE + "\u3000，,。.；;：:、！!？?“”\"'‘’（）()《》-—…*"))) + "]+"


def _norm_column(text: pd.Series, order: list[int]) -> pa.Array:
    """``_norm`` of each row's text (missing: ""), rows in ``order``. An Arrow-backed column is
    cleaned by one Arrow kernel, not a Python regex call per sentence."""
    if isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow":
        arr = pc.fill_null(pa.array(text), "")
        return pc.replace_substring_regex(arr, _NOISE_RE2, "").take(pa.array(order, pa.int64()))
    return pa.array([_norm(t) for t in _pick(str_list(text), order)], pa.large_string())


def _pick(values: list[Any], rows: list[int]) -> list[Any]:
    return [values[i] for i in rows]


def _first_codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize`` of a list of strings: codes in order of first appearance, and the values."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64,
                        count=len(values))
    return codes, list(index)


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


def band_keys(sig: np.ndarray, rows: int = ROWS) -> np.ndarray:
    """(n, bands) LSH band keys: each band's ``rows`` signature values hashed into one uint64."""
    n, num_perm = sig.shape
    keys = np.zeros((n, num_perm // rows), dtype=np.uint64)
    s64 = sig.astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        for band in range(num_perm // rows):
            key = np.zeros(n, dtype=np.uint64)
            for k in range(band * rows, (band + 1) * rows):
                key = key * _U64(0x100000001B3) + s64[:, k]
            keys[:, band] = key
    return keys


def candidate_pairs(sig: np.ndarray, rows: int = ROWS, max_bucket: int = MAX_BUCKET) -> np.ndarray:
    """(i, j) pairs, i < j, that share at least one LSH band; sorted, no repeats."""
    return pairs_from_band_keys(band_keys(sig, rows), max_bucket)


def pairs_from_band_keys(keys: np.ndarray, max_bucket: int = MAX_BUCKET) -> np.ndarray:
    """(i, j) pairs, i < j, whose texts share at least one band key; sorted, no repeats.

    Buckets are runs of equal band keys after sorting; the pairs inside all buckets are made at
    once (member k with member k + d of the same bucket, for d = 1, 2, …), not bucket by bucket.
    """
    n = keys.shape[0]
    found: list[np.ndarray] = []
    for band in range(keys.shape[1]):
        # most keys are unique: a hash pass finds the shared ones, and only those are sorted
        codes, _ = pd.factorize(keys[:, band])
        size = np.bincount(codes)[codes]
        ids = np.flatnonzero((size >= 2) & (size <= max_bucket))
        if not len(ids):
            continue
        key = keys[ids, band]
        order = ids[np.argsort(key, kind="stable")]  # by key, then by id: pairs come out with i < j
        ks = keys[order, band]
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
    flat = np.sort(np.concatenate(found))  # sort + drop repeats: several times np.unique's speed
    flat = flat[np.concatenate(([True], flat[1:] != flat[:-1]))]
    return np.stack((flat // n, flat % n), axis=1)


def copy_part(sentences: pd.DataFrame) -> dict[str, Any]:
    """One file's share of the copy search: its articles (sorted by key) with their row counts
    and characters, each content row's normalized length, and for the long rows their text
    (each distinct text once, with its LSH band keys: the MinHash is computed here, once per
    file) and where to fetch the sentence (``doc_id``, ``idx``) when a row ends up in a copy.

    On plain lists (a few hundred rows: pandas' assign/sort/factorize cost more than the work)."""
    s = content_sentences(sentences)
    # the columns fetch_rows reads, each fetched once (the digest below hashes them too)
    cols = [c for c in _ROW_COLUMNS if c in s]
    raw = {c: s[c].tolist() for c in cols}
    doc_ids = str_list(s["doc_id"], raw.get("doc_id"))
    art_ids = str_list(s["article_id"], raw["article_id"]) if "article_id" in raw else [""] * len(s)
    key_of = [a or f"doc:{d}" for a, d in zip(art_ids, doc_ids, strict=True)]
    idx_of = s["idx"].to_numpy(dtype=np.int64).tolist()
    # rows by article key, then idx (a stable sort, as sort_values(kind="stable"))
    order = sorted(range(len(s)), key=lambda i: (key_of[i], idx_of[i]))
    norm = _norm_column(s["text"], order)
    nlen = np.asarray(pc.utf8_length(norm), dtype=np.int64)  # characters, as len()
    key_codes, keys = _first_codes(_pick(key_of, order))  # sorted rows: keys in sorted order
    long_rows = np.flatnonzero(nlen >= MIN_SENTENCE_CHARS)
    codes, texts = _first_codes(norm.take(pa.array(long_rows)).to_pylist())
    sig = minhash_signatures(texts)
    # a content hash per text: what the memo of pair scores is keyed on
    hashes = np.fromiter((int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(),
                                         "little") for t in texts), dtype=np.uint64, count=len(texts))
    doc_codes, docs = _first_codes(_pick(doc_ids, order))
    # what fetch_rows reads of this file: rows fetched once are reused while this is unchanged
    digest = hashlib.blake2b(repr(cols).encode(), digest_size=16)
    for c in cols:
        digest.update(repr(_pick(raw[c], order)).encode("utf-8"))
    return {
        "keys": np.asarray(keys, dtype=object),
        "key_rows": np.bincount(key_codes, minlength=len(keys)).astype(np.int32),
        "key_chars": np.bincount(key_codes, weights=nlen, minlength=len(keys)).astype(np.int64),
        "nlen": nlen.astype(np.int32),
        "long": long_rows.astype(np.int32),  # row numbers (in key order) of the long rows
        "long_text": codes.astype(np.int32),  # each long row's text
        "texts": pa.array(texts, type=pa.string()),  # Arrow: concatenated and encoded without Python
        "bands": band_keys(sig),
        "hashes": hashes,
        "docs": np.asarray(docs, dtype=object),
        "doc": doc_codes.astype(np.int32),
        "idx": np.array(_pick(idx_of, order), dtype=np.int64),
        "digest": digest.hexdigest(),
    }


def combine_copies(parts: Sequence[Mapping[str, Any]],
                   fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
                   memo: MutableMapping[str, Any] | None = None, *,
                   digests: Sequence[str | None] | None = None) -> pd.DataFrame:
    """copies.parquet from the files' parts: one row per shared passage between two articles.

    ``fetch(file, rows)``: text, doc_id, article_id, unit and page of those rows of that file's
    part (row numbers in the part's key order), in that order. Rows are numbered as if the whole
    season were sorted by article key and idx, and texts by first appearance in that order, so
    every tie breaks as when the season was searched at once. ``memo``: the last table under the
    ordered digests of the parts (with its rows' article-pair content keys: a changed season
    assembles only the pairs whose matches or files changed), pair scores under the texts'
    content hashes and fetched rows under each file's digest (same result with or without it). ``digests``: each part's
    ``digest`` when known without loading the part (``parts`` may then be lazy: they are loaded
    only when the table is not in the memo).
    """
    if memo is not None:
        if digests is None or any(d is None for d in digests):
            parts = list(parts)  # loaded once: their digests, then (on a miss) the search
            digests = [p.get("digest") for p in parts]
        season = _season_key(digests)
        last = memo.get(TABLE_MEMO)
        if season is not None and last is not None and last.get("key") == season:
            return last["table"].copy()  # a copy: the caller may change its table
        df, keys = _combine(list(parts), fetch, memo, last)
        if season is not None:
            # one entry, overwritten each run; a copy: the caller may change the table it gets
            memo[TABLE_MEMO] = {"key": season, "table": df.copy(), **keys}
        return df
    return _combine(list(parts), fetch, None)[0]


def _season_key(digests: Sequence[str | None]) -> str | None:
    """One hash of the files' part digests in input order (None when a part has none)."""
    if any(not d for d in digests):
        return None
    return hashlib.blake2b("\x1f".join(map(str, digests)).encode(), digest_size=16).hexdigest()


def _combine(parts: Sequence[Mapping[str, Any]],
             fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
             memo: MutableMapping[str, Any] | None, last: Mapping[str, Any] | None = None
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The search itself (see :func:`combine_copies`), and per table row its article pair's
    content key and passage number (``last``: the previous run's table with those)."""
    keys_l = [p["keys"] for p in parts]
    n_keys = np.array([len(k) for k in keys_l], dtype=np.int64)
    if not n_keys.sum():
        return _empty(), _no_keys()
    all_keys = np.concatenate(keys_l)
    key_rows = np.concatenate([p["key_rows"] for p in parts]).astype(np.int64)
    key_chars = np.concatenate([p["key_chars"] for p in parts])
    korder = np.argsort(all_keys.astype(str), kind="stable")  # season order: by article key
    rank = np.empty(len(korder), dtype=np.int64)
    rank[korder] = np.arange(len(korder))
    gstart = np.zeros(len(korder), dtype=np.int64)
    gstart[korder] = np.concatenate(([0], np.cumsum(key_rows[korder])[:-1]))
    # per long row: its global row number, its article (rank) and its text — for all files at
    # once (rows of a file are its keys' rows, key after key; files one after the other)
    n_rows = int(key_rows.sum())
    row_key = np.repeat(np.arange(len(key_rows)), key_rows)  # global key index of every row
    kstart = np.concatenate(([0], np.cumsum(key_rows)[:-1]))
    grow = gstart[row_key] + np.arange(n_rows) - kstart[row_key]  # its row in season order
    n_long = np.array([len(p["long"]) for p in parts], dtype=np.int64)
    n_file_rows = np.array([len(p["nlen"]) for p in parts], dtype=np.int64)
    n_texts = np.array([len(p["texts"]) for p in parts], dtype=np.int64)
    long_flat = (np.concatenate([p["long"] for p in parts]).astype(np.int64)
                 + np.repeat(np.concatenate(([0], np.cumsum(n_file_rows)[:-1])), n_long))
    text_flat = (np.concatenate([p["long_text"] for p in parts]).astype(np.int64)
                 + np.repeat(np.concatenate(([0], np.cumsum(n_texts)[:-1])), n_long))
    bands_l = [p["bands"] for p in parts]
    hash_l: list[np.ndarray] = [p["hashes"] for p in parts]
    texts_all = [p["texts"] for p in parts]
    nlen = np.zeros(n_rows, dtype=np.int64)
    nlen[grow] = np.concatenate([p["nlen"] for p in parts])
    row_of_g = grow[long_flat]
    art_long = rank[row_key[long_flat]]
    art_of_row = np.full(n_rows, -1, dtype=np.int64)
    art_of_row[row_of_g] = art_long
    if not len(art_long) or art_long.min() == art_long.max():  # fewer than two articles
        return _empty(), _no_keys()
    # one code per distinct text, numbered by first appearance in season row order
    tid, uniq = _factorize_texts(texts_all, hash_l)
    occ_text = tid[text_flat]
    first_row = np.full(len(uniq), n_rows, dtype=np.int64)
    np.minimum.at(first_row, occ_text, row_of_g)
    code_of_tid = np.empty(len(uniq), dtype=np.int64)
    code_of_tid[np.argsort(first_row, kind="stable")] = np.arange(len(uniq))
    bands_all = np.concatenate(bands_l)
    first_local = np.full(len(uniq), -1, dtype=np.int64)
    first_local[tid[::-1]] = np.arange(len(tid))[::-1]  # a file-local text standing for each
    n_text = len(uniq)
    bands = np.empty((n_text, bands_all.shape[1]), dtype=np.uint64)
    bands[code_of_tid] = bands_all[first_local]
    hashes = np.empty(n_text, dtype=np.uint64)
    hashes[code_of_tid] = np.concatenate(hash_l)[first_local]
    texts = uniq.take(pa.array(np.argsort(code_of_tid)))  # Arrow, by code
    order = np.argsort(row_of_g, kind="stable")
    long_rows = row_of_g[order]
    codes = code_of_tid[occ_text][order]

    pairs = pairs_from_band_keys(bands)
    ratios = _ratios(pairs, texts, hashes, memo)
    pairs, ratios = pairs[ratios >= MIN_RATIO], ratios[ratios >= MIN_RATIO]
    # edges text → confirmed near-duplicate (both ways, and each text to itself at 100)
    self_loops = np.arange(n_text)
    edges = pd.DataFrame({
        "j": np.concatenate((self_loops, pairs[:, 0], pairs[:, 1])),
        "c": np.concatenate((self_loops, pairs[:, 1], pairs[:, 0])),
        "r": np.concatenate((np.full(n_text, 100.0), ratios, ratios)),
    })
    # every sentence a text stands for (its own and its confirmed partners'), and in how many
    # articles they occur: 1 = nothing shared, more than MAX_SPREAD = boilerplate
    shared = np.flatnonzero(_shared(edges["j"].to_numpy(), edges["c"].to_numpy(), codes,
                                    art_of_row[long_rows], n_text, len(korder)))
    keys = art_of_row
    # every (sentence a, sentence b) of a shared text j and a partner c (or j itself) in another
    # article; per (article of a, article of b, a) the best partner: highest ratio, ties by c
    # then b (the order a loop over partners sorted by text, rows in order would meet them)
    e = edges[edges["j"].isin(shared)]
    m = (e.merge(pd.DataFrame({"c": codes, "b": long_rows}), on="c")
         .merge(pd.DataFrame({"j": codes, "a": long_rows}), on="j"))
    ka, kb = keys[m["a"].to_numpy()], keys[m["b"].to_numpy()]
    m = m.assign(ka=ka, kb=kb)[ka != kb]
    m = m.assign(nr=-m["r"]).sort_values(["ka", "kb", "a", "nr", "c", "b"], kind="stable")
    m = m.drop_duplicates(["ka", "kb", "a"])
    total_chars = np.empty(len(korder), dtype=np.int64)
    total_chars[rank] = key_chars
    # file and row (in the part's key order) of every season row: what a row's content is keyed on
    flat_of = np.empty(n_rows, dtype=np.int64)
    flat_of[grow] = np.arange(n_rows)
    file_start = np.concatenate(([0], np.cumsum(n_file_rows)[:-1]))
    digests = [p.get("digest") for p in parts]
    return _assemble(m, nlen, total_chars, flat_of, file_start, digests, fetch, memo, last)


def _assemble(m: pd.DataFrame, nlen: np.ndarray, total_chars: np.ndarray, flat_of: np.ndarray,
              file_start: np.ndarray, digests: list[str | None],
              fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
              memo: MutableMapping[str, Any] | None, last: Mapping[str, Any] | None
              ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The table from the best matches ``m`` (one row per article ka, article kb, sentence a of
    ka: its partner b in kb and their ratio r; sorted by ka, kb, a), and per table row its article
    pair's content key and passage number. An article pair's rows are a pure function of its
    matches both ways and of the two files' parts, so a pair whose content key is in ``last``
    (the previous table with those keys) takes its rows from there: only new or changed pairs are
    assembled and fetched."""
    ka_m, kb_m, a_m, b_m = (m[c].to_numpy(dtype=np.int64) for c in ("ka", "kb", "a", "b"))
    r_m = m["r"].to_numpy(dtype=np.float64)
    n_art = len(total_chars)
    gk = ka_m * n_art + kb_m
    starts = np.flatnonzero(np.concatenate(([True], gk[1:] != gk[:-1]))) if len(gk) else gk
    ends = np.append(starts[1:], len(gk)).astype(np.int64)
    g_ka, g_kb = ka_m[starts], kb_m[starts]
    g_chars = np.add.reduceat(nlen[a_m], starts) if len(starts) else np.zeros(0, dtype=np.int64)
    pos = np.minimum(np.searchsorted(gk[starts], g_kb * n_art + g_ka), max(len(starts) - 1, 0))
    rev = np.where(gk[starts][pos] == g_kb * n_art + g_ka, pos, -1) if len(starts) else pos
    back_chars = np.where(rev >= 0, g_chars[np.maximum(rev, 0)], 0)
    # each unordered pair once, from its first article's side; enough sentences and characters
    todo = np.flatnonzero((g_ka < g_kb) & (ends - starts >= MIN_SHARED_SENTENCES)
                          & (g_chars >= MIN_SHARED_CHARS))
    # a file twice in one season would give two pairs one key: then nothing is reused
    keyed = all(digests) and len(set(digests)) == len(digests)
    if keyed and len(todo):
        k1, k2 = _pair_keys(a_m, b_m, r_m, starts, rev, flat_of, file_start, digests)
        k1, k2 = k1[todo], k2[todo]
    else:
        k1 = k2 = np.zeros(len(todo), dtype=np.uint64)
    # pairs whose rows the last table holds (content key: two 64-bit lanes, both must match)
    old = last if keyed and last is not None and "g1" in last else None
    old_keys = list(zip(old["g1"].tolist(), old["g2"].tolist(), strict=True)) if old else []
    have = set(old_keys)
    cur = list(zip(k1.tolist(), k2.tolist(), strict=True))
    hit = np.array([k in have for k in cur], dtype=bool)
    found = []
    for t in np.flatnonzero(~hit).tolist():
        i = int(todo[t])
        s_, e_ = int(starts[i]), int(ends[i])
        a_l = a_m[s_:e_].tolist()
        b_l, r_l = b_m[s_:e_].tolist(), r_m[s_:e_].tolist()
        ka, kb = int(g_ka[i]), int(g_kb[i])
        share_a = int(g_chars[i]) / max(int(total_chars[ka]), 1)
        share_b = int(back_chars[i]) / max(int(total_chars[kb]), 1)
        pairs_ab = dict(zip(a_l, zip(b_l, r_l, strict=True), strict=True))
        for n_run, run in enumerate(_passages(a_l)):  # a_l: rows in order (m is sorted by a)
            found.append((t, n_run, run, pairs_ab[run[0]][0], share_a, share_b,
                          round(_mean([pairs_ab[x][1] for x in run]) / 100, 4)))
    # the sentences of the rows that made it, fetched per file (season row → file, its row)
    need_a = np.asarray(sorted({i for f_ in found for i in f_[2]} | {f_[3] for f_ in found}),
                        dtype=np.int64)
    flat = flat_of[need_a]
    fil = np.searchsorted(file_start, flat, side="right") - 1
    local = flat - file_start[fil]
    info: dict[int, tuple] = {}
    # rows fetched in earlier runs, per file under the digest of its rows (a pure function of it);
    # kept for every file of this season (rows of a pair taken from the last table may be needed
    # again when that pair changes)
    known_all: dict[str, dict[int, tuple]] = (memo.get(ROWS_MEMO) if memo is not None else None) or {}
    fetched = False
    by_file = np.argsort(fil, kind="stable")
    bounds = (np.flatnonzero(np.concatenate(([True], fil[by_file][1:] != fil[by_file][:-1], [True])))
              if len(fil) else np.zeros(1, dtype=np.int64))
    got: dict[str, dict[int, tuple]] = {}
    for lo_, hi_ in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        sel = by_file[lo_:hi_]
        f = int(fil[sel[0]])
        rows = local[sel].tolist()
        digest = digests[f]
        known = known_all.get(digest, {}) if digest else {}
        miss = [r for r in rows if r not in known]
        if miss:
            known = {**known, **dict(zip(miss, fetch(f, np.asarray(miss, dtype=np.int64)),
                                         strict=True))}
            fetched = True
        for g, r in zip(need_a[sel].tolist(), rows, strict=True):
            info[g] = known[r]
        if digest:
            got[digest] = known
    if memo is not None:
        season = set(d for d in digests if d)
        kept = {d: got.get(d, v) for d, v in known_all.items() if d in season} | got
        if fetched or kept.keys() != known_all.keys():
            memo[ROWS_MEMO] = kept  # this season's files only: never outgrows one season
    out = []
    for _t, _n, run, b0, share_a, share_b, sim in found:
        a0 = run[0]
        ta, da, aa, ua, pa_ = info[a0]
        _, db, ab, ub, pb = info[b0]
        out.append({
            "doc_id_a": da, "doc_id_b": db, "article_id_a": aa, "article_id_b": ab,
            "unit_a": ua, "unit_b": ub, "text": "".join(info[i][0] for i in run),
            "n_chars": int(sum(int(nlen[i]) for i in run)),
            "share_a": round(min(share_a, 1.0), 4), "share_b": round(min(share_b, 1.0), 4),
            "page_a": pa_, "page_b": pb, "similarity": sim,
        })
    # rows of unchanged pairs from the last table, then the new ones; in the order the search
    # meets them (by article pair, then passage), which the stable sort below keeps for ties
    t_of = np.array([f_[0] for f_ in found], dtype=np.int64)
    run_of = np.array([f_[1] for f_ in found], dtype=np.int64)
    frames = []
    if old is not None and hit.any():
        t_of_key = {k: t for t, k in enumerate(cur) if hit[t]}
        rows_t = np.array([t_of_key.get(k, -1) for k in old_keys], dtype=np.int64)
        keep = np.flatnonzero(rows_t >= 0)
        frames.append(old["table"].iloc[keep])
        t_of = np.concatenate((rows_t[keep], t_of))
        run_of = np.concatenate((old["run"][keep], run_of))
    if out:
        frames.append(pd.DataFrame(out, columns=COLUMNS).astype({"page_a": "Int64", "page_b": "Int64"}))
    if not frames:
        return _empty(), _no_keys()
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    pre = np.lexsort((run_of, g_kb[todo][t_of], g_ka[todo][t_of]))
    df = df.reset_index(drop=True).take(pre)
    order = df.reset_index(drop=True).sort_values(
        ["share_a", "doc_id_a", "article_id_a", "doc_id_b", "article_id_b", "text"],
        ascending=[False, True, True, True, True, True], kind="stable").index.to_numpy()
    final = pre[order]
    df = df.reset_index(drop=True).take(order).reset_index(drop=True)
    return df, {"g1": k1[t_of[final]], "g2": k2[t_of[final]], "run": run_of[final]}


def _no_keys() -> dict[str, np.ndarray]:
    return {"g1": np.zeros(0, dtype=np.uint64), "g2": np.zeros(0, dtype=np.uint64),
            "run": np.zeros(0, dtype=np.int64)}


_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijective scramble of each uint64."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> _U64(30))) * _M1
        x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


def _pair_keys(a_m: np.ndarray, b_m: np.ndarray, r_m: np.ndarray, starts: np.ndarray,
               rev: np.ndarray, flat_of: np.ndarray, file_start: np.ndarray,
               digests: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per article pair (group of ``m``): a 128-bit content key (two uint64 lanes) of what its
    table rows are made of — each match (file digest and row of a, of b, the ratio) and the
    sentences of the pair's other direction (its share_b). A file's digest covers its rows,
    lengths, article totals and the fetched columns, so equal keys mean equal rows."""
    dg = [bytes.fromhex(str(d)) for d in digests]
    f1 = np.array([int.from_bytes(d[:8], "little") for d in dg], dtype=np.uint64)
    f2 = np.array([int.from_bytes(d[8:16], "little") for d in dg], dtype=np.uint64)

    def where(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = flat_of[g]
        fil = np.searchsorted(file_start, flat, side="right") - 1
        return fil, (flat - file_start[fil]).astype(np.uint64)

    fa, la = where(a_m)
    fb, lb = where(b_m)
    rb = r_m.astype(np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        xa1, xa2 = _mix(f1[fa] + la * _U64(0x9E3779B97F4A7C15)), _mix(f2[fa] ^ _mix(la + _U64(1)))
        xb1, xb2 = _mix(f1[fb] ^ _mix(lb + _U64(2))), _mix(f2[fb] + lb * _U64(0xD6E8FEB86659FD93))
        g1 = np.add.reduceat(_mix(xa1 ^ _mix(xb1 + rb)), starts)
        g2 = np.add.reduceat(_mix(xa2 + _mix(xb2 ^ rb ^ _U64(0x5851F42D4C957F2D))), starts)
        s1 = np.add.reduceat(_mix(xa1 ^ _U64(0x2545F4914F6CDD1D)), starts)
        s2 = np.add.reduceat(_mix(xa2 + _U64(0x27BB2EE687B0B0FD)), starts)
        back1 = np.where(rev >= 0, s1[np.maximum(rev, 0)], _U64(0))
        back2 = np.where(rev >= 0, s2[np.maximum(rev, 0)], _U64(0))
        return _mix(g1 ^ _mix(back1 + _U64(3))), _mix(g2 + _mix(back2 ^ _U64(5)))


def fetch_rows(part: Mapping[str, Any], sentences: pa.Table | pd.DataFrame,
               rows: np.ndarray) -> list[tuple[Any, ...]]:
    """(text, doc_id, article_id, unit, page) of some rows of a copy part, from the file's
    sentences (an Arrow table: only the rows asked for are converted to Python)."""
    doc = part["docs"][part["doc"][rows]].tolist()
    idx = part["idx"][rows].tolist()
    if isinstance(sentences, pd.DataFrame):
        sentences = pa.Table.from_pandas(sentences, preserve_index=False)
    if len(part["docs"]) == 1:  # one document: idx (its order in the document) finds each row
        pos = pc.index_in(pa.array(idx, type=sentences.schema.field("idx").type),
                          value_set=sentences["idx"].combine_chunks())
        if pos.null_count == 0:
            names = [c for c in ("text", "doc_id", "article_id", "unit", "page")
                     if c in sentences.column_names]
            t = sentences.select(names).take(pos)
            col = {c: (t[c].to_pylist() if c in t.column_names else [None] * len(idx))
                   for c in ("text", "doc_id", "article_id", "unit", "page")}
            return [(x, str(d), a or "", u or UNKNOWN_UNIT, pg)  # unit as unit_names gives it
                    for x, d, a, u, pg in zip(col["text"], col["doc_id"], col["article_id"],
                                              col["unit"], col["page"], strict=True)]
    t = sentences.filter(pc.and_(pc.is_in(sentences["idx"], pa.array(sorted(set(idx)))),
                                 pc.is_in(sentences["kind"], pa.array(list(CONTENT_KINDS)))))
    n = t.num_rows
    col = {c: (t[c].to_pylist() if c in t.column_names else [None] * n)
           for c in ("text", "doc_id", "article_id", "unit", "page", "idx")}
    lookup = {(str(d), i): k for k, (d, i) in enumerate(zip(col["doc_id"], col["idx"], strict=True))}
    out = []
    for d, i in zip(doc, idx, strict=True):
        k = lookup[(d, i)]
        unit = col["unit"][k] or UNKNOWN_UNIT  # as unit_names: the unrecognised under one name
        out.append((col["text"][k], str(col["doc_id"][k]), col["article_id"][k] or "", unit,
                    col["page"][k]))
    return out


def find_copies(sentences: pd.DataFrame) -> pd.DataFrame:
    """copies.parquet: one row per shared passage between two articles (or documents)."""
    docs = [g for _, g in sentences.groupby("doc_id", sort=False)] if len(sentences) else []
    parts = [copy_part(d) for d in docs]
    return combine_copies(parts, lambda f, rows: fetch_rows(parts[f], docs[f], rows))


def _factorize(chunks: list[Any]) -> tuple[np.ndarray, pa.Array]:
    """Codes and uniques (Arrow) in order of first appearance over the files' texts taken as one
    (one Arrow hash table over all chunks: no Python strings)."""
    arrays = [c if isinstance(c, pa.Array) else pa.array(list(c), type=pa.string()) for c in chunks]
    enc = pa.chunked_array(arrays, type=pa.string()).dictionary_encode()
    if not enc.num_chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=pa.string())
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks])
    return codes.astype(np.int64), enc.chunks[0].dictionary


def _factorize_texts(chunks: list[Any], hashes: list[np.ndarray]) -> tuple[np.ndarray, pa.Array]:
    """:func:`_factorize` of the files' texts, by their 64-bit content hashes (a numeric hash table,
    several times faster than hashing the strings), checked: every text equals the text its code
    stands for — a hash collision (two texts, one code) falls back to the strings."""
    h = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    arrays = [c if isinstance(c, pa.Array) else pa.array(list(c), type=pa.string()) for c in chunks]
    if not len(h) or len(h) != sum(len(a) for a in arrays):
        return _factorize(chunks)
    codes, uniques = pd.factorize(h)  # codes in order of first appearance, as dictionary_encode
    codes = codes.astype(np.int64)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    flat = pa.chunked_array(arrays, type=pa.string()).combine_chunks()
    uniq = flat.take(pa.array(first))
    if not pc.all(pc.equal(flat, uniq.take(pa.array(codes)))).as_py():
        return _factorize(chunks)
    return codes, uniq


def _ratios(pairs: np.ndarray, texts: pa.Array, hashes: np.ndarray,
            memo: MutableMapping[str, Any] | None) -> np.ndarray:
    """fuzz.ratio of each pair of texts (codes into ``texts``); the ones in the memo (keyed by the
    two texts' content hashes, smaller first: the ratio is symmetric) are read, the rest computed,
    and the memo entry replaced by this run's pairs (bounded: it never grows past one season)."""
    n = len(pairs)
    if not n:
        return np.zeros(0)
    ha, hb = hashes[pairs[:, 0]], hashes[pairs[:, 1]]
    lo, hi = np.minimum(ha, hb), np.maximum(ha, hb)
    with np.errstate(over="ignore"):
        mixed = lo * _U64(0x9E3779B97F4A7C15) ^ hi  # one sortable key per pair, checked below
    ratios = np.full(n, np.nan)
    hit = memo.get(RATIO_MEMO) if memo is not None else None
    if hit is not None and len(hit["mixed"]):
        index = pd.Index(hit["mixed"])
        if index.is_unique:  # a hash lookup: several times a binary search's speed on 300k pairs
            pos = index.get_indexer(mixed)
            ok = pos >= 0
            pos = np.maximum(pos, 0)
        else:
            pos = np.minimum(np.searchsorted(hit["mixed"], mixed), len(hit["mixed"]) - 1)
            ok = hit["mixed"][pos] == mixed
        ok &= (hit["lo"][pos] == lo) & (hit["hi"][pos] == hi)
        ratios[ok] = hit["r"][pos[ok]]
    todo = np.flatnonzero(np.isnan(ratios))
    if len(todo):
        need = _distinct(pairs[todo].ravel())  # only the texts of the pairs to score become Python strings
        tl = texts.take(pa.array(need)).to_pylist()
        a = np.searchsorted(need, pairs[todo, 0]).tolist()
        b = np.searchsorted(need, pairs[todo, 1]).tolist()
        ratios[todo] = process.cpdist([tl[i] for i in a], [tl[j] for j in b],
                                      scorer=fuzz.ratio, workers=1)
        if memo is not None:
            order = np.argsort(mixed, kind="stable")
            memo[RATIO_MEMO] = {"mixed": mixed[order], "lo": lo[order], "hi": hi[order],
                                "r": ratios[order]}
    return ratios


def _shared(j: np.ndarray, c: np.ndarray, occ_text: np.ndarray, occ_key: np.ndarray,
            n_text: int, n_keys: int) -> np.ndarray:
    """Per text: is its :func:`_spread` between 2 and ``MAX_SPREAD``? Counted exactly only where
    bounds leave it open: the articles of j's partners (j included) summed is at least the spread,
    and a partner found in more than MAX_SPREAD articles alone makes j boilerplate."""
    tk = _text_articles(occ_text, occ_key, n_keys)
    cnt = np.bincount(tk // n_keys, minlength=n_text)
    upper = np.bincount(j, weights=cnt[c], minlength=n_text)
    big = np.zeros(n_text, dtype=bool)
    big[j[cnt[c] > MAX_SPREAD]] = True
    open_ = (upper >= 2) & ~big
    sel = open_[j]
    spread = _spread(j[sel], c[sel], occ_text, occ_key, n_text, n_keys, tk)
    return open_ & (spread >= 2) & (spread <= MAX_SPREAD)


def _spread(j: np.ndarray, c: np.ndarray, occ_text: np.ndarray, occ_key: np.ndarray,
            n_text: int, n_keys: int, tk: np.ndarray | None = None) -> np.ndarray:
    """Per text j: the number of distinct articles in which j or a partner c (edges j → c) occurs.
    ``tk``: :func:`_text_articles` when already known."""
    if tk is None:
        tk = _text_articles(occ_text, occ_key, n_keys)
    t_of, k_of = tk // n_keys, tk % n_keys
    start = np.searchsorted(t_of, np.arange(n_text))
    cnt = np.bincount(t_of, minlength=n_text)
    rep = cnt[c]
    offs = np.cumsum(rep) - rep
    idx = np.arange(int(rep.sum())) - np.repeat(offs, rep) + np.repeat(start[c], rep)
    jk = _distinct(np.repeat(j.astype(_code_type(n_text, n_keys)), rep) * n_keys + k_of[idx])
    return np.bincount(jk // n_keys, minlength=n_text)


def _text_articles(occ_text: np.ndarray, occ_key: np.ndarray, n_keys: int) -> np.ndarray:
    """Sorted distinct (text, article) pairs, each as text · n_keys + article."""
    dtype = _code_type(int(occ_text.max()) + 1 if len(occ_text) else 0, n_keys)
    return _distinct(occ_text.astype(dtype) * n_keys + occ_key.astype(dtype))


def _code_type(n_text: int, n_keys: int) -> type:
    """uint32 when every text · n_keys + article fits (numpy sorts it about twice as fast)."""
    return np.uint32 if n_text * n_keys < 2**32 else np.int64


def _distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort + drop repeats: numpy 2's hash-based np.unique is slower here)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) else x


def _mean(xs: list[float]) -> float:
    """np.mean's value (pairwise summation from 8 values up) without its per-call cost."""
    return sum(xs) / len(xs) if len(xs) < 8 else float(np.mean(xs))


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
