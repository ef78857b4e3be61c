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
#: whose copy parts are all unchanged (the table is a pure function of them, in order) reads it
TABLE_MEMO = "copies-table-v1"
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
    ordered digests of the parts, pair scores under the texts' content hashes and fetched rows
    under each file's digest (same result with or without it). ``digests``: each part's
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
        df = _combine(list(parts), fetch, memo)
        if season is not None:
            # one entry, overwritten each run; a copy: the caller may change the table it gets
            memo[TABLE_MEMO] = {"key": season, "table": df.copy()}
        return df
    return _combine(list(parts), fetch, None)


def _season_key(digests: Sequence[str | None]) -> str | None:
    """One hash of the files' part digests in input order (None when a part has none)."""
    if any(not d for d in digests):
        return None
    return hashlib.blake2b("\x1f".join(map(str, digests)).encode(), digest_size=16).hexdigest()


def _combine(parts: Sequence[Mapping[str, Any]],
             fetch: Callable[[int, np.ndarray], list[tuple[Any, ...]]],
             memo: MutableMapping[str, Any] | None) -> pd.DataFrame:
    """The search itself (see :func:`combine_copies`)."""
    keys_l = [p["keys"] for p in parts]
    n_keys = np.array([len(k) for k in keys_l], dtype=np.int64)
    if not n_keys.sum():
        return _empty()
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
    file_of_key = np.repeat(np.arange(len(parts)), n_keys)
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
    if len(_distinct(art_long)) < 2:
        return _empty()
    # one code per distinct text, numbered by first appearance in season row order
    tid, uniq = _factorize(texts_all)
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
    spread = _spread(edges["j"].to_numpy(), edges["c"].to_numpy(), codes,
                     art_of_row[long_rows], n_text, len(korder))
    shared = np.flatnonzero((spread >= 2) & (spread <= MAX_SPREAD))
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
    match: dict[tuple[int, int], dict[int, tuple[int, float]]] = {}
    cols = [m[c].tolist() for c in ("ka", "kb", "a", "b", "r")]
    for ka_, kb_, a_, b_, r_ in zip(*cols, strict=True):
        d = match.get((ka_, kb_))
        if d is None:
            d = match[(ka_, kb_)] = {}
        d[a_] = (b_, r_)

    total_chars = np.empty(len(korder), dtype=np.int64)
    total_chars[rank] = key_chars
    found = []
    for (ka, kb), pairs_ab in sorted(match.items()):
        if ka > kb:
            continue  # each unordered pair once, from its first article's side
        n_chars_a = sum(int(nlen[i]) for i in pairs_ab)
        if len(pairs_ab) < MIN_SHARED_SENTENCES or n_chars_a < MIN_SHARED_CHARS:
            continue
        back = match.get((kb, ka), {})
        share_a = n_chars_a / max(int(total_chars[ka]), 1)
        share_b = sum(int(nlen[i]) for i in back) / max(int(total_chars[kb]), 1)
        for run in _passages(sorted(pairs_ab)):
            found.append((run, pairs_ab[run[0]][0], share_a, share_b,
                          round(_mean([pairs_ab[i][1] for i in run]) / 100, 4)))
    if not found:
        return _empty()
    # the sentences of the rows that made it, fetched per file (global row → file, local row)
    need = sorted({i for run, b0, *_ in found for i in run} | {b0 for _, b0, *_ in found})
    need_a = np.asarray(need, dtype=np.int64)
    g_art = korder[np.searchsorted(gstart[korder], need_a, side="right") - 1]  # key index
    fil = file_of_key[g_art]
    kstart_file = np.concatenate(([0], np.cumsum(n_keys)[:-1]))
    local = np.empty(len(need_a), dtype=np.int64)
    info: dict[int, tuple] = {}
    # rows fetched in earlier runs, per file under the digest of its rows (a pure function of it)
    known_all: dict[str, dict[int, tuple]] = (memo.get(ROWS_MEMO) if memo is not None else None) or {}
    kept: dict[str, dict[int, tuple]] = {}
    fetched = False
    by_file = np.argsort(fil, kind="stable")
    bounds = np.flatnonzero(np.concatenate(([True], fil[by_file][1:] != fil[by_file][:-1], [True])))
    for lo_, hi_ in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        sel = by_file[lo_:hi_]
        f = int(fil[sel[0]])
        kr = parts[f]["key_rows"].astype(np.int64)
        lstart = np.concatenate(([0], np.cumsum(kr)[:-1]))
        local[sel] = lstart[g_art[sel] - kstart_file[f]] + need_a[sel] - gstart[g_art[sel]]
        rows = local[sel].tolist()
        digest = parts[f].get("digest")
        known = known_all.get(digest, {}) if digest else {}
        miss = [r for r in rows if r not in known]
        if miss:
            known = {**known, **dict(zip(miss, fetch(f, np.asarray(miss, dtype=np.int64)),
                                         strict=True))}
            fetched = True
        for g, r in zip(need_a[sel].tolist(), rows, strict=True):
            info[g] = known[r]
        if digest:
            kept[digest] = {r: known[r] for r in rows}
    if memo is not None and (fetched or kept.keys() != known_all.keys()):
        memo[ROWS_MEMO] = kept  # this run's rows only: the entry never outgrows one season
    out = []
    for run, b0, share_a, share_b, sim in found:
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
    df = pd.DataFrame(out, columns=COLUMNS)
    return df.astype({"page_a": "Int64", "page_b": "Int64"}).sort_values(
        ["share_a", "doc_id_a", "article_id_a", "doc_id_b", "article_id_b", "text"],
        ascending=[False, True, True, True, True, True], kind="stable").reset_index(drop=True)


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
        pos = np.minimum(np.searchsorted(hit["mixed"], mixed), len(hit["mixed"]) - 1)
        ok = (hit["mixed"][pos] == mixed) & (hit["lo"][pos] == lo) & (hit["hi"][pos] == hi)
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


def _spread(j: np.ndarray, c: np.ndarray, occ_text: np.ndarray, occ_key: np.ndarray,
            n_text: int, n_keys: int) -> np.ndarray:
    """Per text j: the number of distinct articles in which j or a partner c (edges j → c) occurs."""
    tk = _distinct(occ_text.astype(np.int64) * n_keys + occ_key)  # (text, article) pairs
    t_of, k_of = tk // n_keys, tk % n_keys
    start = np.searchsorted(t_of, np.arange(n_text))
    cnt = np.bincount(t_of, minlength=n_text)
    rep = cnt[c]
    offs = np.cumsum(rep) - rep
    idx = np.arange(int(rep.sum())) - np.repeat(offs, rep) + np.repeat(start[c], rep)
    jk = _distinct(np.repeat(j.astype(np.int64), rep) * n_keys + k_of[idx])
    return np.bincount(jk // n_keys, minlength=n_text)


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
