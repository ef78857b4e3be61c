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
from collections.abc import Iterable, Sequence
from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
from sklearn.random_projection import SparseRandomProjection
from threadpoolctl import threadpool_limits

from ..dictionaries import read_lines, read_table
from .matrix import content_sentences
from .text import clause_words, content_words, group_keys, tfidf_matrix, token_lists, unit_names

PROBLEM_LABELS = ("gap", "cause", "measure")
#: cosine distance at which groups stop merging; chosen on the hand grouping (tests/data)
DISTANCE_THRESHOLD = 0.85
#: weight of the character n-gram half of the vectors against the word half (measured, see README)
CHAR_WEIGHT = 0.5
#: largest set clustered in one piece (an n × n distance matrix); bigger sets are blocked first
BLOCK_SIZE = 1500
MIN_ITEM_CHARS = 4
#: items k-means learns the block centres from (blocks are coarse; assigning is cheap)
KMEANS_SAMPLE = 20_000

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
    return topic_from_words(content_words(text))


def topic_from_words(words: Iterable[str]) -> list[str]:
    """``topic_words`` from a text's content words (already cut)."""
    generic, syn = _generic(), _synonyms()
    out: list[str] = []
    for w in words:
        if w not in generic:
            out.append(w)
            out.extend(syn.get(w, ()))
    return out


def _split(text: str, tokens: Sequence[str] | None, label: str) -> list[tuple[str, list[str]]]:
    """(statement, its content words) for every problem statement inside one sentence."""
    if label == "measure":
        parts = clause_words(text, tokens, strong_only=True)
        return [(p, ws) for p, ws in parts if len(p) >= MIN_ITEM_CHARS]
    cue, intro = _problem_cue(), _intro()
    every = clause_words(text, tokens)
    parts = [(p, ws) for p, ws in every if len(p) >= MIN_ITEM_CHARS and not intro.search(p)]
    stating = [(p, ws) for p, ws in parts if cue.search(p)]
    if len(stating) >= 2:
        return stating
    whole = text.strip()
    if len(whole) < MIN_ITEM_CHARS or not parts:
        return []
    return [(whole, [w for _, ws in every for w in ws])]  # the sentence's content words


def split_items(text: str, label: str) -> list[str]:
    """The problem statements inside one sentence.

    A gap/cause sentence such as "主要是：内需动能不足，消费场景供需适配性不强，…" holds several
    problems: keep each clause that states one (a cue word), dropping announcing clauses
    ("我们也清醒认识到"). Measures are kept per sentence part (split on ；only) — they are long
    task lists whose clauses mean little alone.
    """
    return [p for p, _ in _split(text, None, label)]


ITEM_COLUMNS = ["label", "unit", "key", "doc_id", "article_id", "text", "sentence", "page", "idx",
                "words"]


def problem_items(sentences: pd.DataFrame, labels: tuple[str, ...] = PROBLEM_LABELS) -> pd.DataFrame:
    """One row per problem statement (a clause or a sentence) of the given labels, with its
    content words (``words``) taken from the segment stage's tokens."""
    s = content_sentences(sentences)
    s = s[s["label"].isin(labels)]
    if s.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    s = s.assign(unit=unit_names(s), key=group_keys(s))
    if "article_id" not in s:
        s = s.assign(article_id="")
    toks = token_lists(s["tokens"]) if "tokens" in s else [None] * len(s)
    cols = {c: s[c].tolist() for c in ("label", "unit", "key", "doc_id", "article_id", "text", "page",
                                       "idx")}  # plain lists: itertuples over Arrow columns is slow
    rows = []
    for k, (text, label, tk) in enumerate(zip(cols["text"], cols["label"], toks, strict=True)):
        for item, words in _split(text, tk, label):
            rows.append((label, cols["unit"][k], cols["key"][k], cols["doc_id"][k],
                         cols["article_id"][k], item, text, cols["page"][k], cols["idx"][k], words))
    out = pd.DataFrame.from_records(rows, columns=ITEM_COLUMNS)
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
    """A group number per text; similar texts share a number. Identical texts are clustered once.

    ``word_lists``: the content words of each text when already known (else the texts are cut).
    """
    if not texts:
        return np.zeros(0, dtype=int)
    # np.unique sorts: the numbering never depends on input order of duplicates or on hashing
    uniq, first, inverse = np.unique(np.asarray(texts, dtype=object), return_index=True,
                                     return_inverse=True)
    if word_lists is None:
        uniq_words = [topic_words(t) for t in uniq]
    else:
        uniq_words = [topic_from_words(word_lists[i]) for i in first]
    x = tfidf_matrix(list(uniq), uniq_words, char_weight=CHAR_WEIGHT)
    n = x.shape[0]
    labels = np.zeros(n, dtype=int)
    blocks = [np.arange(n)] if n <= block_size else _blocks(x, block_size)
    next_id = 0
    for idx in blocks:
        sub = _cluster_block(x[idx], threshold)
        labels[idx] = sub + next_id
        next_id += int(sub.max()) + 1
    return labels[np.ravel(inverse)]


