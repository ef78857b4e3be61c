"""Season analysis from per-file parts (issue 8): parts per file, cold and warm combine.

Reads a run's folder (default: the 1,000-report season in /tmp/season1000_ref), builds each
file's parts once (timed per file), then times ``analyze_parts`` with an empty memo (cold) and,
with the memo of the previous run (warm), after one file gained one sentence — the two late
changes benchmarks/season.py makes: a figure sentence and a problem (gap) sentence. Medians of
--runs runs, with the time of each table. The tables are compared with the folder's (or with
--ref DIR, e.g. tables saved by an earlier version with --save DIR).

    python benchmarks/analyze.py [--run DIR] [--runs 3] [--limit N] [--save DIR] [--ref DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline.analyze import SENTENCES, analyze_parts, document_parts
from pipeline.analyze.problems import combine_problems
from pipeline.season import docs_from_frames
from pipeline.segment import cut

#: the late changes of benchmarks/season.py: (text, label, theme)
CHANGES = {
    "figure": ("补充说明：截至年底新增就业3万人。", "strength", "就业"),
    "problem": ("同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。", "gap", "卫生"),
}


def _parts(doc: dict[str, pd.DataFrame]) -> dict[str, Any]:
    p = document_parts(doc)
    p[SENTENCES] = pa.Table.from_pandas(doc["sentences"], preserve_index=False)
    return p


def _bytes(df: pd.DataFrame) -> bytes:
    f = io.BytesIO()
    df.to_parquet(f, index=False)
    return f.getvalue()


def _with_sentence(doc: dict[str, pd.DataFrame], text: str, label: str, theme: str
                   ) -> dict[str, pd.DataFrame]:
    """The file with one more body sentence at its end (tokens cut as the segment stage does)."""
    d = {k: v.copy() for k, v in doc.items()}
    sen = d["sentences"]
    extra = sen[sen["kind"] == "body"].iloc[[-1]].assign(
        text=text, label=label, theme=theme, idx=int(sen["idx"].max()) + 1,
        tokens=" ".join(cut(text)))
    d["sentences"] = pd.concat([sen, extra], ignore_index=True)
    return d


class Memo(dict):
    """The run's memo stores values pickled (a folder of pickles): same here, in memory, so the
    cost of (un)pickling memo values is in the figures."""

    def __getitem__(self, k: str) -> Any:
        return pickle.loads(super().__getitem__(k))

    def get(self, k: str, default: Any = None) -> Any:
        return self[k] if k in self else default

    def __setitem__(self, k: str, v: Any) -> None:
        super().__setitem__(k, pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL))


def _timed(parts: list[Mapping[str, Any]], memo: Memo | None) -> tuple[float, dict, dict]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out = analyze_parts(parts, {}, memo, timings=timings)
    return time.perf_counter() - t0, timings, out


def _report(what: str, runs: list[tuple[float, dict]]) -> None:
    total = statistics.median(t for t, _ in runs)
    names = runs[0][1]
    each = ", ".join(f"{k} {statistics.median(r[1][k] for r in runs):.2f}" for k in names)
    print(f"{what}: median {total:.2f} s {[round(t, 2) for t, _ in runs]}  ({each})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=Path("/tmp/season1000_ref"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--save", type=Path, help="write the cold tables here as parquet")
    ap.add_argument("--ref", type=Path, help="compare with the tables in this folder")
    a = ap.parse_args()
    s = pd.read_parquet(a.run / "sentences.parquet")
    docs = docs_from_frames({"sentences": s})[: a.limit or None]
    del s
    print(f"{len(docs)} files, {sum(len(d['sentences']) for d in docs)} sentences, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    per_file, parts = [], []
    for d in docs:
        t0 = time.perf_counter()
        parts.append(_parts(d))
        per_file.append(time.perf_counter() - t0)
    size = sum(len(pickle.dumps({k: v for k, v in p.items() if k != SENTENCES},
                                protocol=pickle.HIGHEST_PROTOCOL)) for p in parts)
    print(f"document_parts: median {1000 * statistics.median(per_file):.1f} ms/file, "
          f"total {sum(per_file):.1f} s; parts {size / len(parts) / 1024:.0f} KiB/file pickled",
          flush=True)
    cold, memo, out = [], Memo(), {}
    for _ in range(a.runs):
        memo = Memo()
        t, tim, out = _timed(parts, memo)
        cold.append((t, tim))
    _report(f"analyze_parts cold (empty memo; {len(memo)} memo entries, "
            f"{sum(map(len, memo.values())) / 2**20:.1f} MiB)", cold)
    t, tim, again = _timed(parts, Memo(memo))
    print(f"analyze_parts, nothing changed (full memo): {t:.2f} s", flush=True)
    for name, df in out.items():
        pd.testing.assert_frame_equal(again[name], df, obj=name)
    # a season rerun where a file's ids changed rebuilds every label it has items of: the
    # biggest (measure) rebuilt from all files' items with a warm block memo (no label memo)
    rebuild = []
    for _ in range(a.runs):
        m = Memo(memo)
        t0 = time.perf_counter()
        combine_problems(parts, labels=("measure",), memo=m)
        rebuild.append(time.perf_counter() - t0)
    print(f"measure label rebuilt (warm block memo): median {statistics.median(rebuild):.2f} s "
          f"{[round(t, 2) for t in rebuild]}", flush=True)
    mid = len(docs) // 2
    for kind, (text, label, theme) in CHANGES.items():
        changed = list(parts)
        changed[mid] = _parts(_with_sentence(docs[mid], text, label, theme))
        warm = []
        for _ in range(a.runs):
            m = Memo(memo)
            t, tim, res = _timed(changed, m)
            warm.append((t, tim))
        _report(f"analyze_parts warm, one file gained a {kind} sentence "
                f"({len(m) - len(memo)} new memo entries)", warm)
        fresh = analyze_parts(changed, {}, None)  # memo state never changes a result
        for name, df in fresh.items():
            pd.testing.assert_frame_equal(res[name], df, obj=name)
    if a.save:
        a.save.mkdir(parents=True, exist_ok=True)
        for name, df in out.items():
            (a.save / f"{name}.parquet").write_bytes(_bytes(df))
    ref_dir = a.ref or (None if a.limit else a.run)
    if ref_dir:
        for name, df in out.items():
            ref = ref_dir / f"{name}.parquet"
            if ref.exists():
                same = _bytes(df) == ref.read_bytes()
                try:
                    pd.testing.assert_frame_equal(df, pd.read_parquet(ref))
                    eq = "frame-equal"
                except AssertionError:
                    eq = "differs"
                print(f"  {name}: {len(df)} rows, {'byte-identical' if same else eq} vs {ref}")


if __name__ == "__main__":
    main()
