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

Reruns: the search's state (the distinct texts with their band keys, the confirmed pairs with
the bands that proposed them, the best matches) is kept in the memo; a season a few files away
from it updates it for the changed files' texts and what they touch (:func:`_rerun`), and takes
the rows of unchanged article pairs from the last table — the same table as a search from
scratch, at a fraction of its cost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

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
    """(i, j) pairs, i < j, whose texts share at least one band key; sorted, no repeats."""
    return _pairs_and_valid(keys, max_bucket)[0]


def _pairs_and_valid(keys: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pairs_from_band_keys`, and per text and band whether its bucket proposes pairs
    (holds 2 to ``max_bucket`` texts).

    Buckets are runs of equal band keys after sorting; the pairs inside all buckets are made at
    once (member k with member k + d of the same bucket, for d = 1, 2, …), not bucket by bucket.
    """
    n = keys.shape[0]
    valid = np.zeros(keys.shape, dtype=bool)
    found: list[np.ndarray] = []
    for band in range(keys.shape[1]):
        # most keys are unique: a hash pass finds the shared ones, and only those are sorted
        codes, _ = pd.factorize(keys[:, band])
        size = np.bincount(codes)[codes]
        ids = np.flatnonzero((size >= 2) & (size <= max_bucket))
        if not len(ids):
            continue
        valid[ids, band] = True
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
        return np.zeros((0, 2), dtype=np.int64), valid
    flat = np.sort(np.concatenate(found))  # sort + drop repeats: several times np.unique's speed
    flat = flat[np.concatenate(([True], flat[1:] != flat[:-1]))]
    return np.stack((flat // n, flat % n), axis=1), valid


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
    assembles only the pairs whose matches or files changed), the last search's state (a season
    a few files away from it updates the state instead of searching again: :func:`_rerun`), pair
    scores under the texts' content hashes and fetched rows under each file's digest (same result
    with or without it). ``digests``: each part's ``digest`` when known without loading the part
    (``parts`` may then be lazy: they are loaded only when the table is not in the memo).
    """
    if memo is not None:
        if digests is None or any(d is None for d in digests):
            parts = list(parts)  # loaded once: their digests, then (on a miss) the search
            digests = [p.get("digest") for p in parts]
        season = _season_key(digests)
        last = memo.get(TABLE_MEMO)
        if season is not None and last is not None and last.get("key") == season:
            return last["table"].copy()  # a copy: the caller may change its table
        parts = list(parts)
        lay = _layout(parts)
        # a file twice in one season would make two files one in the state: searched anew
        keyed = season is not None and len(set(digests)) == len(digests)
        state = memo.get(STATE_MEMO) if keyed and lay is not None and lay.unique_keys else None
        found = _rerun(parts, fetch, last, state, lay) if state is not None else None
        if found is None:
            found = _combine(parts, fetch, memo, last, lay, keep_state=keyed)
        df, keys, new_state = found
        if season is not None:
            # one entry, overwritten each run; a copy: the caller may change the table it gets
            memo[TABLE_MEMO] = {"key": season, "table": df.copy(), **keys}
        if new_state is not None:
            memo[STATE_MEMO] = new_state  # one entry too: the state of this season only
        return df
    parts = list(parts)
    return _combine(parts, fetch, None, None, _layout(parts))[0]


def _season_key(digests: Sequence[str | None]) -> str | None:
    """One hash of the files' part digests in input order (None when a part has none)."""
    if any(not d for d in digests):
        return None
    return hashlib.blake2b("\x1f".join(map(str, digests)).encode(), digest_size=16).hexdigest()


class _Layout(NamedTuple):
    """Where every row of the season's parts stands. Rows are numbered three ways: a file's
    *local* row (its part's key order), the *flat* row (files one after the other) and the
    *season* row (the whole season sorted by article key, then idx)."""

    rank: np.ndarray  # article (in file order) → its place among the season's article keys
    row_key: np.ndarray  # flat row → its article (in file order)
    grow: np.ndarray  # flat row → season row
    flat_of: np.ndarray  # season row → flat row
    file_start: np.ndarray  # file → its first flat row
    nlen: np.ndarray  # season row → its normalized length
    total_chars: np.ndarray  # article (by rank) → its characters
    unique_keys: bool  # no article key in two files (then the files' order changes nothing)


def _layout(parts: Sequence[Mapping[str, Any]]) -> _Layout | None:
    """The season's row numbering (None: the season has no article)."""
    keys_l = [p["keys"] for p in parts]
    if not sum(len(k) for k in keys_l):
        return None
    all_keys = np.concatenate(keys_l).astype(str)
    key_rows = np.concatenate([p["key_rows"] for p in parts]).astype(np.int64)
    key_chars = np.concatenate([p["key_chars"] for p in parts])
    korder = np.argsort(all_keys, kind="stable")  # season order: by article key
    rank = np.empty(len(korder), dtype=np.int64)
    rank[korder] = np.arange(len(korder))
    gstart = np.zeros(len(korder), dtype=np.int64)
    gstart[korder] = np.concatenate(([0], np.cumsum(key_rows[korder])[:-1]))
    # rows of a file are its keys' rows, key after key; files one after the other
    n_rows = int(key_rows.sum())
    row_key = np.repeat(np.arange(len(key_rows)), key_rows)
    kstart = np.concatenate(([0], np.cumsum(key_rows)[:-1]))
    grow = gstart[row_key] + np.arange(n_rows) - kstart[row_key]
    n_file_rows = np.array([len(p["nlen"]) for p in parts], dtype=np.int64)
    nlen = np.zeros(n_rows, dtype=np.int64)
    nlen[grow] = np.concatenate([p["nlen"] for p in parts])
    flat_of = np.empty(n_rows, dtype=np.int64)
    flat_of[grow] = np.arange(n_rows)
    total_chars = np.empty(len(korder), dtype=np.int64)
    total_chars[rank] = key_chars
    sorted_keys = all_keys[korder]
    unique = bool(len(sorted_keys) < 2 or (sorted_keys[1:] != sorted_keys[:-1]).all())
    return _Layout(rank, row_key, grow, flat_of, np.concatenate(([0], np.cumsum(n_file_rows)[:-1])),
                   nlen, total_chars, unique)


def _long_rows(parts: Sequence[Mapping[str, Any]], lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Every long row (flat row number) and the index of its text among the files' texts taken
    one file after the other."""
    n_long = np.array([len(p["long"]) for p in parts], dtype=np.int64)
    n_texts = np.array([len(p["texts"]) for p in parts], dtype=np.int64)
    long_flat = (np.concatenate([p["long"] for p in parts]).astype(np.int64)
                 + np.repeat(lay.file_start, n_long))
    text_flat = (np.concatenate([p["long_text"] for p in parts]).astype(np.int64)
                 + np.repeat(np.concatenate(([0], np.cumsum(n_texts)[:-1])), n_long))
    return long_flat, text_flat


_Found = tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any] | None]


def _combine(parts: Sequence[Mapping[str, Any]],
             fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
             memo: MutableMapping[str, Any] | None, last: Mapping[str, Any] | None,
             lay: _Layout | None, keep_state: bool = False) -> _Found:
    """The search itself (see :func:`combine_copies`), and per table row its article pair's
    content key and passage number (``last``: the previous run's table with those); with
    ``keep_state``, the search's state for the next run (see :func:`_rerun`)."""
    if lay is None:
        return _empty(), _no_keys(), None
    n_rows = len(lay.grow)
    long_flat, text_flat = _long_rows(parts, lay)
    hash_l: list[np.ndarray] = [p["hashes"] for p in parts]
    row_of_g = lay.grow[long_flat]
    art_long = lay.rank[lay.row_key[long_flat]]
    art_of_row = np.full(n_rows, -1, dtype=np.int64)
    art_of_row[row_of_g] = art_long
    if not len(art_long) or art_long.min() == art_long.max():  # fewer than two articles
        return _empty(), _no_keys(), None
    # one code per distinct text, numbered by first appearance in season row order
    tid, uniq = _factorize_texts([p["texts"] for p in parts], hash_l)
    occ_text = tid[text_flat]
    first_row = np.full(len(uniq), n_rows, dtype=np.int64)
    np.minimum.at(first_row, occ_text, row_of_g)
    code_of_tid = np.empty(len(uniq), dtype=np.int64)
    code_of_tid[np.argsort(first_row, kind="stable")] = np.arange(len(uniq))
    bands_all = np.concatenate([p["bands"] for p in parts])
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

    pairs, valid = _pairs_and_valid(bands, MAX_BUCKET)
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
                                    art_of_row[long_rows], n_text, len(lay.rank)))
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
    match = _Matches(*(m[c].to_numpy(dtype=np.int64) for c in ("ka", "kb", "a", "b")),
                     m["r"].to_numpy(dtype=np.float64))
    digests = [p.get("digest") for p in parts]
    state = None
    if keep_state and lay.unique_keys:
        tfiles = np.zeros(n_text, dtype=np.int64)
        tfiles[code_of_tid] = np.bincount(tid, minlength=len(uniq))  # a file holds a text once
        state = _search_state(parts, lay, hashes, bands, tfiles, pairs, ratios, valid, match,
                              hashes[m["j"].to_numpy(dtype=np.int64)])
    return (*_assemble(match, lay, digests, fetch, memo, last), state)


class _Matches(NamedTuple):
    """The best matches, sorted by (ka, kb, a): per article ka, article kb and sentence a of ka
    (season rows), its partner b in kb and their ratio r."""

    ka: np.ndarray
    kb: np.ndarray
    a: np.ndarray
    b: np.ndarray
    r: np.ndarray


# ---------------------------------------------------------------- a rerun: the state updated

#: memo entry of the last search's state: the season's distinct texts (content hash, band keys,
#: how many files hold each), its confirmed near-duplicate pairs (with the bands whose buckets
#: proposed them), each file's texts and the best matches; a rerun a few files away from that
#: season updates it (:func:`_rerun`) instead of searching the whole season again
STATE_MEMO = "copies-state-v1"
#: a rerun whose changed files (old and new) hold more texts than this share of the season's
#: distinct texts searches the season anew (the update costs more per text)
MAX_CHANGED_SHARE = 0.1
#: the state is written again only when the season has moved this far from it (the next rerun
#: updates from it): writing it (~30 MB at 1,000 reports) costs more than updating from a state a
#: few files away, and a file edited again and again never moves the season further
REWRITE_SHARE = 0.025


def _search_state(parts: Sequence[Mapping[str, Any]], lay: _Layout, hashes: np.ndarray,
                  bands: np.ndarray, tfiles: np.ndarray, pairs: np.ndarray, ratios: np.ndarray,
                  valid: np.ndarray, match: _Matches, match_j: np.ndarray) -> dict[str, Any] | None:
    """The state a cold search leaves for the next run (None when texts share a content hash:
    the search told them apart by their strings, which the state does not keep). Every array is
    in a canonical order (texts and pairs by content hash), so a rerun's update gives exactly
    the state a cold search of its season gives."""
    order = np.argsort(hashes, kind="stable")
    t_hash = hashes[order]
    if len(t_hash) > 1 and (t_hash[1:] == t_hash[:-1]).any():
        return None
    lo = np.minimum(hashes[pairs[:, 0]], hashes[pairs[:, 1]])
    hi = np.maximum(hashes[pairs[:, 0]], hashes[pairs[:, 1]])
    # the bands whose bucket proposed each pair: equal keys there, in a bucket of a valid size
    same = bands[pairs[:, 0]] == bands[pairs[:, 1]]
    mask = ((same & valid[pairs[:, 0]]).astype(np.uint16) << np.arange(same.shape[1], dtype=np.uint16)
            ).sum(axis=1, dtype=np.uint16)
    by = np.lexsort((hi, lo))
    return _state_dict(parts, lay, t_hash, np.ascontiguousarray(bands[order].T), tfiles[order],
                       (lo[by], hi[by], ratios[by], mask[by]), match, match_j)


def _state_dict(parts: Sequence[Mapping[str, Any]], lay: _Layout, t_hash: np.ndarray,
                t_bands: np.ndarray, t_files: np.ndarray,
                edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                match: _Matches, match_j: np.ndarray) -> dict[str, Any]:
    """The state's entry: the matches by file and local row (season rows move when any file
    changes; a file's rows do not)."""
    file_texts = [np.asarray(p["hashes"], dtype=np.uint64) for p in parts]

    def where(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = lay.flat_of[rows]
        f = np.searchsorted(lay.file_start, flat, side="right") - 1
        return f.astype(np.int32), (flat - lay.file_start[f]).astype(np.int32)

    fa, la = where(match.a)
    fb, lb = where(match.b)
    return {
        "version": _STATE_VERSION,
        "digests": [str(p["digest"]) for p in parts],
        "file_texts": np.concatenate(file_texts) if file_texts else np.zeros(0, dtype=np.uint64),
        "file_text_start": np.concatenate(([0], np.cumsum([len(t) for t in file_texts]))).astype(np.int64),
        "t_hash": t_hash, "t_bands": t_bands, "t_files": t_files.astype(np.int32),
        "e_lo": edges[0], "e_hi": edges[1], "e_r": edges[2], "e_mask": edges[3],
        "m_fa": fa, "m_la": la, "m_fb": fb, "m_lb": lb, "m_r": match.r, "m_j": match_j,
    }


def _rerun(parts: Sequence[Mapping[str, Any]],
           fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
           last: Mapping[str, Any] | None, state: Mapping[str, Any], lay: _Layout) -> _Found | None:
    """The search of a season a few files away from the state's, by updating the state: only
    texts of the changed files and what they touch are searched again. None when the update does
    not apply (too many changes, a text under another text's hash, a state this code did not
    write); then the season is searched anew. (Article keys must be unique in the season, as
    ``combine_copies`` checks: then the files' order changes nothing.)

    Why the rest stands: a text's best matches depend on its confirmed pairs, its partners'
    occurrences and the spread they give. Pairs change only in LSH buckets that gain or lose a
    text (the season's distinct texts changed: their band keys are in the state), occurrences
    only for the changed files' texts. So the matches of every sentence whose text is not a
    changed file's, not a partner of one (before or after) and not in a pair that came or went
    are the last run's, moved to the new row numbers (rows keep their order: articles sorted by
    key, a file's rows in its key order). A text is known across runs by its 64-bit content
    hash and its band keys (as the pair scores of ``RATIO_MEMO`` are known by the hashes)."""
    try:
        update = _update_state(parts, lay, state)
    except (_Stale, AttributeError, KeyError, IndexError, ValueError, TypeError):
        return None  # not a state this code wrote (damaged, another version): searched anew
    if update is None:
        return None
    match, match_j, new_state = update
    digests = [p.get("digest") for p in parts]
    # no rows memo: a rerun fetches only the rows of its new pairs (reading and writing the
    # season's fetched rows would cost more)
    return (*_assemble(match, lay, digests, fetch, None, last), new_state)


class _Stale(Exception):
    """The state does not describe a season this one can be reached from (damaged, foreign)."""


#: the state's layout: a state of another layout is never read
_STATE_VERSION = 1


def _update_state(parts: Sequence[Mapping[str, Any]], lay: _Layout, state: Mapping[str, Any]
                  ) -> tuple[_Matches, np.ndarray, dict[str, Any] | None] | None:
    """:func:`_rerun`'s work: the new season's matches (and their texts' hashes), and its state
    when the season has moved more than ``REWRITE_SHARE`` from the given one."""
    if state.get("version") != _STATE_VERSION:
        raise _Stale
    digests = [str(p["digest"]) for p in parts]
    old_digests = list(state["digests"])
    old_at = {d: i for i, d in enumerate(old_digests)}
    if len(old_at) != len(old_digests):
        raise _Stale
    now = set(digests)
    added = [i for i, d in enumerate(digests) if d not in old_at]
    removed = [i for i, d in enumerate(old_digests) if d not in now]
    start = state["file_text_start"]
    rem_l = [state["file_texts"][start[i]:start[i + 1]] for i in removed]
    add_l = [np.asarray(parts[i]["hashes"], dtype=np.uint64) for i in added]
    moved = (sum(map(len, rem_l)) + sum(map(len, add_l))) / max(len(state["t_hash"]), 1)
    if moved > MAX_CHANGED_SHARE:
        return None
    texts = _texts_update(state, rem_l, add_l, [parts[i]["bands"] for i in added])
    if texts is None:
        return None
    lo, hi, r, mask, came_or_went = _pairs_update(parts, state, texts)
    # the texts whose matches may differ: the changed files' texts, their partners (before and
    # after: a pair of a gone text went) and the texts of pairs that came or went
    changed = _distinct(np.concatenate([*rem_l, *add_l])) if rem_l or add_l else texts.new_h
    dirty = _distinct(np.concatenate([changed, came_or_went, *_partners(lo, hi, changed)]))
    match, match_j = _matches_of(parts, lay, dirty, lo, hi, r)
    # the last matches of every other text, at their rows in this season
    new_at = np.full(len(old_digests), -1, dtype=np.int64)
    for i, d in enumerate(digests):
        if d in old_at:
            new_at[old_at[d]] = i
    fa, fb = new_at[state["m_fa"]], new_at[state["m_fb"]]
    stay = ~_isin_sorted(state["m_j"], dirty)
    if not ((fa[stay] >= 0) & (fb[stay] >= 0)).all():
        raise _Stale  # a clean text's match in a removed file: not this state's season
    flat_a = lay.file_start[fa[stay]] + state["m_la"][stay]
    flat_b = lay.file_start[fb[stay]] + state["m_lb"][stay]
    ka = np.concatenate((lay.rank[lay.row_key[flat_a]], match.ka))
    kb = np.concatenate((lay.rank[lay.row_key[flat_b]], match.kb))
    a = np.concatenate((lay.grow[flat_a], match.a))
    b = np.concatenate((lay.grow[flat_b], match.b))
    by = np.lexsort((a, kb, ka))
    full = _Matches(ka[by], kb[by], a[by], b[by], np.concatenate((state["m_r"][stay], match.r))[by])
    full_j = np.concatenate((state["m_j"][stay], match_j))[by]
    if moved <= REWRITE_SHARE:
        return full, full_j, None
    kept = ~texts.gone
    at = np.searchsorted(state["t_hash"][kept], texts.new_h)
    t_hash = np.insert(state["t_hash"][kept], at, texts.new_h)
    t_bands = np.insert(state["t_bands"][:, kept], at, texts.new_b.T, axis=1)
    t_files = np.insert(texts.files[kept], at, texts.new_files)
    return full, full_j, _state_dict(parts, lay, t_hash, t_bands, t_files, (lo, hi, r, mask), full,
                                     full_j)


class _Texts(NamedTuple):
    """The season's distinct texts after a change, against the state's."""

    files: np.ndarray  # per state text: how many files hold it now
    gone: np.ndarray  # per state text: no file holds it any more
    new_h: np.ndarray  # the texts no state text is (sorted hashes)
    new_b: np.ndarray  # their band keys (one row each)
    new_files: np.ndarray  # how many files hold each


def _texts_update(state: Mapping[str, Any], rem_l: list[np.ndarray], add_l: list[np.ndarray],
                  add_bands: list[np.ndarray]) -> _Texts | None:
    """The distinct texts once the removed files' texts (``rem_l``) are taken out and the added
    files' (``add_l``, with their band keys) put in. None when two different texts would be one:
    a text of an added file under the hash of another (its band keys differ)."""
    t_hash, t_bands = state["t_hash"], state["t_bands"]
    n_bands = t_bands.shape[0]
    cnt = state["t_files"].astype(np.int64)
    if rem_l:
        np.add.at(cnt, _positions(t_hash, np.concatenate(rem_l)), -1)
    new_h = np.zeros(0, dtype=np.uint64)
    new_b = np.zeros((0, n_bands), dtype=np.uint64)
    new_n = np.zeros(0, dtype=np.int64)
    if add_l:
        if any(len(_distinct(h)) != len(h) for h in add_l):
            return None  # two texts of one file under one hash
        a_h = np.concatenate(add_l)
        a_b = np.concatenate([np.asarray(b, dtype=np.uint64) for b in add_bands])
        pos = np.minimum(np.searchsorted(t_hash, a_h), max(len(t_hash) - 1, 0))
        known = t_hash[pos] == a_h if len(t_hash) else np.zeros(len(a_h), dtype=bool)
        if (t_bands[:, pos[known]].T != a_b[known]).any():
            return None
        np.add.at(cnt, pos[known], 1)
        order = np.argsort(a_h[~known], kind="stable")
        nh, nb = a_h[~known][order], a_b[~known][order]
        first = np.concatenate(([True], nh[1:] != nh[:-1])) if len(nh) else np.zeros(0, dtype=bool)
        if (nb != nb[np.cumsum(first) - 1]).any():
            return None  # two new texts under one hash
        new_h, new_b = nh[first], nb[first]
        new_n = np.diff(np.append(np.flatnonzero(first), len(nh)))
    if (cnt < 0).any():
        raise _Stale
    return _Texts(cnt.astype(np.int32), cnt == 0, new_h, new_b, new_n.astype(np.int32))


def _pairs_update(parts: Sequence[Mapping[str, Any]], state: Mapping[str, Any], texts: _Texts
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The confirmed pairs (lo, hi, ratio, bands) after the change, in the state's order, and
    the texts of the pairs that came or went. A gone text's pairs go; the LSH buckets that
    gained or lost a text are sized again (a bucket proposes pairs only while it holds 2 to
    MAX_BUCKET texts), which gives pairs bands and takes them: a pair without a band goes, a
    new pair with one is scored and kept when confirmed."""
    t_hash, t_bands = state["t_hash"], state["t_bands"]
    lo, hi, r, mask = state["e_lo"], state["e_hi"], state["e_r"], state["e_mask"].copy()
    gone_h = t_hash[texts.gone]
    drop = np.zeros(len(lo), dtype=bool)
    if len(gone_h):
        drop = _isin_sorted(lo, gone_h) | _isin_sorted(hi, gone_h)
    changes = _bucket_changes(t_hash, t_bands, texts.gone, texts.new_h, texts.new_b)
    fresh: list[tuple[int, int, int]] = []
    for (x, y), (set_bits, clear_bits) in sorted(changes.items()):
        k, there = _pair_at(lo, hi, x, y)
        if there:
            bits = (int(mask[k]) & ~clear_bits) | set_bits
            mask[k] = bits
            drop[k] |= not bits
        elif set_bits:
            fresh.append((x, y, set_bits))
    ends = [lo[drop], hi[drop]]
    keep = ~drop
    lo, hi, r, mask = lo[keep], hi[keep], r[keep], mask[keep]
    if fresh:
        f_lo = np.array([f[0] for f in fresh], dtype=np.uint64)
        f_hi = np.array([f[1] for f in fresh], dtype=np.uint64)
        f_mask = np.array([f[2] for f in fresh], dtype=np.uint16)
        f_r = _pair_ratios(parts, f_lo, f_hi)
        ok = f_r >= MIN_RATIO
        f_lo, f_hi, f_r, f_mask = f_lo[ok], f_hi[ok], f_r[ok], f_mask[ok]
        # sorted by (lo, hi) as the pairs are: each inserted where it belongs
        at = np.array([_pair_at(lo, hi, x, y)[0] for x, y in zip(f_lo.tolist(), f_hi.tolist(),
                                                                   strict=True)], dtype=np.int64)
        lo, hi = np.insert(lo, at, f_lo), np.insert(hi, at, f_hi)
        r, mask = np.insert(r, at, f_r), np.insert(mask, at, f_mask)
        ends += [f_lo, f_hi]
    return lo, hi, r, mask, np.concatenate(ends)


def _pair_at(lo: np.ndarray, hi: np.ndarray, x: int, y: int) -> tuple[int, bool]:
    """Where the pair (x, y) is, or belongs, among pairs sorted by (lo, hi); and whether it is
    there."""
    x_, y_ = _U64(x), _U64(y)  # a Python int costs numpy a pass over the array
    left = int(np.searchsorted(lo, x_, side="left"))
    right = int(np.searchsorted(lo, x_, side="right"))
    k = left + int(np.searchsorted(hi[left:right], y_))
    return k, bool(k < right and hi[k] == y_)


def _positions(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where each value is in ``sorted_values`` (each must be there, else the state is stale)."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    if not len(sorted_values):
        raise _Stale
    pos = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    if (sorted_values[pos] != values).any():
        raise _Stale
    return pos


def _bucket_changes(t_hash: np.ndarray, t_bands: np.ndarray, gone: np.ndarray, new_h: np.ndarray,
                    new_b: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """Per pair of texts (smaller hash first): the bands to set and to clear in its mask, for
    the LSH buckets that gained a new text or lost a gone one. A bucket proposes every pair of
    its texts while it holds 2 to MAX_BUCKET of them; the old bucket's texts are the state's
    texts with that band key, the new one's those minus the gone plus the new."""
    out: dict[tuple[int, int], list[int]] = {}
    gone_b = t_bands[:, gone]
    for band in range(t_bands.shape[0]):
        keys = _distinct(np.concatenate((gone_b[band], new_b[:, band])))
        if not len(keys):
            continue
        col = t_bands[band]
        hit = np.flatnonzero(_isin_sorted(col, keys))
        b_key = np.concatenate((col[hit], new_b[:, band]))
        b_hash = np.concatenate((t_hash[hit], new_h))
        b_old = np.concatenate((np.ones(len(hit), dtype=bool), np.zeros(len(new_h), dtype=bool)))
        b_new = np.concatenate((~gone[hit], np.ones(len(new_h), dtype=bool)))
        order = np.lexsort((b_hash, b_key))
        b_key, b_hash, b_old, b_new = b_key[order], b_hash[order], b_old[order], b_new[order]
        bounds = np.flatnonzero(np.concatenate(([True], b_key[1:] != b_key[:-1], [True])))
        n_old = np.add.reduceat(b_old.astype(np.int64), bounds[:-1])
        n_new = np.add.reduceat(b_new.astype(np.int64), bounds[:-1])
        valid_old = (n_old >= 2) & (n_old <= MAX_BUCKET)
        valid_new = (n_new >= 2) & (n_new <= MAX_BUCKET)
        has_new = np.add.reduceat((~b_old).astype(np.int64), bounds[:-1]) > 0
        bit = 1 << band
        for g in np.flatnonzero((valid_old != valid_new) | (valid_new & has_new)).tolist():
            s, e = int(bounds[g]), int(bounds[g + 1])
            hs, olds, news = b_hash[s:e].tolist(), b_old[s:e].tolist(), b_new[s:e].tolist()
            for x in range(len(hs)):
                for y in range(x + 1, len(hs)):
                    if not (news[x] and news[y]):
                        continue  # a pair with a gone text: dropped with it
                    pair = (hs[x], hs[y]) if hs[x] < hs[y] else (hs[y], hs[x])
                    both_old = olds[x] and olds[y]
                    if valid_new[g] and not (both_old and valid_old[g]):
                        out.setdefault(pair, [0, 0])[0] |= bit
                    elif valid_old[g] and both_old and not valid_new[g]:
                        out.setdefault(pair, [0, 0])[1] |= bit
    return out


def _pair_ratios(parts: Sequence[Mapping[str, Any]], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """fuzz.ratio of pairs of the season's texts given by content hash (each text's string taken
    from the first file that holds it)."""
    want = _distinct(np.concatenate((lo, hi)))
    lens = np.array([len(p["hashes"]) for p in parts], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    h_all = np.concatenate([np.asarray(p["hashes"], dtype=np.uint64) for p in parts])
    at = np.flatnonzero(_isin_sorted(h_all, want))
    _, first = np.unique(h_all[at], return_index=True)
    at = at[first]
    f = np.searchsorted(starts, at, side="right") - 1
    text_of: dict[int, str] = {}
    for file in np.unique(f).tolist():
        local = at[f == file] - starts[file]
        got = parts[file]["texts"].take(pa.array(local)).to_pylist()
        text_of.update(zip(h_all[at[f == file]].tolist(), got, strict=True))
    return process.cpdist([text_of[k] for k in lo.tolist()], [text_of[k] for k in hi.tolist()],
                          scorer=fuzz.ratio, workers=1).astype(np.float64)


def _partners(lo: np.ndarray, hi: np.ndarray, texts: np.ndarray) -> list[np.ndarray]:
    """The other ends of the pairs (lo, hi) that have an end among ``texts`` (sorted)."""
    return [hi[_isin_sorted(lo, texts)], lo[_isin_sorted(hi, texts)]]


def _matches_of(parts: Sequence[Mapping[str, Any]], lay: _Layout, dirty: np.ndarray,
                lo: np.ndarray, hi: np.ndarray, r: np.ndarray) -> tuple[_Matches, np.ndarray]:
    """The best matches of the sentences whose text is in ``dirty`` (sorted hashes), as the
    whole-season search finds them (:func:`_combine`): a text is shared when it and its partners
    occur in 2 to MAX_SPREAD articles; per (article of a, article of b, a) the partner with the
    highest ratio, ties by the partner's first row in the season, then by b."""
    # texts involved: the dirty ones and their partners, and every row of each
    sel_lo, sel_hi = _isin_sorted(lo, dirty), _isin_sorted(hi, dirty)
    ej = np.concatenate((lo[sel_lo], hi[sel_hi]))  # edges dirty text → partner
    ec = np.concatenate((hi[sel_lo], lo[sel_hi]))
    er = np.concatenate((r[sel_lo], r[sel_hi]))
    texts = _distinct(np.concatenate((dirty, ec)))
    long_flat, text_flat = _long_rows(parts, lay)
    row_h = np.concatenate([np.asarray(p["hashes"], dtype=np.uint64) for p in parts])[text_flat]
    occ = np.flatnonzero(_isin_sorted(row_h, texts))
    occ_t = np.searchsorted(texts, row_h[occ])
    occ_row = lay.grow[long_flat[occ]]
    occ_art = lay.rank[lay.row_key[long_flat[occ]]]
    order = np.lexsort((occ_row, occ_t))
    occ_t, occ_row, occ_art = occ_t[order], occ_row[order], occ_art[order]
    n_t = len(texts)
    cnt = np.bincount(occ_t, minlength=n_t)
    start = np.concatenate(([0], np.cumsum(cnt)[:-1]))
    first_row = np.full(n_t, len(lay.grow), dtype=np.int64)
    first_row[cnt > 0] = occ_row[start[cnt > 0]]  # rows sorted per text: the first is the least
    # directed edges j → c (text indices), each text to itself at 100
    d = np.searchsorted(texts, dirty)
    j = np.concatenate((d, np.searchsorted(texts, ej)))
    c = np.concatenate((d, np.searchsorted(texts, ec)))
    rr = np.concatenate((np.full(len(d), 100.0), er))

    def expand(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(edge, occurrence) for every occurrence of text t[edge]."""
        rep = cnt[t]
        edge = np.repeat(np.arange(len(t)), rep)
        return edge, np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep) + start[t][edge]

    # spread: distinct articles of a text and its partners
    edge, o = expand(c)
    n_art = len(lay.total_chars)
    ja = _distinct(j[edge] * n_art + occ_art[o])
    spread = np.bincount(ja // n_art, minlength=n_t)
    shared = (spread >= 2) & (spread <= MAX_SPREAD)
    on = shared[j]
    j, c, rr = j[on], c[on], rr[on]
    edge, ob = expand(c)  # partner rows b
    j2, c2, r2, b, kb = j[edge], c[edge], rr[edge], occ_row[ob], occ_art[ob]
    edge, oa = expand(j2)  # own rows a
    a, ka = occ_row[oa], occ_art[oa]
    c2, r2, b, kb = c2[edge], r2[edge], b[edge], kb[edge]
    own_hash = texts[j2[edge]]
    ok = ka != kb
    ka, kb, a, b, r2, c2, own_hash = ka[ok], kb[ok], a[ok], b[ok], r2[ok], c2[ok], own_hash[ok]
    order = np.lexsort((b, first_row[c2], -r2, a, kb, ka))
    ka, kb, a, b, r2, own_hash = ka[order], kb[order], a[order], b[order], r2[order], own_hash[order]
    if len(a):
        best = np.concatenate(([True], (ka[1:] != ka[:-1]) | (kb[1:] != kb[:-1]) | (a[1:] != a[:-1])))
        ka, kb, a, b, r2, own_hash = ka[best], kb[best], a[best], b[best], r2[best], own_hash[best]
    return _Matches(ka, kb, a, b, r2), own_hash


def _isin_sorted(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """np.isin for 64-bit hashes (``members`` sorted): a bitmap of the members' low bits picks
    the few candidates, a binary search confirms them."""
    out = np.zeros(len(values), dtype=bool)
    if not len(values) or not len(members):
        return out
    low = _U64((1 << 20) - 1)
    table = np.zeros(1 << 20, dtype=bool)
    table[members & low] = True
    cand = np.flatnonzero(table[values & low])
    pos = np.minimum(np.searchsorted(members, values[cand]), len(members) - 1)
    out[cand[members[pos] == values[cand]]] = True
    return out


def _assemble(match: _Matches, lay: _Layout, digests: list[str | None],
              fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
              memo: MutableMapping[str, Any] | None, last: Mapping[str, Any] | None
              ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The table from the best matches, and per table row its article pair's content key and
    passage number. An article pair's rows are a pure function of its matches both ways and of
    the two files' parts, so a pair whose content key is in ``last`` (the previous table with
    those keys) takes its rows from there: only new or changed pairs are assembled and fetched."""
    ka_m, kb_m, a_m, b_m, r_m = match
    nlen, total_chars, flat_of, file_start = lay.nlen, lay.total_chars, lay.flat_of, lay.file_start
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
    # per old row, the pair (t) with its key (-1: none); a pair is hit when an old row has its key
    rows_t = _key_rows(old["g1"], old["g2"], k1, k2) if old else np.zeros(0, dtype=np.int64)
    hit = np.zeros(len(todo), dtype=bool)
    hit[rows_t[rows_t >= 0]] = True
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


def _key_rows(g1: np.ndarray, g2: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """Per (g1, g2) key: the index of the equal (k1, k2) key (-1: none). The (k1, k2) keys are
    distinct (a file twice in a season is never keyed)."""
    out = np.full(len(g1), -1, dtype=np.int64)
    if not len(g1) or not len(k1):
        return out
    order = np.argsort(k1, kind="stable")
    pos = np.minimum(np.searchsorted(k1[order], g1), len(k1) - 1)
    t = order[pos]
    ok = (k1[t] == g1) & (k2[t] == g2)
    out[ok] = t[ok]
    return out


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
