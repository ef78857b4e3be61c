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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS per deliverable")
    ap.add_argument("--writers", nargs="*", help="only these deliverables (file names)")
    ap.add_argument("--scale", type=int, default=1, help="repeat the run's tables K times in memory")
    a = ap.parse_args()
    frames = scale_frames(load_frames(a.run_dir), a.scale)
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
