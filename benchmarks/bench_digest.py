"""Time each deliverable of the digest on a finished run (default: the 20 gov reports + 5 seeds).

    huibian run ../shared/seeds ../shared/corpus/gov2026 --out /tmp/bench-run
    python benchmarks/bench_digest.py /tmp/bench-run --repeat 3
    python benchmarks/bench_digest.py /tmp/bench-run --repeat 1 --memory   # + peak RSS per deliverable

Prints the median seconds per deliverable over the runs and the file sizes. With ``--memory`` each
deliverable is also written once more in a fresh process (spawned, so nothing is shared with the
timing runs) and the process's peak resident memory is printed: total, and above what loading the
run's tables already took — the deliverable's own cost. ``--writers`` picks a few
(``--writers tables.xlsx digest.html``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.digest import _writers
from pipeline.run import load_frames


def _meta(frames: dict[str, Any]) -> dict[str, Any]:
    return {"season": "bench", "ok": int((frames["documents"]["status"] == "ok").sum()), "rejected": 0,
            "sentences": len(frames["sentences"])}


def _peak_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _measure(run_dir: str, name: str, out: str, queue: Any) -> None:
    """Child process: load the run, write one deliverable, report (peak after load, peak after)."""
    frames = load_frames(Path(run_dir))
    loaded = _peak_mib()
    write = dict(_writers())[name]
    write(frames, _meta(frames), Path(out) / name)
    queue.put((loaded, _peak_mib()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS per deliverable")
    ap.add_argument("--writers", nargs="*", help="only these deliverables (file names)")
    a = ap.parse_args()
    frames = load_frames(a.run_dir)
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
                p = ctx.Process(target=_measure, args=(str(a.run_dir), name, tmp, q))
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
            mem = f"   peak RSS {peak:7.0f} MiB (+{peak - loaded:.0f} over loaded tables)"
        print(f"{name:14s} median {med:6.2f}s over {len(ts)} runs   {sizes[name] / 1e6:6.2f} MB{mem}")
    print(f"{'all':14s} median-sum {total:6.2f}s")


if __name__ == "__main__":
    main()
