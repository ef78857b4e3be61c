"""Season compare: per unit, which problems are new, which persist and which are no longer reported.

Each unit's gap statements (the clauses ``problems.split_items`` finds) in the old and the new
season are matched by meaning: cosine similarity of the same TF-IDF vectors the problem grouping
uses (topic words with synonyms, character n-grams), fitted on both seasons together, best pairs
first (one-to-one). A pair at or above ``MATCH_SIMILARITY`` is *persisting*; an unmatched new
statement is *new*; an unmatched old one is *resolved* (no longer reported).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .problems import CHAR_WEIGHT, cluster_name, problem_items, topic_from_words
from .text import tfidf_matrix

COLUMNS = ["unit", "status", "cluster_name", "text_old", "text_new", "similarity", "doc_id_old",
           "doc_id_new", "page_old", "page_new"]
#: cosine similarity at which an old and a new statement are the same problem
#: (1 − the grouping's distance threshold, so "persisting" means "would be grouped together")
MATCH_SIMILARITY = 0.15


def compare_seasons(old: pd.DataFrame, new: pd.DataFrame, labels: tuple[str, ...] = ("gap",),
                    min_similarity: float = MATCH_SIMILARITY) -> pd.DataFrame:
    """compare.parquet from two seasons' sentence tables."""
    a, b = problem_items(old, labels), problem_items(new, labels)
    a = a.drop_duplicates(["unit", "text"]) if len(a) else a
    b = b.drop_duplicates(["unit", "text"]) if len(b) else b
    rows: list[dict] = []
    units = sorted(set(a["unit"] if len(a) else []) | set(b["unit"] if len(b) else []))
    texts = (a["text"].tolist() if len(a) else []) + (b["text"].tolist() if len(b) else [])
    if not texts:
        return pd.DataFrame(columns=COLUMNS)
    words = (a["words"].tolist() if len(a) else []) + (b["words"].tolist() if len(b) else [])
    x = tfidf_matrix(texts, [topic_from_words(w) for w in words], char_weight=CHAR_WEIGHT)
    xa, xb = x[: len(a)], x[len(a):]
    for unit in units:
        ia = np.flatnonzero(a["unit"].to_numpy() == unit) if len(a) else np.array([], dtype=int)
        ib = np.flatnonzero(b["unit"].to_numpy() == unit) if len(b) else np.array([], dtype=int)
        sim = (xa[ia] @ xb[ib].T).toarray() if len(ia) and len(ib) else np.zeros((len(ia), len(ib)))
        used_a, used_b = set(), set()
        # greedy one-to-one matching, most similar pairs first (stable: ties in reading order)
        for flat in np.argsort(-sim, axis=None, kind="stable"):
            i, j = divmod(int(flat), sim.shape[1])
            if sim[i, j] < min_similarity:
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            ra, rb = a.iloc[ia[i]], b.iloc[ib[j]]
            rows.append(_row(unit, "persisting", ra, rb, float(sim[i, j])))
        for j in range(len(ib)):
            if j not in used_b:
                rows.append(_row(unit, "new", None, b.iloc[ib[j]], _best(sim[:, j])))
        for i in range(len(ia)):
            if i not in used_a:
                rows.append(_row(unit, "resolved", a.iloc[ia[i]], None, _best(sim[i, :])))
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = {"new": 0, "persisting": 1, "resolved": 2}
    out = out.sort_values(["unit", "status"], key=lambda c: c.map(order) if c.name == "status" else c,
                          kind="stable")
    return out.astype({"similarity": "float64", "page_old": "Int64", "page_new": "Int64"}).reset_index(
        drop=True)


def _best(v: np.ndarray) -> float:
    return round(float(v.max()), 4) if len(v) else 0.0


def _row(unit: str, status: str, ra: pd.Series | None, rb: pd.Series | None, sim: float) -> dict:
    texts = [r["text"] for r in (ra, rb) if r is not None]
    words = [list(r["words"]) for r in (ra, rb) if r is not None]
    return {"unit": unit, "status": status, "cluster_name": cluster_name(texts, word_lists=words),
            "text_old": ra["text"] if ra is not None else "", "text_new": rb["text"] if rb is not None else "",
            "similarity": round(sim, 4),
            "doc_id_old": ra["doc_id"] if ra is not None else "", "doc_id_new": rb["doc_id"] if rb is not None else "",
            "page_old": ra["page"] if ra is not None else None, "page_new": rb["page"] if rb is not None else None}


def compare_command(args: argparse.Namespace) -> int:
    """``huibian compare OLD_DIR NEW_DIR [--out DIR]`` → compare.parquet (default in NEW_DIR)."""
    old_dir, new_dir = Path(args.old_dir), Path(args.new_dir)
    for d in (old_dir, new_dir):
        if not (d / "sentences.parquet").exists():
            print(f"huibian: no sentences.parquet in {d} (run `huibian run` first)", file=sys.stderr)
            return 2
    out_dir = Path(args.out) if getattr(args, "out", None) else new_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table = compare_seasons(pd.read_parquet(old_dir / "sentences.parquet"),
                                pd.read_parquet(new_dir / "sentences.parquet"))
        table.to_parquet(out_dir / "compare.parquet", index=False)
    except OSError as e:
        print(f"huibian: cannot write {out_dir / 'compare.parquet'}: {e}", file=sys.stderr)
        return 2
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    print(f"{table['unit'].nunique() if len(table) else 0} units: {counts.get('new', 0)} new, "
          f"{counts.get('persisting', 0)} persisting, {counts.get('resolved', 0)} resolved → "
          f"{out_dir / 'compare.parquet'}")
    return 0
