"""Helpers for tests and benchmarks that play a season's late changes (not used by a run)."""

from __future__ import annotations

import io

import pandas as pd


def with_new_ids(doc: dict[str, pd.DataFrame], tag: str) -> dict[str, pd.DataFrame]:
    """One file's tables as a run sees them after the file was edited: every doc_id and
    article_id is new (ids hash the file's bytes), here made by appending ``tag``."""
    out = {}
    for name, df in doc.items():
        df = df.copy()
        for col in ("doc_id", "article_id"):
            if col in df:
                df[col] = df[col].where(df[col].isna() | (df[col] == ""), df[col].astype(str) + tag)
        out[name] = df
    return out


def reissued(sentences: pd.DataFrame, tag: str) -> pd.DataFrame:
    """A report's sentences reissued under another unit: the same sentences, other ids and unit."""
    sentences = sentences.copy()
    for c in ("doc_id", "article_id", "unit"):
        sentences[c] = sentences[c].astype(str) + tag
    return sentences


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """The bytes a run would write for ``df`` (``outputs.write_table``): "the same table" means
    these are equal."""
    from .outputs import write_parquet

    sink = io.BytesIO()
    write_parquet(df, sink)
    return sink.getvalue()
