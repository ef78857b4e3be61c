"""Recurring problems: gap (and, separately, cause and measure) statements grouped across units.

Method (chosen by measurement against ``tests/data/problem_groups.jsonl``, see the README section):
a gap sentence that lists several problems is split into its clauses and only clauses that state a
problem are kept; each item becomes a TF-IDF vector over content words plus character 2–3-grams;
agglomerative clustering (average linkage, cosine distance) cut at a distance threshold, so the
number of groups comes from the data. Large seasons are first split into blocks of similar items
(k-means on a low-rank projection) and clustered block by block, which keeps memory and time
roughly linear. A group is *recurring* when its members come from at least two units (or articles,
when units are unknown); only recurring groups are written.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
from sklearn.random_projection import SparseRandomProjection

from ..dictionaries import read_lines, read_table
from .matrix import content_sentences
from .text import clauses, content_words, group_keys, tfidf_matrix, unit_names

PROBLEM_LABELS = ("gap", "cause", "measure")
#: cosine distance at which groups stop merging; chosen on the hand grouping (tests/data)
DISTANCE_THRESHOLD = 0.85
#: weight of the character n-gram half of the vectors against the word half (measured, see README)
CHAR_WEIGHT = 0.5
#: largest set clustered in one piece (an n × n distance matrix); bigger sets are blocked first
BLOCK_SIZE = 1500
MIN_ITEM_CHARS = 4

COLUMNS = ["cluster_id", "cluster_name", "label", "unit", "doc_id", "article_id", "text", "sentence",
           "page", "idx", "n_units", "n_members"]


@cache
def _problem_cue() -> re.Pattern[str]:
    pats = list(read_lines("cues/gap.txt")) + list(read_lines("problem_cues.txt"))
    return re.compile("|".join(f"(?:{p})" for p in pats))


@cache
def _intro() -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in read_lines("problem_intro.txt")))


@cache
def _generic() -> frozenset[str]:
    return frozenset(read_lines("problem_generic.txt"))


@cache
def _synonyms() -> dict[str, tuple[str, ...]]:
    return {row[0]: row[1:] for row in read_table("problem_synonyms.txt") if len(row) > 1}


def topic_words(text: str) -> list[str]:
    """Content words that say which problem it is: generic problem words left out, synonyms added."""
    generic, syn = _generic(), _synonyms()
    out: list[str] = []
    for w in content_words(text):
        if w not in generic:
            out.append(w)
            out.extend(syn.get(w, ()))
    return out


def split_items(text: str, label: str) -> list[str]:
    """The problem statements inside one sentence.

    A gap/cause sentence such as "主要是：内需动能不足，消费场景供需适配性不强，…" holds several
    problems: keep each clause that states one (a cue word), dropping announcing clauses
    ("我们也清醒认识到"). Measures are kept per sentence part (split on ；only) — they are long
    task lists whose clauses mean little alone.
    """
    if label == "measure":
        parts = clauses(text, strong_only=True)
        return [p for p in parts if len(p) >= MIN_ITEM_CHARS]
    cue, intro = _problem_cue(), _intro()
    parts = [p for p in clauses(text) if len(p) >= MIN_ITEM_CHARS and not intro.search(p)]
    stating = [p for p in parts if cue.search(p)]
    if len(stating) >= 2:
        return stating
    whole = text.strip()
    return [whole] if len(whole) >= MIN_ITEM_CHARS and parts else []


def problem_items(sentences: pd.DataFrame, labels: tuple[str, ...] = PROBLEM_LABELS) -> pd.DataFrame:
    """One row per problem statement (a clause or a sentence) of the given labels."""
    s = content_sentences(sentences)
    s = s[s["label"].isin(labels)]
    if s.empty:
        return pd.DataFrame(columns=["label", "unit", "key", "doc_id", "article_id", "text", "sentence",
                                     "page", "idx"])
    s = s.assign(unit=unit_names(s), key=group_keys(s))
    rows = []
    for r in s.itertuples(index=False):
        for item in split_items(r.text, r.label):
            rows.append({"label": r.label, "unit": r.unit, "key": r.key, "doc_id": r.doc_id,
                         "article_id": getattr(r, "article_id", ""), "text": item, "sentence": r.text,
                         "page": r.page, "idx": r.idx})
    out = pd.DataFrame(rows)
    if "page" in out:
        out["page"] = out["page"].astype("Int64")
    return out


def _cluster_block(x: sp.csr_matrix, threshold: float) -> np.ndarray:
    n = x.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    sim = (x @ x.T).toarray()
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold,
                                    metric="precomputed", linkage="average")
    return model.fit_predict(dist)


def cluster_texts(texts: list[str], threshold: float = DISTANCE_THRESHOLD,
                  block_size: int = BLOCK_SIZE, word_lists: list[list[str]] | None = None) -> np.ndarray:
    """A group number per text; similar texts share a number. Identical texts are clustered once."""
    if not texts:
        return np.zeros(0, dtype=int)
    uniq, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    uniq_words = None
    if word_lists is not None:
        first = {}
        for i, t in enumerate(texts):
            first.setdefault(t, i)
        uniq_words = [word_lists[first[t]] for t in uniq]
    if uniq_words is None:
        uniq_words = [topic_words(t) for t in uniq]
    x = tfidf_matrix(list(uniq), uniq_words, char_weight=CHAR_WEIGHT)
    n = x.shape[0]
    labels = np.zeros(n, dtype=int)
    if n <= block_size:
        blocks = [np.arange(n)]
    else:
        blocks = _blocks(x, block_size)
    next_id = 0
    for idx in blocks:
        sub = _cluster_block(x[idx], threshold)
        labels[idx] = sub + next_id
        next_id += int(sub.max()) + 1
    return labels[inverse]


def _blocks(x: sp.csr_matrix, block_size: int) -> list[np.ndarray]:
    """Split a large set into blocks of similar items: mini-batch k-means on a 128-dimensional
    sparse random projection of the vectors (cheap, and it keeps cosine neighbourhoods)."""
    n = x.shape[0]
    k = int(np.ceil(2 * n / block_size))  # aim at half-full blocks: k-means sizes are uneven
    z = SparseRandomProjection(n_components=128, random_state=0).fit_transform(x)
    z = np.asarray(z.todense() if sp.issparse(z) else z)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    assign = MiniBatchKMeans(n_clusters=k, random_state=0, n_init=1, batch_size=2048,
                             max_iter=50).fit_predict(z)
    out: list[np.ndarray] = []
    for c in range(k):
        idx = np.flatnonzero(assign == c)
        # an oversized block is cut in pieces rather than blowing up the n × n matrix
        out += [idx[i:i + block_size] for i in range(0, len(idx), block_size)]
    return [b for b in out if len(b)]


def cluster_name(texts: list[str], n_terms: int = 3) -> str:
    """Key terms of a group: the content words most members share (ties: longer, then first seen)."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(topic_words(t)) or set(content_words(t)))
    ranked = sorted(df.items(), key=lambda kv: (-kv[1], -len(kv[0])))
    return "、".join(w for w, _ in ranked[:n_terms]) or texts[0][:12]


