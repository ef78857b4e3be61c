"""``huibian run``: the stages wired together over a season of files.

Per input file (in worker processes or Dask tasks): ingest → normalize → structure → segment →
tag, giving that file's rows — the unit of work, of caching and of parallelism.  Across the
season: analyze → digest.  A run holds a lock on its output folder, reuses cached per-file results
whose bytes and pipeline version are unchanged, puts results back in input order (so outputs are
byte-identical however the work was spread), writes to a staging folder and publishes it at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import __version__
from .cache import Cache, entry_key, file_digest, pipeline_fingerprint
from .executor import ExecutorError, make_executor
from .ingest import configure as configure_ingest
from .ingest import discover, ingest_file
from .lock import LockError, RunLock
from .model import Block, Document, stable_id
from .normalize import normalize
from .outputs import prepare, publish, write_json, write_table
from .progress import RunProgress
from .segment import segment
from .structure import structure
from .tables import document_rows, to_frames
from .tag import tag

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO_ROOT / "corpus" / "sample"

#: the per-document stages, in order; each is Document -> Document
STAGES = (("normalize", normalize), ("structure", structure), ("segment", segment), ("tag", tag))

#: below this many bytes of files to process, worker processes cost more than they save
#: (a spawned worker needs ~2 s to import and load jieba; the sample season takes ~2 s in-process)
PARALLEL_MIN_BYTES = 2_000_000

#: a per-file result's rows: one Arrow table per kind of row (documents, articles, toc, sentences)
Tables = dict[str, pa.Table]


class RunError(Exception):
    """The run itself cannot proceed (missing input, unwritable output): one line for the user."""


@dataclass
class RunConfig:
    inputs: list[str] = field(default_factory=list)
    out: Path | None = None
    season: str | None = None
    jobs: int | None = None  # None: the machine's cores
    config: dict[str, Any] = field(default_factory=dict)
    corrections: Path | None = None
    executor: str = "local"
    scheduler: str | None = None
    use_cache: bool = True
    cache_dir: Path | None = None  # None: $HUIBIAN_CACHE or <out_dir>/.cache
    progress: bool | None = None  # None: when stderr is a terminal
    parallel_min_bytes: int = PARALLEL_MIN_BYTES

    @property
    def out_dir(self) -> Path:
        return self.out or Path("outputs") / (self.season or "latest")

    @property
    def n_jobs(self) -> int:
        return max(1, self.jobs if self.jobs else (os.cpu_count() or 1))


# ---------------------------------------------------------------- per-document work (in workers)

def process_document(doc: Document, timings: dict[str, float] | None = None) -> Document:
    """Run the per-document stages on an ingested document."""
    for name, stage in STAGES:
        t0 = time.perf_counter()
        if doc.status == "ok":
            try:
                doc = stage(doc)
            except Exception as e:  # one document's failure must not stop the season
                doc.reject(f"failed in {name}: {type(e).__name__}: {e}")
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
    return doc


def _ingest_all(path: Path, source: str, root: Path | None) -> list[Document]:
    """Every document one input file holds (an archive or a table of reports holds several)."""
    from . import ingest

    many: Callable[..., list[Document]] | None = getattr(ingest, "ingest_all", None)
    if many is not None:
        return many(path, source, root)
    return [ingest_file(path, source, root=root)]


def process_path(path: Path, source: str, root: Path | None = None,
                 timings: dict[str, float] | None = None,
                 warnings: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """One input file → the rows of all its documents (dict of lists of row dicts)."""
    t0 = time.perf_counter()
    docs = _ingest_all(path, source, root)
    if timings is not None:
        timings["ingest"] = timings.get("ingest", 0.0) + time.perf_counter() - t0
    rows: dict[str, list[dict[str, Any]]] = {}
    while docs:
        doc = process_document(docs.pop(0), timings)  # drop each Document once it is rows
        for name, records in document_rows(doc).items():
            rows.setdefault(name, []).extend(records)
        if warnings is not None:
            warnings.extend(f"{doc.source}: {w}" for w in doc.warnings)
    return rows


def process_file(path: str, source: str, root: str | None) -> dict[str, Any]:
    """The task executors run: picklable in, picklable out (columnar rows, warnings, timings)."""
    timings: dict[str, float] = {}
    warnings: list[str] = []
    rows = process_path(Path(path), source, Path(root) if root else None, timings, warnings)
    return {"tables": columnar(rows), "warnings": warnings, "timings": timings}


def warm_up() -> None:
    """Load jieba's dictionary, OpenCC and the tag model once in a fresh worker, before any file."""
    doc = Document(doc_id="warm-up", source="warm-up.txt", format="txt", blocks=[
        Block(text="一、主要成绩", para=0, kind="heading", level=1),
        Block(text="今年我们完成了各项工作任务，但仍存在不足。", para=1),
    ])
    try:
        process_document(doc)
    except Exception:  # warming up is an optimisation only
        pass


