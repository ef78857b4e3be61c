"""The ``huibian`` command line (also ``python -m pipeline``). Verbs follow CONTRACT.md."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__


def _cmd_run(a: argparse.Namespace) -> int:
    from .outputs import OutputError
    from .run import RunConfig, RunError, run

    if a.jobs is not None and a.jobs < 1:
        print(f"huibian: --jobs must be at least 1 (got {a.jobs})", file=sys.stderr)
        return 2
    # --jobs unset: RunConfig uses the machine's cores
    cfg = RunConfig(inputs=a.inputs, out=Path(a.out) if a.out else None, season=a.season,
                    jobs=a.jobs, corrections=Path(a.corrections) if a.corrections else None,
                    executor=a.executor, scheduler=a.scheduler, use_cache=not a.no_cache)
    if a.config:
        cfg.config = _read_config(a.config)
    try:
        m = run(cfg)
    except (RunError, OutputError) as e:
        print(f"huibian: {e}", file=sys.stderr)
        return 2
    print(f"{m['inputs']} files: {m['ok']} ok, {m['rejected']} rejected; "
          f"{m['sentences']} sentences → {m['out_dir']}")
    if "reused" in m:  # the batch summary (pipeline/run.py): what the cache saved, where time went
        t = m.get("timings", {})
        print(f"reused {m['reused']} of {m.get('files_in', m['inputs'])} documents; "
              f"processed {m.get('processed', 0)} on {m.get('executor', 'none')}"
              f" ({m.get('workers', 0)} workers)")
        print("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    return 0


def _cmd_server(a: argparse.Namespace) -> int:
    from . import server

    if a.action == "stop":
        print("huibian: warm server stopped" if server.stop() else "huibian: no warm server running")
        return 0
    status = server.running()
    if status is None:
        print("huibian: no warm server running" + ("" if server.enabled() else " (HUIBIAN_SERVER=0)"))
        return 1
    print(f"huibian: warm server pid {status['pid']}, up {status['uptime_s']:.0f} s, "
          f"{status['rss_mib']:.0f} MiB, {status['runs_in_progress']} run(s) in progress")
    return 0


def _serves(argv: list[str]) -> bool:
    """Whether this command line may go to (and leave behind) the warm server."""
    if not argv or argv[0] != "run" or "--no-server" in argv:
        return False
    from . import server

    return server.enabled()


def _read_config(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"huibian: config file not found: {path}")
    import tomllib

    try:
        if p.suffix == ".json":
            return json.loads(p.read_text(encoding="utf-8"))
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise SystemExit(f"huibian: config file {path} is not valid TOML/JSON: {e}") from None


def _cmd_eval(a: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_report, load_gold
    from .run import load_frames

    pred = Path(a.pred)
    if not (pred / "sentences.parquet").exists():
        print(f"huibian: no sentences.parquet in {pred} (run `huibian run` first)", file=sys.stderr)
        return 2
    gold = []
    for g in a.gold:
        if not Path(g).exists():
            print(f"huibian: gold file not found: {g}", file=sys.stderr)
            return 2
        gold += load_gold(g)
    frames = load_frames(pred)
    report = evaluate(gold, frames["sentences"])
    print(json.dumps(report, ensure_ascii=False) if a.json else format_report(report))
    return 0


def _delegate(target: str):
    """Handler living in a stage's module ("pipeline.tag.training:train_command")."""

    def handler(a: argparse.Namespace) -> int:
        import importlib

        mod, fn = target.split(":")
        return int(getattr(importlib.import_module(mod), fn)(a) or 0)

    return handler


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="huibian", description="汇编: analyse a season of work reports")
    p.add_argument("--version", action="version", version=f"huibian {__version__}")
    sub = p.add_subparsers(dest="verb", required=True)

    r = sub.add_parser("run", help="read reports and write tables and the digest")
    r.add_argument("inputs", nargs="*", help="files, folders or archives (default: bundled sample)")
    r.add_argument("--out", help="output folder (default outputs/<season or latest>)")
    r.add_argument("--season", help="season name")
    r.add_argument("--jobs", type=int, default=None, help="worker processes")
    r.add_argument("--config", help="TOML/JSON config file")
    r.add_argument("--corrections", help="XLSX/CSV of editor corrections (from `huibian review`)")
    r.add_argument("--executor", choices=("local", "dask"), default="local")
    r.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")
    r.add_argument("--no-cache", action="store_true", help="re-do every document")
    r.add_argument("--no-server", action="store_true",
                   help="run in this process, without the warm server (also HUIBIAN_SERVER=0)")
    r.set_defaults(func=_cmd_run)

    sv = sub.add_parser("server", help="the warm server that makes reruns start at once")
    sv.add_argument("action", choices=("status", "stop"), nargs="?", default="status")
    sv.set_defaults(func=_cmd_server)

    e = sub.add_parser("eval", help="score sentence labels against a gold file")
    e.add_argument("--gold", required=True, action="append", help="gold JSONL (repeatable)")
    e.add_argument("--pred", required=True, help="a run's output folder")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_eval)

    t = sub.add_parser("train", help="fit the role tagger on gold files and corrections")
    t.add_argument("--gold", nargs="+", required=True, help="gold JSONL files")
    t.add_argument("--corrections", action="append", default=[], help="corrections XLSX/CSV")
    t.add_argument("--sentences", help="a run folder whose sentences the gold refers to")
    t.add_argument("--model", help="where to write the model (default: the packaged model)")
    t.set_defaults(func=_delegate("pipeline.tag.training:train_command"))

    rv = sub.add_parser("review", help="write the least confident sentences to an XLSX for editors")
    rv.add_argument("dir", help="a run's output folder")
    rv.add_argument("--out", help="XLSX to write (default DIR/review.xlsx)")
    rv.add_argument("-n", type=int, default=200, help="how many sentences")
    rv.set_defaults(func=_delegate("pipeline.tag.review:review_command"))

    k = sub.add_parser("kwic", help="keyword in context with unit and page")
    k.add_argument("word")
    k.add_argument("dir", nargs="?", default="outputs/latest", help="a run's output folder")
    k.add_argument("--width", type=int, default=20, help="characters of context each side")
    k.add_argument("--limit", type=int, default=0, help="at most this many lines (0: all)")
    k.set_defaults(func=_delegate("pipeline.analyze.kwic:kwic_command"))

    c = sub.add_parser("compare", help="problems new / persisting / no longer reported, per unit")
    c.add_argument("old_dir")
    c.add_argument("new_dir")
    c.add_argument("--out", help="folder for compare.parquet (default NEW_DIR)")
    c.set_defaults(func=_delegate("pipeline.analyze.compare:compare_command"))

    cp = sub.add_parser("compile", help="compile an anthology volume (DOCX and PDF) from a run")
    cp.add_argument("dir", help="a run's output folder")
    cp.add_argument("--out", required=True, help="volume.docx to write (the PDF goes beside it)")
    cp.add_argument("--order", help="file listing article ids or titles in the wanted order")
    cp.add_argument("--title", help="the volume's title")
    cp.set_defaults(func=_delegate("pipeline.digest.compile:compile_command"))
    return p


def entry() -> NoReturn:
    """The installed ``huibian`` command: :func:`main`, then leave without tearing the heap down.
    A season run ends holding ~1 GB of small objects and memory maps; freeing them one by one at
    interpreter exit took 0.5–0.8 s of a 1,000-report rerun (measured) and saves nothing: every
    output is already written, renamed into place and reported.

    ``huibian run`` goes to the warm server when one is running (pipeline/server.py), and after
    running here leaves one behind for the next run."""
    argv = sys.argv[1:]
    code = None
    if _serves(argv):
        from . import server

        code = server.delegate(argv)
        if code is None:
            code = main(argv)
            if code == 0:
                server.start_in_background()
    else:
        code = main(argv)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed (a `head` that went away): nothing left to say
            pass
    outputs = sys.modules.get(f"{__package__}.outputs")  # (not imported by a served run's client)
    if outputs is not None:
        outputs.finish_discarding()  # what this run replaced: no leftover once it has said done
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    entry()
