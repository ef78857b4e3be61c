"""The ``huibian`` command line (also ``python -m pipeline``). Verbs follow CONTRACT.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def _cmd_run(a: argparse.Namespace) -> int:
    from .outputs import OutputError
    from .run import RunConfig, RunError, run

    cfg = RunConfig(inputs=a.inputs, out=Path(a.out) if a.out else None, season=a.season,
                    jobs=a.jobs or 1)
    if a.config:
        cfg.config = _read_config(a.config)
    try:
        m = run(cfg)
    except (RunError, OutputError) as e:
        print(f"huibian: {e}", file=sys.stderr)
        return 2
    print(f"{m['inputs']} files: {m['ok']} ok, {m['rejected']} rejected; "
          f"{m['sentences']} sentences → {m['out_dir']}")
    return 0


def _read_config(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"huibian: config file not found: {path}")
    import tomllib

    if p.suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    return tomllib.loads(p.read_text(encoding="utf-8"))


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
    r.set_defaults(func=_cmd_run)

    e = sub.add_parser("eval", help="score sentence labels against a gold file")
    e.add_argument("--gold", required=True, action="append", help="gold JSONL (repeatable)")
    e.add_argument("--pred", required=True, help="a run's output folder")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
