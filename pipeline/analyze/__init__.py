"""Analyze: cross-unit tables over a season's tagged sentences."""

from __future__ import annotations

import pandas as pd

from .matrix import content_sentences, role_matrix

__all__ = ["analyze", "role_matrix", "content_sentences"]


def analyze(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Season tables from the per-document tables (stage 6)."""
    sentences = frames["sentences"]
    return {"matrix": role_matrix(sentences)}
