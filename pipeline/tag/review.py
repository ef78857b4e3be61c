"""``huibian review DIR``: the least confident sentences of a run as an XLSX for editors.

Editors fill in ``correct_label`` (strength / gap / cause / measure / other); ``huibian run
--corrections FILE`` applies the sheet on every rerun and ``huibian train --corrections FILE``
learns from it. The ``key`` column ties a row to its sentence across re-ingestion.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..model import LABELS
from .corrections import sentence_key

COLUMNS = ["key", "source", "unit", "section", "idx", "text", "label", "confidence", "evidence",
           "correct_label"]


def review_frame(sentences: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` least confident content sentences (structural lines are left out)."""
    df = sentences
    if "kind" in df:
        df = df[~df["kind"].isin(["furniture", "toc", "table"])]
    df = df.sort_values(["confidence", "source", "idx"], kind="stable").head(max(0, n)).copy()
    src = df["source"] if "source" in df else pd.Series([""] * len(df), index=df.index)
    df["key"] = [sentence_key(t, s) for t, s in zip(df["text"], src, strict=True)]
    df["correct_label"] = ""
    for c in COLUMNS:
        if c not in df:
            df[c] = ""
    return df[COLUMNS].sort_values(["source", "idx"], kind="stable")


def write_review(df: pd.DataFrame, out: Path) -> None:
    from openpyxl.worksheet.datavalidation import DataValidation

    with pd.ExcelWriter(out, engine="openpyxl") as xw:
        df.to_excel(xw, index=False, sheet_name="review")
        ws = xw.sheets["review"]
        # a drop-down on correct_label keeps editors to the five labels
        col = chr(ord("A") + COLUMNS.index("correct_label"))
        dv = DataValidation(type="list", formula1='"' + ",".join(LABELS) + '"', allow_blank=True)
        ws.add_data_validation(dv)
        if len(df):
            dv.add(f"{col}2:{col}{len(df) + 1}")
        ws.column_dimensions[chr(ord("A") + COLUMNS.index("text"))].width = 80


def review_command(a: argparse.Namespace) -> int:
    run_dir = Path(a.dir)
    if not (run_dir / "sentences.parquet").exists():
        print(f"huibian: no sentences.parquet in {run_dir} (run `huibian run` first)", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else run_dir / "review.xlsx"
    df = review_frame(pd.read_parquet(run_dir / "sentences.parquet"), a.n)
    try:
        write_review(df, out)
    except OSError as e:
        print(f"huibian: cannot write {out}: {e}", file=sys.stderr)
        return 2
    print(f"{len(df)} sentences to review → {out} (fill in correct_label)")
    return 0
