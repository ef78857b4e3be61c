"""Season analysis from per-file parts (issue 8): parts per file, cold and warm combine.

Reads a run's folder (default: the 1,000-report season in /tmp/season1000_ref), builds each
file's parts once (timed per file) and stores them as a run does (one cache entry per file, parts
read back lazily from disk), then times ``analyze_parts`` with an empty memo (cold) and, with the
memo of the previous run (warm, a folder memo as the run's), after one file gained one sentence —
the two late changes benchmarks/season.py makes: a figure sentence and a problem (gap) sentence;
as in a run, the edited file gets new doc and article ids. Medians of --runs runs, with the time
of each table. The tables are compared with the folder's (or with --ref DIR, e.g. tables saved
by an earlier version with --save DIR).

    python benchmarks/analyze.py [--run DIR] [--runs 3] [--limit N] [--save DIR] [--ref DIR]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.analyze import SENTENCES, analyze_parts, season_part
from pipeline.analyze.problems import combine_problems
from pipeline.season import EntryStore, FolderMemo, SeasonParts, docs_from_frames
from pipeline.segment import cut
from pipeline.testing import parquet_bytes, with_new_ids

#: the late changes of benchmarks/season.py: (text, label, theme)
CHANGES = {
    "figure": ("补充说明：截至年底新增就业3万人。", "strength", "就业"),
    "problem": ("同时也要看到，基层医疗服务能力不足，第3批乡镇卫生院人才短缺问题仍然突出。", "gap", "卫生"),
}


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


class Disk:
    """Parts stored as a run stores them: one cache entry per file, read back lazily."""

    def __init__(self, root: Path) -> None:
        self.store = EntryStore(root, "entries")
        self.entries: list[Any] = []

    def put(self, key: str, parts: dict[str, Any]) -> tuple[Any, Any]:
        sentences = parts.pop(SENTENCES)
        e = self.store.put(key, {"tables": {SENTENCES: sentences}}, {"analyze": parts}, "bench")
        return e, e.parts("bench")

    def season(self, files: Sequence[tuple[Any, Any]]) -> SeasonParts:
        return SeasonParts([e for e, _ in files], [b for _, b in files], "analyze")


def _timed(parts: Sequence[Mapping[str, Any]], memo: Any) -> tuple[float, dict, dict]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out = analyze_parts(parts, {}, memo, timings=timings)
    return time.perf_counter() - t0, timings, out


def _memo(snapshot: Path | None, work: Path) -> FolderMemo:
    """A copy of the memo folder ``snapshot`` (or an empty one): every run starts from it."""
    folder = Path(tempfile.mkdtemp(dir=work))
    shutil.rmtree(folder)
    if snapshot is not None:
        shutil.copytree(snapshot, folder)
    return FolderMemo(folder)


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
    work = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    disk = Disk(work / "cache")
    per_file, files = [], []
    size = 0
    for i, d in enumerate(docs):
        t0 = time.perf_counter()
        p = season_part(d)
        per_file.append(time.perf_counter() - t0)
        size += len(pickle.dumps({k: v for k, v in p.items() if k != SENTENCES},
                                 protocol=pickle.HIGHEST_PROTOCOL))
        files.append(disk.put(f"{i:08d}", p))
    print(f"document_parts: median {1000 * statistics.median(per_file):.1f} ms/file, "
          f"total {sum(per_file):.1f} s; parts {size / len(files) / 1024:.0f} KiB/file pickled",
          flush=True)
    parts = disk.season(files)
    cold, out = [], {}
    snapshot = work / "memo-cold"
    for r in range(a.runs):
        memo = _memo(None, work)
        t, tim, out = _timed(parts, memo)
        cold.append((t, tim))
        if r == a.runs - 1:
            memo.folder.rename(snapshot)
        else:
            shutil.rmtree(memo.folder)
    _report(f"analyze_parts cold (empty memo; {len(FolderMemo(snapshot))} memo entries)", cold)
    t, tim, again = _timed(parts, _memo(snapshot, work))
    print(f"analyze_parts, nothing changed (full memo): {t:.2f} s", flush=True)
    for name, df in out.items():
        assert parquet_bytes(again[name]) == parquet_bytes(df), name
    # a label rebuilt from all files' items with a warm block memo (no label memo): what a new
    # problem statement costs
    rebuild = []
    for _ in range(a.runs):
        m = _memo(snapshot, work)
        t0 = time.perf_counter()
        combine_problems(parts, labels=("measure",), memo=m)
        rebuild.append(time.perf_counter() - t0)
    print(f"measure label rebuilt (warm block memo): median {statistics.median(rebuild):.2f} s "
          f"{[round(t, 2) for t in rebuild]}", flush=True)
    mid = len(docs) // 2
    for kind, (text, label, theme) in CHANGES.items():
        changed = list(files)
        changed[mid] = disk.put(f"changed-{kind}", season_part(with_new_ids(
            _with_sentence(docs[mid], text, label, theme), f"-{kind}")))
        season = disk.season(changed)
        warm = []
        for _ in range(a.runs):
            m = _memo(snapshot, work)
            t, tim, res = _timed(season, m)
            warm.append((t, tim))
        _report(f"analyze_parts warm, one file gained a {kind} sentence "
                f"({m.misses} memo misses)", warm)
        fresh = analyze_parts(season, {}, None)  # memo state never changes a result
        for name, df in fresh.items():
            assert parquet_bytes(res[name]) == parquet_bytes(df), (kind, name)
    shutil.rmtree(work, ignore_errors=True)
    if a.save:
        a.save.mkdir(parents=True, exist_ok=True)
        for name, df in out.items():
            (a.save / f"{name}.parquet").write_bytes(parquet_bytes(df))
    ref_dir = a.ref or (None if a.limit else a.run)
    if ref_dir:
        for name, df in out.items():
            ref = ref_dir / f"{name}.parquet"
            if ref.exists():
                same = parquet_bytes(df) == ref.read_bytes()
                try:
                    pd.testing.assert_frame_equal(df, pd.read_parquet(ref))
                    eq = "frame-equal"
                except AssertionError:
                    eq = "differs"
                print(f"  {name}: {len(df)} rows, {'byte-identical' if same else eq} vs {ref}")


if __name__ == "__main__":
    main()
