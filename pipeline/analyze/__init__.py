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
from .problems import problem_items, recurring_problems
from .text import sentence_tokens, word_codes

__all__ = ["analyze", "role_matrix", "content_sentences", "distinctive_words", "recurring_problems",
           "find_copies", "figures_table"]


def analyze(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Season tables from the per-document tables (stage 6).

    Words are taken once from the segment stage's ``tokens`` (no second jieba pass) and shared:
    the keyword table and the problem items use the same content words.
    """
    sentences = frames["sentences"]
    content = content_sentences(sentences)
    return {
        "matrix": role_matrix(content),
        "keywords": distinctive_words(content, words=word_codes(sentence_tokens(content))),
        "problems": recurring_problems(content, items=problem_items(content)),
        "copies": find_copies(content),
        "figures": figures_table(content),
    }