def _blocks(x: sp.csr_matrix, block_size: int) -> list[np.ndarray]:
    """Split a large set into blocks of similar items: mini-batch k-means on a 128-dimensional
    sparse random projection of the vectors (cheap, and it keeps cosine neighbourhoods)."""
    n = x.shape[0]
    k = int(np.ceil(2 * n / block_size))  # aim at half-full blocks: k-means sizes are uneven
    z = SparseRandomProjection(n_components=128, random_state=0).fit_transform(x)
    z = np.asarray(z.todense() if sp.issparse(z) else z)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    # centres are learnt on a fixed sample (the blocks only need to be coarse), then every item
    # is assigned: the cost stays linear in n with a small constant
    sample = np.random.default_rng(0).choice(n, size=min(n, KMEANS_SAMPLE), replace=False)
    km = MiniBatchKMeans(n_clusters=k, random_state=0, n_init=1, batch_size=2048, max_iter=20)
    with threadpool_limits(1):  # tiny steps: threads only contend on a shared machine
        assign = km.fit(z[np.sort(sample)]).predict(z)
    out: list[np.ndarray] = []
    for c in range(k):
        idx = np.flatnonzero(assign == c)
        # an oversized block is cut in pieces rather than blowing up the n × n matrix
        out += [idx[i:i + block_size] for i in range(0, len(idx), block_size)]
    return [b for b in out if len(b)]


def cluster_name(texts: list[str], n_terms: int = 3,
                 word_lists: list[list[str]] | None = None) -> str:
    """Key terms of a group: the content words most members share.

    Ties: the longer word, then the word itself (code-point order) — never the order of a set,
    which changes with PYTHONHASHSEED.
    """
    df: Counter[str] = Counter()
    for i, t in enumerate(texts):
        words = content_words(t) if word_lists is None else list(word_lists[i])
        df.update(set(topic_from_words(words)) or set(words))
    ranked = sorted(df.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    return "、".join(w for w, _ in ranked[:n_terms]) or (texts[0][:12] if texts else "")


def _cluster_names(groups: np.ndarray, texts: list[str], word_lists: list[list[str]],
                   n_terms: int = 3) -> dict[int, str]:
    """``cluster_name`` of every group at once: (group, word) counts as integer arrays, one sort
    (count, then length, then the word itself), the first ``n_terms`` of each group."""
    code: dict[str, int] = {}
    seen: dict[str, list[int]] = {}  # members often repeat a text: its name words once
    per_item: list[list[int]] = []
    for t, ws in zip(texts, word_lists, strict=True):
        terms = seen.get(t)
        if terms is None:
            words = sorted(set(topic_from_words(ws)) or set(ws))
            terms = seen[t] = [code.setdefault(w, len(code)) for w in words]
        per_item.append(terms)
    names: dict[int, str] = {}
    if code:
        vocab = np.array(list(code), dtype=object)
        g = np.repeat(groups, [len(x) for x in per_item])
        w = np.fromiter((c for x in per_item for c in x), dtype=np.int64, count=len(g))
        gw, n = np.unique(g.astype(np.int64) * len(vocab) + w, return_counts=True)
        gg, ww = gw // len(vocab), gw % len(vocab)
        word_rank = np.argsort(np.argsort(vocab.astype(str), kind="stable"), kind="stable")
        lengths = np.fromiter(map(len, vocab), dtype=np.int64, count=len(vocab))
        order = np.lexsort((word_rank[ww], -lengths[ww], -n, gg))
        gg, ww = gg[order], ww[order]
        rank = np.arange(len(gg)) - np.searchsorted(gg, gg, side="left")
        top = rank < n_terms
        for grp, word in zip(gg[top].tolist(), vocab[ww[top]].tolist(), strict=True):
            names[grp] = f"{names[grp]}、{word}" if grp in names else word
    for grp, t in zip(groups.tolist(), texts, strict=True):  # a group without words: its first text
        names.setdefault(grp, t[:12])
    return names


def recurring_problems(sentences: pd.DataFrame, threshold: float = DISTANCE_THRESHOLD,
                       min_units: int = 2, labels: tuple[str, ...] = PROBLEM_LABELS,
                       items: pd.DataFrame | None = None) -> pd.DataFrame:
    """problems.parquet: members of groups spanning at least ``min_units`` units, per label.

    ``items``: ``problem_items(sentences, labels)`` when already built.
    """
    if items is None:
        items = problem_items(sentences, labels)
    frames = []
    for label in labels:
        it = items[items["label"] == label] if len(items) else items
        if it.empty:
            continue
        it = it.assign(group=cluster_texts(it["text"].tolist(), threshold,
                                           word_lists=it["words"].tolist()))
        n_units = it.groupby("group")["key"].transform("nunique")
        it = it.assign(n_units=n_units, n_members=it.groupby("group")["text"].transform("size"))
        it = it[it["n_units"] >= min_units]
        if it.empty:
            continue
        # biggest groups first, numbered per label; equal sizes by their first member's text
        order = (it.groupby("group").agg(u=("n_units", "first"), m=("n_members", "first"),
                                         t=("text", "min"))
                 .sort_values(["u", "m", "t"], ascending=[False, False, True], kind="stable").index)
        ids = {g: f"{label}-{i + 1:03d}" for i, g in enumerate(order)}
        names = _cluster_names(it["group"].to_numpy(), it["text"].tolist(), it["words"].tolist())
        it = it.assign(cluster_id=it["group"].map(ids), cluster_name=it["group"].map(names))
        frames.append(it)
    if not frames:
        return pd.DataFrame(columns=COLUMNS).astype({"page": "Int64", "n_units": int, "n_members": int})
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["label", "cluster_id", "unit", "doc_id", "idx", "text"], kind="stable")
    return out[COLUMNS].reset_index(drop=True)


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
