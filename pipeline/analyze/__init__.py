"""Analyze: cross-unit tables over a season's tagged sentences.

``analyze(frames)`` returns every season table run.py writes as ``<name>.parquet``: the role
matrix, distinctive words per unit, recurring problems, shared passages (copies) and figures.
"""

from __future__ import annotations

import pandas as pd

from .copies import find_copies
from .figures import figures_table
from .keywords import distinctive_words
from .matrix import content_sentences, role_matrix
from .problems import recurring_problems

__all__ = ["analyze", "role_matrix", "content_sentences", "distinctive_words", "recurring_problems",
           "find_copies", "figures_table"]


def analyze(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Season tables from the per-document tables (stage 6)."""
    sentences = frames["sentences"]
    return {
        "matrix": role_matrix(sentences),
        "keywords": distinctive_words(sentences),
        "problems": recurring_problems(sentences),
        "copies": find_copies(sentences),
        "figures": figures_table(sentences),
    }
