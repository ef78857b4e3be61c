"""Shared helpers for the cross-unit analyses: content words, clauses, unit names, TF-IDF."""

from __future__ import annotations

import re
from functools import cache, lru_cache

import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..dictionaries import read_lines
from ..segment import cut

UNKNOWN_UNIT = "(未识别)"  # same placeholder the role matrix uses

# a "word" must hold at least one CJK character or Latin letter: drops punctuation and bare numbers
_WORDISH = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_NUMERIC = re.compile(r"^[\d.,%％]+$")
_CLAUSE_SPLIT = re.compile(r"[，,；;：:。！？!?]")
_SENTENCE_SPLIT = re.compile(r"[；;。！？!?]")
_STRIP = " \t\u3000、，,；;：:。.！!？?“”\"'‘’（）()《》"


@cache
def stopwords() -> frozenset[str]:
    return frozenset(read_lines("stopwords.txt"))


def content_words(text: str) -> list[str]:
    """jieba words (domain dictionary) without stop words, punctuation and bare numbers."""
    return list(_content_words(text))


@lru_cache(maxsize=200_000)  # the same sentence is cut for keywords, problems and names
def _content_words(text: str) -> tuple[str, ...]:
    stop = stopwords()
    return tuple(w for w in cut(text) if w not in stop and _WORDISH.search(w) and not _NUMERIC.match(w))


def clauses(text: str, strong_only: bool = False) -> list[str]:
    """Clauses of a sentence (split on Chinese/ASCII punctuation); ``strong_only``: only ；。！？."""
    parts = (_SENTENCE_SPLIT if strong_only else _CLAUSE_SPLIT).split(text)
    return [p.strip(_STRIP) for p in parts if p.strip(_STRIP)]


def unit_names(sentences: pd.DataFrame, articles: pd.DataFrame | None = None) -> pd.Series:
    """The unit each sentence belongs to, with the unrecognised ones under one placeholder."""
    unit = sentences["unit"].fillna("").astype(str)
    return unit.where(unit != "", UNKNOWN_UNIT)


def group_keys(sentences: pd.DataFrame) -> pd.Series:
    """Who reported a sentence, for "recurs across units": the unit, else the article, else the doc."""
    unit = sentences["unit"].fillna("").astype(str)
    art = sentences.get("article_id", pd.Series("", index=sentences.index)).fillna("").astype(str)
    doc = sentences["doc_id"].fillna("").astype(str)
    fallback = ("article:" + art).where(art != "", "doc:" + doc)
    return ("unit:" + unit).where(unit != "", fallback)


def tfidf_matrix(texts: list[str], word_lists: list[list[str]] | None = None,
                 char_weight: float = 1.0) -> sp.csr_matrix:
    """L2-normalised TF-IDF over content words and character 2–3-grams, side by side.

    Words carry meaning ("学习" ~ "学习"); character n-grams catch the same idea worded a little
    differently ("不够深入" ~ "不深入") that jieba cuts into different words.
    """
    if word_lists is None:
        word_lists = [content_words(t) for t in texts]
    wv = TfidfVectorizer(analyzer=lambda ws: ws, sublinear_tf=True, min_df=1)
    cv = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True, min_df=1)
    cleaned = ["".join(ws) for ws in word_lists]  # char n-grams over content words only
    try:
        w = wv.fit_transform(word_lists)
    except ValueError:  # every text empty after stop words
        w = sp.csr_matrix((len(texts), 0))
    try:
        c = cv.fit_transform(cleaned) * char_weight
    except ValueError:
        c = sp.csr_matrix((len(texts), 0))
    m = sp.hstack([w, c]).tocsr()
    norms = sp.linalg.norm(m, axis=1)
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ m