def failed_file(source: str, error: BaseException) -> dict[str, Any]:
    """The result for a file whose task failed outright (its worker died, a bug): rejected."""
    doc = Document(doc_id=stable_id(source), source=source)
    doc.reject(f"could not be processed: {type(error).__name__}: {error}")
    return {"tables": columnar(document_rows(doc)), "warnings": [], "timings": {}}


def columnar(rows: dict[str, list[dict[str, Any]]]) -> Tables:
    """Row dicts → one Arrow table per kind of row: compact in memory, cheap to pickle and cache
    (a season of Python row dicts would need several GiB)."""
    out: Tables = {}
    for name, records in rows.items():
        cols: dict[str, None] = {}
        for r in records:
            cols.update(dict.fromkeys(r))
        out[name] = pa.table({c: _array([r.get(c) for r in records]) for c in cols})
    return out


def _array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # a column mixing kinds of values (a stage's bug) is kept as text rather than lost
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def frames_from_parts(parts: list[Tables]) -> dict[str, pd.DataFrame]:
    """Per-file tables (in input order) → the season's DataFrames.

    Columns, dtypes and values are exactly those ``tables.to_frames`` builds from the same row
    dicts (list columns as Python lists, which readers of the Parquet files expect); each file's
    tables are released as soon as they are concatenated.
    """
    template = to_frames([])
    frames: dict[str, pd.DataFrame] = {}
    for name, empty in template.items():
        tables = [t for t in (p.pop(name, None) for p in parts) if t is not None and t.num_rows]
        if not tables:
            frames[name] = empty
            continue
        t = pa.concat_tables(tables, promote_options="permissive")
        del tables
        n = t.num_rows
        t = pa.table({c: t.column(c) if c in t.column_names else pa.nulls(n)
                      for c in empty.columns})
        lists = {c: t.column(c).to_pylist() for c in t.column_names
                 if pa.types.is_list(t.column(c).type) or pa.types.is_large_list(t.column(c).type)}
        df = t.drop_columns(list(lists)).to_pandas(self_destruct=True)
        del t
        for c, values in lists.items():
            df[c] = values
        df = df[list(empty.columns)]
        for c in empty.columns:
            if empty[c].dtype != object and df[c].dtype != empty[c].dtype:
                df[c] = df[c].astype(empty[c].dtype)
        frames[name] = df
    return frames


#: a rejection carrying this marker came from a parser time limit (pipeline/ingest/isolate.py):
#: it depends on the machine's load, not on the bytes, so it is not cached
TRANSIENT_MARKER = "(stopped)"


def _transient(tables: Tables) -> bool:
    docs = tables.get("documents")
    if docs is None or "reason" not in docs.column_names:
        return False
    return any(TRANSIENT_MARKER in (r or "") for r in docs.column("reason").to_pylist())


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# ---------------------------------------------------------------- the season

def run(cfg: RunConfig) -> dict[str, Any]:
    inputs = cfg.inputs or [str(SAMPLE_CORPUS)]
    for given in inputs:
        if not Path(given).exists() and not Path(given).is_symlink():
            raise RunError(f"input not found: {given}")
    out_dir = cfg.out_dir
    try:
        with RunLock(out_dir):
            return _run_locked(cfg, inputs, out_dir)
    except (LockError, ExecutorError) as e:
        raise RunError(str(e)) from None


