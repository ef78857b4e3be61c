"""Unit × theme × role counts and shares."""

from __future__ import annotations

import pandas as pd

CONTENT_KINDS = ("body", "heading")


def content_sentences(sentences: pd.DataFrame) -> pd.DataFrame:
    """Sentences that are report text (not furniture, TOC lines or table rows)."""
    return sentences[sentences["kind"].isin(CONTENT_KINDS)]


def role_matrix(sentences: pd.DataFrame) -> pd.DataFrame:
    """One row per unit × theme × label: ``n`` sentences and their ``share`` of the unit's."""
    s = content_sentences(sentences)
    s = s.assign(unit=s["unit"].replace("", "(未识别)"), theme=s["theme"].replace("", "其他"))
    m = s.groupby(["unit", "theme", "label"], sort=True).size().rename("n").reset_index()
    totals = m.groupby("unit")["n"].transform("sum")
    m["share"] = (m["n"] / totals).round(6)
    return m.sort_values(["unit", "theme", "label"]).reset_index(drop=True)
