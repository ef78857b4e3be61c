"""Unit × theme × role counts and shares."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa

CONTENT_KINDS = ("body", "heading")
_KEYS = ["unit", "theme", "label"]


def content_sentences(sentences: pd.DataFrame) -> pd.DataFrame:
    """Sentences that are report text (not furniture, TOC lines or table rows)."""
    keep = sentences["kind"].isin(CONTENT_KINDS).to_numpy()
    return sentences if keep.all() else sentences[keep]  # already content only: no copy


def matrix_part(sentences: pd.DataFrame) -> pd.DataFrame:
    """One file's (unit, theme, label) sentence counts ``n``: what the season matrix sums."""
    s = content_sentences(sentences)
    s = s.assign(unit=s["unit"].replace("", "(未识别)"), theme=s["theme"].replace("", "其他"))
    return s.groupby(_KEYS, sort=True).size().rename("n").reset_index()


def combine_matrix(parts: Iterable[pd.DataFrame | pa.Table]) -> pd.DataFrame:
    """matrix.parquet from the files' counts (frames or Arrow tables): one row per unit × theme ×
    label, ``n`` and ``share`` of the unit's sentences. Counts add up, so this equals counting
    the whole season at once."""
    frames = [p for p in parts if len(p)]
    if not frames:
        return _finish(matrix_part(pd.DataFrame(columns=["unit", "theme", "label", "kind"])))
    if all(isinstance(f, pa.Table) for f in frames):  # one concatenation in Arrow, one conversion
        m = pa.concat_tables(frames, promote_options="permissive").to_pandas()
    else:
        m = pd.concat([f.to_pandas() if isinstance(f, pa.Table) else f for f in frames],
                      ignore_index=True)
    if len(frames) > 1:  # a unit may report in several files
        m = m.groupby(_KEYS, sort=True)["n"].sum().reset_index()
    return _finish(m)


def _finish(m: pd.DataFrame) -> pd.DataFrame:
    m = m.copy()
    totals = m.groupby("unit")["n"].transform("sum")
    m["share"] = (m["n"] / totals).round(6)
    return m.sort_values(_KEYS).reset_index(drop=True)


def role_matrix(sentences: pd.DataFrame) -> pd.DataFrame:
    """One row per unit × theme × label: ``n`` sentences and their ``share`` of the unit's."""
    return combine_matrix([matrix_part(sentences)])
