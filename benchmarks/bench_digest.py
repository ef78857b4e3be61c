"""Time each deliverable of the digest on a finished run (default: the 20 gov reports + 5 seeds).

    huibian run ../shared/seeds ../shared/corpus/gov2026 --out /tmp/bench-run
    python benchmarks/bench_digest.py /tmp/bench-run --repeat 3

Prints the median seconds per deliverable over the runs, and the file sizes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pipeline.digest import _writers
from pipeline.run import load_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    frames = load_frames(a.run_dir)
    s = frames["sentences"]
    meta = {"season": "bench", "ok": int((frames["documents"]["status"] == "ok").sum()), "rejected": 0,
            "sentences": len(s)}
    print(f"{len(frames['documents'])} documents, {len(s)} sentences, "
          + ", ".join(f"{k} {len(v)}" for k, v in frames.items() if k not in ("documents", "sentences")))
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeat):
            for name, write in _writers():
                t0 = time.perf_counter()
                write(frames, meta, Path(tmp) / name)
                times.setdefault(name, []).append(time.perf_counter() - t0)
                sizes[name] = (Path(tmp) / name).stat().st_size
    total = 0.0
    for name, ts in times.items():
        med = statistics.median(ts)
        total += med
        print(f"{name:14s} median {med:6.2f}s over {len(ts)} runs   {sizes[name] / 1e6:6.2f} MB")
    print(f"{'all':14s} median-sum {total:6.2f}s")


if __name__ == "__main__":
    main()
