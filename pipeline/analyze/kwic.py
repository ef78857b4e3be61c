"""KWIC: keyword in context, like KH Coder's concordance — left context, keyword, right context,
aligned, with the unit and page each line comes from."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

import pandas as pd

from .matrix import content_sentences
from .text import unit_names

COLUMNS = ["unit", "doc_id", "page", "left", "keyword", "right", "label", "text"]


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad_left(s: str, w: int) -> str:
    return " " * max(0, w - _width(s)) + s


def _pad_right(s: str, w: int) -> str:
    return s + " " * max(0, w - _width(s))


def kwic(sentences: pd.DataFrame, word: str, width: int = 20, limit: int = 0) -> pd.DataFrame:
    """Every occurrence of ``word`` in the report text, with ``width`` characters each side."""
    s = content_sentences(sentences)
    s = s[s["text"].str.contains(word, regex=False, na=False)]
    s = s.assign(unit=unit_names(s))
    rows = []
    for r in s.itertuples(index=False):
        start = 0
        while (i := r.text.find(word, start)) >= 0:
            rows.append({"unit": r.unit, "doc_id": r.doc_id, "page": r.page,
                         "left": r.text[max(0, i - width):i], "keyword": word,
                         "right": r.text[i + len(word):i + len(word) + width],
                         "label": r.label, "text": r.text})
            start = i + len(word)
            if limit and len(rows) >= limit:
                return pd.DataFrame(rows, columns=COLUMNS)
    return pd.DataFrame(rows, columns=COLUMNS)


def format_kwic(lines: pd.DataFrame, width: int = 20) -> str:
    """Aligned concordance lines: unit · page · left | keyword | right."""
    if lines.empty:
        return ""
    unit_w = max(_width(u) for u in lines["unit"])
    out = []
    for r in lines.itertuples(index=False):
        page = "" if pd.isna(r.page) else f"p.{int(r.page)}"
        out.append(f"{_pad_right(r.unit, unit_w)}  {page:>6}  {_pad_left(r.left, 2 * width)} "
                   f"【{r.keyword}】 {r.right}")
    return "\n".join(out)


def kwic_command(args: argparse.Namespace) -> int:
    """``huibian kwic WORD [DIR] [--width N] [--limit N]``."""
    d = Path(args.dir)
    path = d / "sentences.parquet"
    if not path.exists():
        print(f"huibian: no sentences.parquet in {d} (run `huibian run` first)", file=sys.stderr)
        return 2
    if not args.word.strip():
        print("huibian: kwic needs a non-empty word", file=sys.stderr)
        return 2
    width = max(1, int(args.width))
    lines = kwic(pd.read_parquet(path), args.word.strip(), width, max(0, int(args.limit)))
    if lines.empty:
        print(f"{args.word}: not found", file=sys.stderr)
        return 0
    print(format_kwic(lines, width), flush=True)
    print(f"— {len(lines)} lines, {lines['unit'].nunique()} units", file=sys.stderr)
    return 0