def recurring_problems(sentences: pd.DataFrame, threshold: float = DISTANCE_THRESHOLD,
                       min_units: int = 2, labels: tuple[str, ...] = PROBLEM_LABELS) -> pd.DataFrame:
    """problems.parquet: members of groups spanning at least ``min_units`` units, per label."""
    items = problem_items(sentences, labels)
    frames = []
    for label in labels:
        it = items[items["label"] == label] if len(items) else items
        if it.empty:
            continue
        it = it.assign(group=cluster_texts(it["text"].tolist(), threshold))
        n_units = it.groupby("group")["key"].transform("nunique")
        it = it.assign(n_units=n_units, n_members=it.groupby("group")["text"].transform("size"))
        it = it[it["n_units"] >= min_units]
        if it.empty:
            continue
        # biggest groups first, numbered per label
        order = (it.groupby("group").agg(u=("n_units", "first"), m=("n_members", "first"))
                 .sort_values(["u", "m"], ascending=False).index)
        ids = {g: f"{label}-{i + 1:03d}" for i, g in enumerate(order)}
        names = {g: cluster_name(grp["text"].tolist()) for g, grp in it.groupby("group")}
        it = it.assign(cluster_id=it["group"].map(ids), cluster_name=it["group"].map(names))
        frames.append(it)
    if not frames:
        return pd.DataFrame(columns=COLUMNS).astype({"page": "Int64", "n_units": int, "n_members": int})
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["label", "cluster_id", "unit", "idx"])[COLUMNS].reset_index(drop=True)


def pairwise_scores(pred: list[int] | np.ndarray, gold: list[int] | np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping against a hand grouping (same items, same order)."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    same_p = pred[:, None] == pred[None, :]
    same_g = gold[:, None] == gold[None, :]
    iu = np.triu_indices(len(pred), k=1)
    p, g = same_p[iu], same_g[iu]
    tp = int((p & g).sum())
    precision = tp / int(p.sum()) if p.sum() else 1.0
    recall = tp / int(g.sum()) if g.sum() else 1.0
    return precision, recall
