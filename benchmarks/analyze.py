"""How long the cross-unit analysis takes as a season grows: 100 / 250 / 500 / 1,000 reports.

The season is built from the 20 real government reports (run once through the per-document
stages), repeated with variation: each copy gets its own doc/article ids and unit name, and one
word in every sentence is swapped for another so copies are near-duplicates rather than identical
(identical texts would be clustered once and flatter the figures). Prints the median of --runs runs
per size, and the growth factor against the previous size.

    python benchmarks/analyze.py                  # 100, 250, 500, 1000 reports, 3 runs each
    python benchmarks/analyze.py --sizes 20 100 --runs 1 --base /tmp/gov20.parquet
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analyze import analyze
from pipeline.run import process_path
from pipeline.tables import to_frames

GOV = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "gov2026"
SWAPS = ["工作", "发展", "建设", "推进", "加快", "持续", "全面", "深化", "提升", "强化"]


def base_season() -> pd.DataFrame:
    paths = sorted(GOV.glob("*.txt"))
    return to_frames([process_path(p, str(p)) for p in paths])["sentences"]


def season(base: pd.DataFrame, n_reports: int, rng: np.random.Generator) -> pd.DataFrame:
    docs = base["doc_id"].unique()
    parts = []
    for k in range(n_reports):
        d = base[base["doc_id"] == docs[k % len(docs)]].copy()
        copy = k // len(docs)
        if copy:
            a, b = rng.choice(SWAPS, 2, replace=False)
            d["text"] = d["text"].str.replace(a, b, n=1, regex=False) + f"（{copy}）"
            d["unit"] = d["unit"] + f"-{copy}"
            if "tokens" in d:  # keep the segment stage's words in step with the changed text
                d["tokens"] = [" ".join(_swap(t.split(" "), a, b) + ["（", str(copy), "）"]) for t in d["tokens"]]
        d["doc_id"] = d["doc_id"] + f"-{k}"
        d["article_id"] = d["article_id"] + f"-{k}"
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def _swap(tokens: list[str], a: str, b: str) -> list[str]:
    for i, t in enumerate(tokens):
        if a in t:
            tokens[i] = t.replace(a, b, 1)
            break
    return tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 250, 500, 1000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", type=Path, help="parquet file caching the 20 processed reports "
                    "(written on first use) so repeated benchmarks skip the per-document stages")
    a = ap.parse_args()
    if a.base and a.base.exists():
        base = pd.read_parquet(a.base)
    else:
        base = base_season()
        if a.base:
            base.to_parquet(a.base)
    print(f"base: {base['doc_id'].nunique()} reports, {len(base)} sentences")
    prev = None
    for n in a.sizes:
        frames = {"sentences": season(base, n, np.random.default_rng(n))}
        times, parts = [], {}
        for _ in range(a.runs):
            t0 = time.perf_counter()
            out = analyze(frames)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        parts = {k: len(v) for k, v in out.items()}
        growth = f"  ×{med / prev:.2f} vs previous" if prev else ""
        print(f"{n:5d} reports  {len(frames['sentences']):7d} sentences  median {med:7.1f} s"
              f"{growth}  rows {parts}", flush=True)
        prev = med


if __name__ == "__main__":
    main()
