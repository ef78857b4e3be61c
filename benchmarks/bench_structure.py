"""Structure-stage speed on the bundled sample season: median of several runs, per document and in
characters per second (normalize → structure; ingest is read once outside the timing)."""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

from pipeline.ingest import discover, ingest_file
from pipeline.normalize import normalize
from pipeline.structure import structure

SAMPLE = Path(__file__).resolve().parent.parent / "corpus" / "sample"
RUNS = 5


def main() -> None:
    docs = [normalize(ingest_file(p, s)) for p, s in discover([SAMPLE])]
    chars = sum(d.n_chars for d in docs)
    times = []
    for _ in range(RUNS):
        fresh = copy.deepcopy(docs)
        t0 = time.perf_counter()
        for d in fresh:
            structure(d)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    n_art = sum(len(d.articles) for d in fresh)
    print(f"structure: {len(docs)} documents, {n_art} articles, {chars} chars; "
          f"median {med * 1000:.1f} ms over {RUNS} runs ({chars / med / 1e6:.2f} M chars/s)")


if __name__ == "__main__":
    main()
