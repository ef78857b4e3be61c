"""Season-scale benchmark (issue 8): full run, pipeline vs bare jieba, rerun after one change, RSS.

    python benchmarks/season.py                 # 1,000 reports, full run once, reruns 3 times
    python benchmarks/season.py --n 100 --repeat 3 --full-repeat 2 --jobs 2

Builds a season of N reports from the government work reports in ../shared/corpus/gov2026 (each
one varied — a unique sentence inserted, every number changed — so no cache can cheat), then
prints medians of:
  * the full run (cold cache) wall time, and characters/s of the whole pipeline next to bare
    ``jieba.lcut`` on the same text in one process (goal: pipeline ≥ 50 % of bare jieba);
  * the rerun after changing one file (warm cache; goal ≤ 3 s) — once by a new figure sentence,
    once by a new problem sentence — as the CLI process's wall time and as the run's own total
    (without Python start-up): served by the warm server the runs leave behind (what a user
    gets) and, for comparison, with ``--no-server`` (a fresh process loading everything);
  * peak RSS of the run's own process, of its largest child process (workers, the forked
    halves of the analysis and digest: ``manifest.json``), of the largest process under the
    command, and the warm server's resident memory (goal ≤ 1 GiB).
Every run is a fresh ``python -m pipeline run`` process, so start-up, exit and RSS are real. The
warm server lives in a private runtime folder and is stopped at the end; the cold runs and the
bare-jieba timing run before it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOV = REPO.parent / "shared" / "corpus" / "gov2026"

def build_season(folder: Path, n: int) -> int:
    """N varied reports; returns the number of characters written."""
    bases = sorted(GOV.glob("*.txt"))
    if not bases:
        sys.exit(f"no government reports in {GOV}")
    texts = [b.read_text(encoding="utf-8") for b in bases]
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n):
        k = i % len(bases)
        # every number shifted by the report's index; a sentence only this report has
        text = re.sub(r"\d+", lambda m, i=i: str(int(m.group()) + i + 1), texts[k])
        lines = text.split("\n")
        at = min(len(lines), 3 + i % 7)
        lines.insert(at, f"本县区第{i + 1}号报告显示，全年新建重点项目{(i * 37) % 900 + 100}个，"
                         f"完成投资{(i * 53) % 500 + 50}亿元。")
        text = "\n".join(lines)
        total += len(text)
        (folder / f"{i:04d}_{bases[k].stem}.txt").write_text(text, encoding="utf-8")
    return total


def child_run(season: Path, out: Path, jobs: int, executor: str, *extra: str) -> tuple[float, dict]:
    """One ``python -m pipeline run`` exactly as a user types it (start-up and exit included);
    its manifest, the main process's peak RSS (from the manifest) and the largest of the process
    tree's (from wait4)."""
    cmd = [sys.executable, "-m", "pipeline", "run", str(season), "--out", str(out),
           "--jobs", str(jobs), "--executor", executor, *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()  # drained while it runs, so a chatty run cannot block on the pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return wall, {"manifest": manifest,
                  "rss_main_mib": max((v for k, v in manifest.get("peak_rss_mib", {}).items()
                                       if k != "child processes"), default=0.0),
                  "rss_children_mib": manifest.get("peak_rss_mib", {}).get("child processes", 0.0),
                  "rss_worker_mib": usage.ru_maxrss / 1024}  # KiB on Linux


