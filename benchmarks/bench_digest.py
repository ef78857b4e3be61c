"""Time each deliverable of the digest on a finished run (default: the 20 gov reports + 5 seeds).

    huibian run ../shared/seeds ../shared/corpus/gov2026 --out /tmp/bench-run
    python benchmarks/bench_digest.py /tmp/bench-run --repeat 3
    python benchmarks/bench_digest.py /tmp/bench-run --repeat 1 --memory   # + peak RSS per deliverable

Prints the median seconds per deliverable over the runs and the file sizes. With ``--memory`` each
deliverable is also written once more in a fresh process (spawned, so nothing is shared with the
timing runs) and the process's peak resident memory while writing is printed: total, and above the
resident memory after loading the run's tables — the deliverable's own cost. (Linux resets the peak
mark through /proc/self/clear_refs; elsewhere the peak includes imports.)

``--scale K`` multiplies the run in memory K times (document, article, unit and cluster ids made
distinct per copy) to try season sizes no one wants to run the whole pipeline for: a 200-report
run at ``--scale 5`` is a 1,000-report season of ~400,000 sentences. ``--writers`` picks a few
(``--writers tables.xlsx digest.html``).

``--parts`` (issue 8) times tables.xlsx and corpus.qdpx the way a run makes them: per-file fragments
built cold in this one process (``xlsx.document_part``, ``qdpx.document_part``, from the run's rows
grouped by doc_id), then the season assembly from ready fragments (with a warm memo), medians of
``--repeat`` runs; then tables.xlsx as a rerun after one changed file writes it (that file's rows
under a new doc_id, and back, each write on the memo the one before left):

    python benchmarks/bench_digest.py /tmp/season1000_ref --parts --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.digest import _writers
from pipeline.run import load_frames
from pipeline.season import FolderMemo


def _meta(frames: dict[str, Any]) -> dict[str, Any]:
    return {"season": "bench", "ok": int((frames["documents"]["status"] == "ok").sum()), "rejected": 0,
            "sentences": len(frames["sentences"])}


def _status_mib(field: str) -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: VmHWM), so imports and loading do not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    # elsewhere: ru_maxrss (KiB on Linux, bytes on macOS), the peak over the process's whole life
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


ID_COLUMNS = ("doc_id", "doc_id_a", "doc_id_b", "article_id", "article_id_a", "article_id_b", "unit", "unit_a",
              "unit_b", "cluster_id", "source")


def scale_frames(frames: dict[str, pd.DataFrame], k: int) -> dict[str, pd.DataFrame]:
    """The run's tables repeated k times, each copy's ids (and units, file names) suffixed ~1, ~2…"""
    if k <= 1:
        return frames
    out = {}
    for name, df in frames.items():
        copies = [df]
        for i in range(1, k):
            c = df.copy()
            for col in ID_COLUMNS:
                if col in c.columns:
                    c[col] = c[col].astype(str) + f"~{i}"
            copies.append(c)
        out[name] = pd.concat(copies, ignore_index=True)
    return out


def _measure(run_dir: str, scale: int, name: str, out: str, queue: Any) -> None:
    """Child process: load the run, write one deliverable, report (RSS before, peak RSS while writing)."""
    frames = scale_frames(load_frames(Path(run_dir)), scale)
    write = dict(_writers())[name]
    gc.collect()
    _reset_peak()
    before = _status_mib("VmRSS") or _peak_mib()
    write(frames, _meta(frames), Path(out) / name)
    queue.put((before, _peak_mib()))


def bench_parts(frames: dict[str, pd.DataFrame], repeat: int) -> None:
    """Fragments built cold (per file, one process), then assembled from them (warm memo)."""
    import pyarrow as pa

    from pipeline.digest import qdpx, xlsx

    docs, s = frames["documents"], frames["sentences"]
    codes, _ = pd.factorize(s["doc_id"].astype(str))
    order = codes.argsort(kind="stable")
    s = s.iloc[order]
    bounds = [0, *((codes[order][1:] != codes[order][:-1]).nonzero()[0] + 1).tolist(), len(s)]
    row_of = {str(d): i for i, d in enumerate(docs["doc_id"])}
    tables = [{"documents": docs.iloc[[row_of[str(s["doc_id"].iloc[a])]]], "sentences": s.iloc[a:b]}
              for a, b in zip(bounds, bounds[1:], strict=False)]
    build: dict[str, list[float]] = {"xlsx": [], "qdpx": []}
    parts: list[dict[str, Any]] = []
    for _ in range(repeat):
        parts = [{"sentences": pa.Table.from_pandas(t["sentences"], preserve_index=False)} for t in tables]
        for key, make in (("xlsx", xlsx.document_part), ("qdpx", qdpx.document_part)):
            t0 = time.perf_counter()
            for p, t in zip(parts, tables, strict=True):
                p[key] = make(t)
            build[key].append(time.perf_counter() - t0)
    small = {k: v for k, v in frames.items() if k != "sentences"}
    changed = one_file_changed(small)
    assemble: dict[str, list[float]] = {"tables.xlsx": [], "corpus.qdpx": []}
    rerun: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        memo = FolderMemo(Path(tmp) / "memo")  # (as a run's: entries pickled to files)
        xlsx.write_xlsx(small, Path(tmp) / "tables.xlsx", parts, memo=memo)  # fills the memo (a cold run)
        for _ in range(repeat):
            t0 = time.perf_counter()
            xlsx.write_xlsx(small, Path(tmp) / "tables.xlsx", parts, memo=memo)
            assemble["tables.xlsx"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            qdpx.write_qdpx(small, _meta(frames), Path(tmp) / "corpus.qdpx", parts)
            assemble["corpus.qdpx"].append(time.perf_counter() - t0)
        sizes = {n: (Path(tmp) / n).stat().st_size for n in assemble}
        for i in range(2 * repeat):  # the tables one changed file gives, and back: each a rerun
            t0, c0 = time.perf_counter(), time.process_time()
            xlsx.write_xlsx(changed if i % 2 == 0 else small, Path(tmp) / f"rerun{i}.xlsx", parts, memo=memo)
            rerun.append((time.perf_counter() - t0, time.process_time() - c0))
    print(f"{len(tables)} files with sentences; fragments: "
          f"{sum(len(p['xlsx'].body.data) for p in parts) / 1e6:.1f} MB xlsx, "
          f"{sum(len(p['qdpx'].text.data) + len(p['qdpx'].selections.data) for p in parts if p['qdpx']) / 1e6:.1f}"
          " MB qdpx (compressed)")
    for key, ts in build.items():
        print(f"build {key:11s} median {statistics.median(ts):6.2f}s over {len(ts)} runs (all files, cold)")
    for name, ts in assemble.items():
        print(f"assemble {name:11s} median {statistics.median(ts):6.2f}s over {len(ts)} runs   "
              f"{sizes[name] / 1e6:6.2f} MB")
    print(f"assemble both   median-sum {sum(statistics.median(t) for t in assemble.values()):6.2f}s")
    print(f"rerun tables.xlsx after one file changed: median {statistics.median(w for w, _ in rerun):6.3f}s "
          f"(cpu {statistics.median(c for _, c in rerun):6.3f}s) over {len(rerun)} runs")


def one_file_changed(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The season's tables as a rerun after one changed file sees them (but for its new rows): the
    file's rows under a new doc_id (a file's id is a hash of its content), wherever they are."""
    doc = str(frames["documents"]["doc_id"].iloc[len(frames["documents"]) // 2])
    out = {}
    for name, df in frames.items():
        if isinstance(df, pd.DataFrame) and "doc_id" in df.columns:
            df = df.copy()
            df.loc[df["doc_id"].astype(str) == doc, "doc_id"] = "0" * len(doc)
        out[name] = df
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS per deliverable")
    ap.add_argument("--writers", nargs="*", help="only these deliverables (file names)")
    ap.add_argument("--scale", type=int, default=1, help="repeat the run's tables K times in memory")
    ap.add_argument("--parts", action="store_true", help="time per-file fragments and their assembly")
    a = ap.parse_args()
    frames = scale_frames(load_frames(a.run_dir), a.scale)
    if a.parts:
        bench_parts(frames, a.repeat)
        return
    s = frames["sentences"]
    meta = _meta(frames)
    print(f"{len(frames['documents'])} documents, {len(s)} sentences, "
          + ", ".join(f"{k} {len(v)}" for k, v in frames.items() if k not in ("documents", "sentences")))
    writers = [(n, w) for n, w in _writers() if not a.writers or n in a.writers]
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    memory: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeat):
            for name, write in writers:
                t0 = time.perf_counter()
                write(frames, meta, Path(tmp) / name)
                times.setdefault(name, []).append(time.perf_counter() - t0)
                sizes[name] = (Path(tmp) / name).stat().st_size
        if a.memory:
            ctx = mp.get_context("spawn")
            for name, _w in writers:
                q = ctx.Queue()
                p = ctx.Process(target=_measure, args=(str(a.run_dir), a.scale, name, tmp, q))
                p.start()
                memory[name] = q.get()
                p.join()
    total = 0.0
    for name, ts in times.items():
        med = statistics.median(ts)
        total += med
        mem = ""
        if name in memory:
            loaded, peak = memory[name]
            mem = f"   peak RSS {peak:6.0f} MiB (+{peak - loaded:.0f} over the loaded run)"
        print(f"{name:14s} median {med:6.2f}s over {len(ts)} runs   {sizes[name] / 1e6:6.2f} MB{mem}")
    print(f"{'all':14s} median-sum {total:6.2f}s")


if __name__ == "__main__":
    main()
