"""Speed of the tag stage alone (rules + model + themes), next to bare ``jieba.lcut``.

Documents are prepared once (ingest → normalize → structure → segment); then ``tag`` runs over all
of them several times and the median is reported as sentences per second. The same sentences are
cut with bare ``jieba.lcut`` for comparison.

    python benchmarks/tag.py [INPUT ...] [--runs 5]      # default: the bundled sample corpus
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.ingest import discover, ingest_file  # noqa: E402
from pipeline.normalize import normalize  # noqa: E402
from pipeline.segment import segment  # noqa: E402
from pipeline.structure import structure  # noqa: E402
from pipeline.tag import tag  # noqa: E402
from pipeline.tag.learner import load_model  # noqa: E402


def prepare(inputs: list[str]):
    docs = []
    for path, source in discover(inputs):
        d = ingest_file(path, source)
        for stage in (normalize, structure, segment):
            if d.status == "ok":
                d = stage(d)
        if d.status == "ok":
            docs.append(d)
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="*", default=[str(REPO / "corpus" / "sample")])
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    docs = prepare(a.inputs)
    n = sum(len(d.sentences) for d in docs)
    load_model()  # loading the model once per process is not part of tagging
    tag(copy.deepcopy(docs[0]))
    times, cpu = [], []
    for _ in range(a.runs):
        batch = copy.deepcopy(docs)
        t0, c0 = time.perf_counter(), time.process_time()
        for d in batch:
            tag(d)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    import jieba

    jieba.lcut("预热")
    texts = [s.text for d in docs for s in d.sentences]
    jt, jc = [], []
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            jieba.lcut(t)
        jt.append(time.perf_counter() - t0)
        jc.append(time.process_time() - c0)
    tm, jm = statistics.median(times), statistics.median(jt)
    tc, jcm = statistics.median(cpu), statistics.median(jc)
    # wall clock suffers when other processes share the core; CPU time is this process's own work
    print(f"{len(docs)} documents, {n} sentences, {a.runs} runs (median); one core")
    print(f"tag        {n / tm:10,.0f} sentences/s wall  {n / tc:10,.0f} sentences/s CPU")
    print(f"jieba.lcut {n / jm:10,.0f} sentences/s wall  {n / jcm:10,.0f} sentences/s CPU")


if __name__ == "__main__":
    main()