def server(action: str) -> str | None:
    """``huibian server status|stop``: its output line, or None when no server answers."""
    r = subprocess.run([sys.executable, "-m", "pipeline", "server", action], cwd=REPO,
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def wait_for_server(seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = server("status")
        if status is not None:
            return status
        time.sleep(0.5)
    sys.exit("the warm server did not start")


def bare_jieba_rate(season: Path, repeat: int, limit: int = 100) -> float:
    """chars/s of jieba.lcut over (up to ``limit`` of) the same files, one process, warmed up."""
    import jieba

    jieba.initialize()
    files = sorted(season.glob("*.txt"))
    step = max(1, len(files) // limit)
    texts = [f.read_text(encoding="utf-8") for f in files[::step]]
    n = sum(len(t) for t in texts)
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            jieba.lcut(t)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="reports in the season (default 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="reruns and jieba timings (median)")
    ap.add_argument("--full-repeat", type=int, default=1, help="full cold runs (median; slow)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--executor", choices=("local", "dask"), default="local")
    ap.add_argument("--workdir", help="where to build the season (default: a temporary folder)")
    args = ap.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="huibian-bench-"))
    season, out = work / "season", work / "out"
    shutil.rmtree(season, ignore_errors=True)
    chars = build_season(season, args.n)
    load = os.getloadavg()[0]
    print(f"season: {args.n} reports, {chars:,} characters, in {season}")
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} at start; "
          f"jobs={args.jobs}, executor={args.executor}")

    # the warm server of these runs lives in a folder of its own, whatever the caller has running
    os.environ["HUIBIAN_RUNTIME_DIR"] = str(work / "runtime")
    os.environ.pop("HUIBIAN_SERVER", None)
    full, manifest, rss_main, rss_worker, rss_children = [], {}, 0.0, 0.0, 0.0
    for _ in range(args.full_repeat):
        shutil.rmtree(out, ignore_errors=True)  # cold: no outputs, no cache
        wall, res = child_run(season, out, args.jobs, args.executor, "--no-server")
        full.append(wall)
        manifest = res["manifest"]
        rss_main, rss_worker = max(rss_main, res["rss_main_mib"]), max(rss_worker, res["rss_worker_mib"])
        rss_children = max(rss_children, res["rss_children_mib"])
    full_s = statistics.median(full)
    t = manifest["timings"]
    docs_s = t.get("documents", full_s)
    jieba_rate = bare_jieba_rate(season, args.repeat)

    # a run with nothing changed leaves the warm server behind, as any `huibian run` does
    child_run(season, out, args.jobs, args.executor)
    print(f"warm server: {wait_for_server()}")

    # two kinds of late change: a new figure (no problem statement: the problem grouping's memo
    # answers every block) and a new problem statement (its block is grouped again); each rerun
    # once served by the warm server and once in a fresh process (--no-server)
    changes = {
        "figure": "\n补充说明：截至年底新增就业{r}万人。\n",
        "problem": "\n同时也要看到，基层医疗服务能力不足，第{r}批乡镇卫生院人才短缺问题仍然突出。\n",
    }
    modes = {"served": (), "no server": ("--no-server",)}
    reruns = {(k, m): [] for k in changes for m in modes}
    rerun_totals = {(k, m): [] for k in changes for m in modes}
    last: dict[str, dict] = {}
    files = sorted(season.glob("*.txt"))
    for r in range(args.repeat):
        for kind, line in changes.items():
            for m, (mode, extra) in enumerate(modes.items()):
                changed = files[(r * 7919 + len(kind) * 31 + m * 337) % len(files)]
                with changed.open("a", encoding="utf-8") as fh:
                    fh.write(line.format(r=r + 1))
                wall, res = child_run(season, out, args.jobs, args.executor, *extra)
                reruns[(kind, mode)].append(wall)
                last[mode] = res["manifest"]
                rerun_totals[(kind, mode)].append(last[mode]["timings"]["total"])
                rss_main = max(rss_main, res["rss_main_mib"])
                rss_children = max(rss_children, res["rss_children_mib"])
    if last["served"].get("warm_server") is None:
        print("WARNING: the reruns meant for the warm server ran in their own process")
    server_status = server("status")
    server("stop")

    pipe_rate = chars / full_s
    print(f"full run (cold, median of {len(full)}): {full_s:.1f} s wall; "
          f"stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))
    for key, what in (("analyze_timings", "analysis tables"), ("digest_timings", "deliverables")):
        if manifest.get(key):
            print(f"  {what}: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest[key].items()))
    print(f"  sentences {manifest['sentences']:,}; ok {manifest['ok']}, rejected {manifest['rejected']}")
    print(f"chars/s: whole pipeline {pipe_rate:,.0f} | per-document stages only {chars / docs_s:,.0f} "
          f"| bare jieba.lcut (1 process) {jieba_rate:,.0f} "
          f"→ pipeline = {100 * pipe_rate / jieba_rate:.0f} % of bare jieba "
          f"(per-document stages {100 * chars / docs_s / jieba_rate:.0f} %; goal ≥ 50 %)")
    for mode in modes:
        for kind in changes:
            print(f"rerun after one file gained a {kind} sentence, {mode} (median of "
                  f"{len(reruns[(kind, mode)])}): {statistics.median(reruns[(kind, mode)]):.2f} s wall "
                  f"(run itself {statistics.median(rerun_totals[(kind, mode)]):.2f} s; goal ≤ 3 s)")
    for mode, m in last.items():
        print(f"  last rerun, {mode}: reused {m.get('reused')} of {m.get('files_in')}; "
              f"memo {m.get('memo')}; stages: "
              + ", ".join(f"{k} {v:.2f}s" for k, v in m["timings"].items()))
        for key, what in (("analyze_timings", "analysis tables"), ("digest_timings", "deliverables")):
            if m.get(key):
                print(f"    {what}: " + ", ".join(f"{k} {v:.2f}s" for k, v in m[key].items()))
    print(f"peak RSS (goal ≤ 1024 MiB): the run's process {rss_main:,.0f} MiB (served or not), "
          f"its largest child process (workers, forked halves) {rss_children:,.0f} MiB, largest "
          f"process under the command {rss_worker:,.0f} MiB; warm server before stopping: "
          f"{server_status}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
