"""Copies: passages two reports share, word for word or nearly, with each report's shared share.

Sentences of at least ``MIN_SENTENCE_CHARS`` characters get a MinHash over character 4-grams
(datasketch); an LSH index proposes near-duplicate sentences in *other* articles and rapidfuzz
confirms each pair. A pair of articles is a copy only at passage level: at least
``MIN_SHARED_SENTENCES`` matched sentences and ``MIN_SHARED_CHARS`` characters — a handful of
stock phrases ("以习近平新时代中国特色社会主义思想为指导…") shared by every government report is
not a copy. A sentence that recurs in more than ``MAX_SPREAD`` articles is boilerplate and ignored.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
from datasketch import MinHash, MinHashLSH
from rapidfuzz import fuzz

from .matrix import content_sentences
from .text import unit_names

COLUMNS = ["doc_id_a", "doc_id_b", "article_id_a", "article_id_b", "unit_a", "unit_b", "text",
           "n_chars", "share_a", "share_b", "page_a", "page_b", "similarity"]

MIN_SENTENCE_CHARS = 15
SHINGLE = 4
NUM_PERM = 64
LSH_THRESHOLD = 0.5
MIN_RATIO = 80.0  # rapidfuzz ratio (0–100) that confirms a near-duplicate sentence
MIN_SHARED_SENTENCES = 3
MIN_SHARED_CHARS = 150
MAX_SPREAD = 4  # a sentence found in more articles than this is boilerplate
MAX_GAP = 2  # matched sentences at most this far apart form one passage

_NOISE = re.compile(r"[\s\u3000，,。.；;：:、！!？?“”\"'‘’（）()《》\-—…*]+")


def _norm(text: str) -> str:
    return _NOISE.sub("", text)


def _shingles(t: str) -> list[bytes]:
    return [t[i:i + SHINGLE].encode("utf-8") for i in range(max(1, len(t) - SHINGLE + 1))]


def _article_key(s: pd.DataFrame) -> pd.Series:
    art = s["article_id"].fillna("").astype(str) if "article_id" in s else pd.Series("", index=s.index)
    return art.where(art != "", "doc:" + s["doc_id"].astype(str))


def find_copies(sentences: pd.DataFrame) -> pd.DataFrame:
    """copies.parquet: one row per shared passage between two articles (or documents)."""
    s = content_sentences(sentences)
    s = s.assign(key=_article_key(s), unit=unit_names(s), norm=s["text"].astype(str).map(_norm))
    s = s.sort_values(["key", "idx"]).reset_index(drop=True)
    total_chars = s.groupby("key")["norm"].apply(lambda x: int(x.str.len().sum())).to_dict()
    long = s[s["norm"].str.len() >= MIN_SENTENCE_CHARS]
    if long["key"].nunique() < 2:
        return _empty()

    # identical sentences are hashed once; each unique text remembers where it occurs
    where: dict[str, list[int]] = defaultdict(list)
    for i, t in zip(long.index, long["norm"], strict=True):
        where[t].append(i)
    texts = list(where)
    hashes = MinHash.bulk([_shingles(t) for t in texts], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for j, h in enumerate(hashes):
            session.insert(j, h, check_duplication=False)

    keys = s["key"].to_numpy()
    match: dict[tuple[str, str], dict[int, tuple[int, float]]] = defaultdict(dict)
    for j, (t, h) in enumerate(zip(texts, hashes, strict=True)):
        cands = [c for c in lsh.query(h)]
        confirmed = [(c, 100.0 if c == j else fuzz.ratio(t, texts[c])) for c in cands]
        confirmed = [(c, r) for c, r in confirmed if r >= MIN_RATIO]
        rows = [(i, r) for c, r in confirmed for i in where[texts[c]]]
        spread = {keys[i] for i, _ in rows}
        if len(spread) < 2 or len(spread) > MAX_SPREAD:
            continue  # no other article, or boilerplate everyone says
        for a in where[t]:
            for b, r in rows:
                if keys[a] != keys[b]:
                    prev = match[(keys[a], keys[b])].get(a)
                    if prev is None or r > prev[1]:
                        match[(keys[a], keys[b])][a] = (b, r)

    out = []
    for (ka, kb), pairs in match.items():
        if ka > kb:
            continue  # each unordered pair once, from its first article's side
        n_chars_a = sum(len(s.at[i, "norm"]) for i in pairs)
        if len(pairs) < MIN_SHARED_SENTENCES or n_chars_a < MIN_SHARED_CHARS:
            continue
        back = match.get((kb, ka), {})
        share_a = n_chars_a / max(total_chars.get(ka, 1), 1)
        share_b = sum(len(s.at[i, "norm"]) for i in back) / max(total_chars.get(kb, 1), 1)
        for run in _passages(sorted(pairs)):
            first, bs = s.loc[run[0]], [pairs[i][0] for i in run]
            out.append({
                "doc_id_a": first["doc_id"], "doc_id_b": s.at[bs[0], "doc_id"],
                "article_id_a": _aid(first), "article_id_b": _aid(s.loc[bs[0]]),
                "unit_a": first["unit"], "unit_b": s.at[bs[0], "unit"],
                "text": "".join(s.loc[i, "text"] for i in run),
                "n_chars": int(sum(len(s.at[i, "norm"]) for i in run)),
                "share_a": round(min(share_a, 1.0), 4), "share_b": round(min(share_b, 1.0), 4),
                "page_a": first["page"], "page_b": s.at[bs[0], "page"],
                "similarity": round(float(np.mean([pairs[i][1] for i in run])) / 100, 4),
            })
    if not out:
        return _empty()
    df = pd.DataFrame(out, columns=COLUMNS)
    return df.astype({"page_a": "Int64", "page_b": "Int64"}).sort_values(
        ["share_a", "doc_id_a", "article_id_a"], ascending=[False, True, True]).reset_index(drop=True)


def _aid(row: pd.Series) -> str:
    return str(row.get("article_id", "") or "")


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