def _run_locked(cfg: RunConfig, inputs: list[str], out_dir: Path) -> dict[str, Any]:
    # season-level stages imported here, not at module level: worker processes import this
    # module for process_file and need neither (sklearn, scipy, openpyxl: ~2 s and ~130 MB each)
    from .analyze import analyze
    from .digest import write_digest

    started = datetime.now(UTC)
    t_start = time.perf_counter()
    staging = prepare(out_dir)
    configure_ingest(cfg.config)  # [ingest] of --config (table columns, limits), workers included
    files: list[tuple[str, str, str | None]] = []
    for given in inputs:
        root = str(Path(given)) if Path(given).is_dir() else None
        files += [(str(path), source, root) for path, source in discover([given])]

    cache_root = cfg.cache_dir or Path(os.environ.get("HUIBIAN_CACHE") or out_dir / ".cache")
    cache = Cache(cache_root, enabled=cfg.use_cache)
    settings = json.dumps(cfg.config, sort_keys=True, ensure_ascii=False, default=str)  # in the key
    timings: dict[str, float] = {}
    warnings: list[str] = []
    results: list[Tables | None] = [None] * len(files)
    keys: list[str | None] = [None] * len(files)
    todo: list[int] = []
    reused = 0
    with RunProgress(cfg.progress) as progress:
        # 1. per-document stages: reuse what the cache holds, run the rest on the executor
        t0 = time.perf_counter()
        task = progress.stage("documents", len(files))
        for i, (path, source, _root) in enumerate(files):
            digest = file_digest(Path(path)) if cache.enabled else None
            keys[i] = entry_key(digest, source, settings) if digest else None
            hit = cache.get(keys[i])
            if hit is None:
                todo.append(i)
                continue
            results[i] = hit["tables"]
            warnings += hit["warnings"]
            reused += 1
            progress.advance(task, reused=1)
        executor_name, workers = "none", 0
        if todo:
            jobs = cfg.n_jobs
            if cfg.executor == "local":
                # a few small files are not worth starting worker processes for
                size = sum(_size(files[i][0]) for i in todo)
                jobs = 1 if size < cfg.parallel_min_bytes else min(jobs, len(todo))
            try:
                ex = make_executor(cfg.executor, jobs, cfg.scheduler, initializer=warm_up)
            except ExecutorError as e:
                if cfg.executor != "local":
                    raise
                warnings.append(f"running in this process only: {e}")
                ex = make_executor("local", 1)
            executor_name, workers = ex.name, ex.workers
            try:
                todo_warnings: dict[int, list[str]] = {}
                for k, value in ex.imap(process_file, [files[i] for i in todo]):
                    i = todo[k]
                    if isinstance(value, BaseException):
                        value = failed_file(files[i][1], value)
                    elif not _transient(value["tables"]):
                        cache.put(keys[i], value)
                    results[i] = value["tables"]
                    todo_warnings[i] = value["warnings"]
                    for stage, secs in value["timings"].items():
                        timings[stage] = timings.get(stage, 0.0) + secs
                    progress.advance(task)
            finally:
                ex.close()
            warnings += [w for i in sorted(todo_warnings) for w in todo_warnings[i]]
        timings["documents"] = time.perf_counter() - t0

        parts = [r for r in results if r is not None]
        del results
        frames = frames_from_parts(parts)
        del parts
        if cfg.corrections is not None:
            from .tag.corrections import apply_corrections

            frames["sentences"] = apply_corrections(frames["sentences"], cfg.corrections)

        # 2. season-level analysis (always re-done: it depends on every file)
        task = progress.stage("analyze", None)
        t0 = time.perf_counter()
        frames.update(analyze(frames))
        timings["analyze"] = time.perf_counter() - t0
        progress.done(task)

        docs = frames["documents"]
        meta = {
            "season": cfg.season or "latest",
            "inputs": len(docs), "ok": int((docs["status"] == "ok").sum()),
            "rejected": int((docs["status"] == "rejected").sum()),
            "sentences": len(frames["sentences"]),
        }
        task = progress.stage("write", None)
        t0 = time.perf_counter()
        for name, df in frames.items():
            write_table(df, staging / (f"{name}.csv" if name == "documents" else f"{name}.parquet"))
        timings["write"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_digest(frames, meta, staging)
        timings["digest"] = time.perf_counter() - t0
        progress.done(task)

    n_chars = int(pd.to_numeric(docs["n_chars"], errors="coerce").fillna(0).sum())
    del frames, docs
    timings["total"] = time.perf_counter() - t_start
    manifest = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
        "files_in": len(files),
        "reused": reused,
        "processed": len(todo),
        "n_chars": n_chars,
        "input_paths": inputs,
        "executor": executor_name,
        "workers": workers,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "chars_per_second": round(n_chars / timings["total"]) if timings["total"] > 0 else None,
        "warnings": warnings,
        "versions": _versions(),
        "files": sorted([p.name for p in staging.iterdir()] + ["manifest.json"]),
    }
    write_json(manifest, staging / "manifest.json")
    publish(staging, out_dir)
    if cache.enabled and cfg.cache_dir is None and not os.environ.get("HUIBIAN_CACHE"):
        cache.prune_other_versions()  # the folder's own cache: old pipeline versions are dead weight
    manifest["out_dir"] = str(out_dir)
    return manifest


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"huibian": __version__, "pipeline": pipeline_fingerprint()[:16]}
    for pkg in ("jieba", "pandas", "pyarrow", "scikit-learn", "opencc"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def load_frames(out_dir: Path) -> dict[str, pd.DataFrame]:
    """Read a run's tables back (documents.csv and every *.parquet)."""
    frames: dict[str, pd.DataFrame] = {}
    if (out_dir / "documents.csv").exists():
        frames["documents"] = pd.read_csv(out_dir / "documents.csv", keep_default_na=False)
    for p in sorted(out_dir.glob("*.parquet")):
        frames[p.stem] = pd.read_parquet(p)
    return frames
