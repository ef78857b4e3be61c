"""``huibian run``: the stages wired together over a season of files.

Per input file (in worker processes or Dask tasks): ingest → normalize → structure → segment →
tag, giving that file's rows — the unit of work, of caching and of parallelism.  Across the
season: analyze → digest.  A run holds a lock on its output folder, reuses cached per-file results
whose bytes and pipeline version are unchanged, puts results back in input order (so outputs are
byte-identical however the work was spread), writes to a staging folder and publishes it at the end.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import tempfile
import time
from collections.abc import Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import __version__, server
from .cache import DigestIndex, entry_key, parts_fingerprint, pipeline_fingerprint
from .executor import ExecutorError, make_executor
from .ingest import configure as configure_ingest
from .ingest import discover, ingest_file
from .lock import LockError, RunLock
from .model import Block, Document, stable_id
from .normalize import normalize
from .outputs import STAGING_PREFIX, prepare, publish, write_json, write_table
from .progress import RunProgress
from .resources import models_loaded, release_models
from .season import (
    RUN_NS,
    SENTENCES,
    Entry,
    EntryStore,
    FolderMemo,
    PartsBlob,
    SeasonParts,
    file_sentences,
    pack_parts,
    sentences_identity,
)
from .segment import segment
from .structure import structure
from .tables import document_rows, to_frames
from .tag import tag

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO_ROOT / "corpus" / "sample"

#: the season tables the analysis makes (written by the run as each is made)
ANALYSIS_TABLES = frozenset({"matrix", "keywords", "problems", "copies", "figures"})

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
    """The task executors run: picklable in, picklable out (columnar rows, the file's parts for
    the season-level stages, warnings, timings)."""
    timings: dict[str, float] = {}
    warnings: list[str] = []
    rows = process_path(Path(path), source, Path(root) if root else None, timings, warnings)
    t0 = time.perf_counter()
    parts = file_parts(to_frames([rows]), warnings)
    timings["parts"] = time.perf_counter() - t0
    return {"tables": columnar(rows), "warnings": warnings, "timings": timings,
            "parts": parts, "parts_version": parts_fingerprint()}


def _part_builders() -> list[tuple[str, Callable[[dict[str, pd.DataFrame]], dict[str, Any]]]]:
    from . import analyze, digest

    return [("analyze", analyze.document_parts), ("digest", digest.document_parts)]


def file_parts(doc: dict[str, pd.DataFrame], warnings: list[str] | None = None
               ) -> dict[str, dict[str, Any]]:
    """One file's parts for the season-level stages ({namespace: {name: value}}).

    A stage failing on one file costs that file's part (the combine sees it missing), reported
    as a warning, never the run.
    """
    out: dict[str, dict[str, Any]] = {}
    for ns, build in _part_builders():
        try:
            out[ns] = build(doc)
        except Exception as e:  # noqa: BLE001 - one file's part, not the season
            out[ns] = {}
            if warnings is not None:
                src = doc["documents"]["source"].iloc[0] if len(doc["documents"]) else "?"
                warnings.append(f"{src}: {ns} parts failed: {type(e).__name__}: {e}")
    return out


def warm_up() -> None:
    """Load jieba's dictionary, OpenCC and the tag model once in a fresh worker, before any file."""
    doc = Document(doc_id="warm-up", source="warm-up.txt", format="txt", blocks=[
        Block(text="一、主要成绩", para=0, kind="heading", level=1),
        Block(text="今年我们完成了各项工作任务，但仍存在不足。", para=1),
    ])
    try:
        file_parts(to_frames([document_rows(process_document(doc))]))  # imports the stages' code
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


def _table_file(name: str) -> str:
    return f"{name}.csv" if name == "documents" else f"{name}.parquet"


def _run_locked(cfg: RunConfig, inputs: list[str], out_dir: Path) -> dict[str, Any]:
    # season-level stages imported here, not at module level: they are not needed to start
    from .analyze import analyze_parts
    from .digest import page_body, write_digest

    started = datetime.now(UTC)
    t_start = time.perf_counter()
    staging = prepare(out_dir)
    configure_ingest(cfg.config)  # [ingest] of --config (table columns, limits), workers included
    files: list[tuple[str, str, str | None]] = []
    for given in inputs:
        root = str(Path(given)) if Path(given).is_dir() else None
        files += [(str(path), source, root) for path, source in discover([given])]

    cache_root = cfg.cache_dir or Path(os.environ.get("HUIBIAN_CACHE") or out_dir / ".cache")
    fingerprint, parts_version = pipeline_fingerprint(), parts_fingerprint()
    store = EntryStore(cache_root, fingerprint[:16])
    # results that must not be reused (cache off, unreadable bytes, a parser timing out) still
    # go through an entry, in a scratch store the publish step removes with the staging folder
    scratch = EntryStore(Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}scratch-", dir=out_dir)),
                         "entries")
    settings = json.dumps(cfg.config, sort_keys=True, ensure_ascii=False, default=str)  # in the key
    timings: dict[str, float] = {}
    peak: dict[str, float] = {}  # this process's peak RSS (MiB) once each stage is done
    table_timings: dict[str, float] = {}  # seconds of each analysis table
    digest_timings: dict[str, float] = {}  # seconds of each deliverable
    entries: list[Entry | None] = [None] * len(files)
    keys: list[str | None] = [None] * len(files)
    todo: list[int] = []
    reused = 0
    with RunProgress(cfg.progress) as progress:
        # 1. per-document stages: reuse what the cache holds, run the rest on the executor
        t0 = time.perf_counter()
        task = progress.stage("documents", len(files))
        digests = DigestIndex(cache_root / "digests.pkl" if cfg.use_cache else None)
        for i, (path, source, _root) in enumerate(files):
            digest = digests.digest(Path(path)) if cfg.use_cache else None
            keys[i] = entry_key(digest, source, settings) if digest else None
            hit = store.get(keys[i]) if keys[i] else None
            if hit is None:
                todo.append(i)
                continue
            entries[i] = hit
            reused += 1
            progress.advance(task, reused=1)
        executor_name, workers = "none", 0
        if todo:
            executor_name, workers = _process_files(cfg, files, todo, keys, entries, store,
                                                    scratch, parts_version, timings, progress, task)
        if executor_name == "inprocess":
            release_models()  # jieba, OpenCC, the tag model: the combines reuse their memory
        timings["documents"] = time.perf_counter() - t0
        peak["documents"] = _peak_rss_mib()

        # 2. per-file parts for the season-level stages (made by the workers; made here only for
        #    files whose corrections changed or whose parts are of older season-level code)
        t0 = time.perf_counter()
        done = [e for e in entries if e is not None]
        corrections = _corrections(cfg)
        part_warnings: list[str] = []
        if not corrections:
            _remake_parts_in_parallel(cfg, done, parts_version, part_warnings)
        blobs = [_parts_blob(e, parts_version, corrections, scratch.root, part_warnings)
                 for e in done]
        if models_loaded():  # parts re-made here loaded jieba's tables: free them for the combines
            release_models()
        timings["parts"] = timings.get("parts", 0.0) + time.perf_counter() - t0

        small = [e.load() for e in done]
        warnings = [w for x in small for w in x["warnings"]] + part_warnings
        frames = frames_from_parts([dict(x["tables"]) for x in small])
        del small
        frames.pop("sentences", None)  # never held whole: streamed from the entries below

        memo = FolderMemo(cache_root / f"memo-{parts_version[:16]}") if cfg.use_cache else None
        # sentences.parquet is written from the entries in a thread while the analysis runs
        # (Parquet encoding releases the GIL); its row groups are kept in the memo, by the
        # files' entries (only those of the cache name their content)
        at = [i for i, e in enumerate(entries) if e is not None]
        cached = [keys[i] is not None and e.folder == store.entry(str(keys[i])).folder
                  for i, e in zip(at, done, strict=True)]
        writing = ThreadPoolExecutor(1, thread_name_prefix="sentences")
        sentences_done = writing.submit(
            write_sentences, done, blobs, staging / "sentences.parquet",
            names=[files[i][1] for i in at], memo=memo,
            keys=[sentences_identity(e, b) if ok else None
                  for e, b, ok in zip(done, blobs, cached, strict=True)])
        writing.shutdown(wait=False)

        # with two cores or more, the analysis and the digest each run half their work in a
        # forked child (pipeline.forked): they are mostly pure Python
        split = cfg.n_jobs > 1 and len(done) > 1

        # The combines allocate millions of small objects and free them in bulk; the cyclic
        # collector would walk the whole heap again and again meanwhile (measured: ~0.2 s spikes),
        # so it is paused for the season-level stages and run once after.
        gc.disable()
        try:
            # 3. season-level analysis: combines of the files' parts, memoised by content
            task = progress.stage("analyze", None)
            t0 = time.perf_counter()
            # each table is written as soon as it is made, in a thread (Parquet encoding releases
            # the GIL): this process's tables while the forked child is still making its own;
            # meanwhile, still waiting for the child, this thread makes the page's text
            writer = ThreadPoolExecutor(1, thread_name_prefix="tables")
            writes: list[Any] = []

            def write_now(name: str, df: pd.DataFrame) -> None:
                writes.append(writer.submit(write_table, df, staging / _table_file(name)))

            digest_parts = SeasonParts(done, blobs, "digest")
            page: list[Any] = []

            def page_text() -> None:
                t = time.perf_counter()
                try:
                    page.append(page_body(digest_parts))
                except Exception:  # noqa: BLE001 - made again by the digest, which reports it
                    return
                digest_timings["page text"] = time.perf_counter() - t

            frames.update(analyze_parts(
                SeasonParts(done, blobs, "analyze"), frames, memo, timings=table_timings,
                fork=split, ready=write_now, meanwhile=page_text))
            # (the page's text is the digest's work, made here while waiting: counted there)
            timings["analyze"] = time.perf_counter() - t0 - digest_timings.get("page text", 0.0)
            peak["analyze"] = _peak_rss_mib()
            progress.done(task)

            docs = frames["documents"]
            meta = {
                "season": cfg.season or "latest",
                "inputs": len(docs), "ok": int((docs["status"] == "ok").sum()),
                "rejected": int((docs["status"] == "rejected").sum()),
                # the rows sentences.parquet is getting (one per sentence of each document): the
                # digest need not wait for the writer to have counted them
                "sentences": int(pd.to_numeric(docs["n_sentences"], errors="coerce").fillna(0).sum()),
            }
            t0 = time.perf_counter()
            for name, df in frames.items():
                if name in ANALYSIS_TABLES:
                    continue  # (written by ``write_now``)
                write_table(df, staging / _table_file(name))
            # every write done before the digest forks its child: a fork must not catch another
            # thread inside Arrow's or the file's locks
            for done_writing in writes:
                done_writing.result()
            writer.shutdown()
            timings["write"] = time.perf_counter() - t0
            task = progress.stage("digest", None)
            t0 = time.perf_counter()
            if sentences_done.done():  # (the pool is the writer's too while it runs)
                pa.default_memory_pool().release_unused()  # what the analysis freed, for the digest
            write_digest(frames, meta, staging, digest_parts, memo, fork=split,
                         timings=digest_timings, body=page[0] if page else None)
            timings["digest"] = time.perf_counter() - t0 + digest_timings.get("page text", 0.0)
            peak["digest"] = _peak_rss_mib()
            peak["child processes"] = _peak_rss_mib(children=True)
            progress.done(task)
            t0 = time.perf_counter()
            meta["sentences"] = sentences_done.result()  # the rows written, for the manifest
            timings["write"] += time.perf_counter() - t0  # what is left of it after the digest
        finally:
            # (no collection now: a full one walks the season's millions of objects, ~0.1–0.2 s,
            # and a run's process mostly ends here; a long-lived caller's collector runs in time)
            gc.enable()

    n_chars = int(pd.to_numeric(docs["n_chars"], errors="coerce").fillna(0).sum())
    folders = [e.folder for e in done]
    blob_paths = [b.path for b in blobs if b is not None]
    del frames, docs, blobs, done, entries
    timings["total"] = time.perf_counter() - t_start
    manifest = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
        "files_in": len(files),
        "reused": reused,
        "processed": len(todo),
        "hashed": digests.hashed,  # input files read to find their digest (the rest: unchanged stat)
        "n_chars": n_chars,
        "input_paths": inputs,
        "executor": executor_name,
        "workers": workers,
        "warm_server": server.served_by,  # pid of the warm server this run was forked from, if any
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "analyze_timings": {k: round(v, 3) for k, v in table_timings.items()},
        "digest_timings": {k: round(v, 3) for k, v in digest_timings.items()},
        "chars_per_second": round(n_chars / timings["total"]) if timings["total"] > 0 else None,
        "peak_rss_mib": peak,
        "cpu_seconds": _cpu_seconds(),
        "memo": {"hits": memo.hits, "misses": memo.misses} if memo is not None else None,
        "warnings": warnings,
        "versions": _versions(),
        "files": sorted([p.name for p in staging.iterdir()] + ["manifest.json"]),
    }
    write_json(manifest, staging / "manifest.json")
    publish(staging, out_dir)  # also removes the scratch store (a staging-prefixed folder)
    digests.save()
    if cfg.use_cache:
        server.note_season(folders, blob_paths)  # the warm server keeps these in memory
    if memo is not None:
        memo.prune()
    if cfg.use_cache and cfg.cache_dir is None and not os.environ.get("HUIBIAN_CACHE"):
        # the folder's own cache: entries and memos of other versions are dead weight
        store.prune({store.folder.name, f"memo-{parts_version[:16]}"})
    manifest["out_dir"] = str(out_dir)
    return manifest


def _process_files(cfg: RunConfig, files: list[tuple[str, str, str | None]], todo: list[int],
                   keys: list[str | None], entries: list[Entry | None], store: EntryStore,
                   scratch: EntryStore, parts_version: str, timings: dict[str, float],
                   progress: RunProgress, task: Any) -> tuple[str, int]:
    """Run the per-document stages on the files ``todo`` and store each result as an entry (in
    the cache, or in the scratch store when it must not be reused) as soon as it arrives."""
    jobs = cfg.n_jobs
    if cfg.executor == "local":
        # a few small files are not worth starting worker processes for
        size = sum(_size(files[i][0]) for i in todo)
        jobs = 1 if size < cfg.parallel_min_bytes else min(jobs, len(todo))
    fallback: list[str] = []
    try:
        ex = make_executor(cfg.executor, jobs, cfg.scheduler, initializer=warm_up)
    except ExecutorError as e:
        if cfg.executor != "local":
            raise
        fallback.append(f"running in this process only: {e}")
        ex = make_executor("local", 1)
    try:
        for k, value in ex.imap(process_file, [files[i] for i in todo]):
            i = todo[k]
            if isinstance(value, BaseException):
                value = failed_file(files[i][1], value)
            value["warnings"] = fallback + value["warnings"]
            fallback = []
            parts = value.pop("parts", None)
            if value.pop("parts_version", None) != parts_version:
                parts = None  # made by other code (a stale Dask worker): made again here
            # stored in the output's own schema: streaming sentences.parquet then casts nothing
            value["tables"]["sentences"] = _conform(
                value["tables"].get("sentences", pa.table({})), sentence_schema())
            key = keys[i]
            if key is not None and not _transient(value["tables"]):
                entries[i] = store.put(key, value, parts, parts_version)
            else:
                entries[i] = scratch.put(stable_id(f"{i}\x1f{files[i][1]}"), value, parts,
                                         parts_version)
            for stage, secs in value["timings"].items():
                timings[stage] = timings.get(stage, 0.0) + secs
            progress.advance(task)
    finally:
        ex.close()
    return ex.name, ex.workers


# ---------------------------------------------------------------- parts and corrections

def _corrections(cfg: RunConfig) -> list[dict[str, str]] | None:
    if cfg.corrections is None:
        return None
    from .tag.corrections import read_corrections

    try:
        return read_corrections(Path(cfg.corrections))
    except ValueError as e:
        raise RunError(str(e)) from None


def remake_parts(folder: str, sentences: pa.Table | None = None) -> dict[str, Any]:
    """An entry's parts made again from its stored rows (the season-level code changed), with
    ``sentences`` instead of its own when given (corrected): {"parts": ..., "warnings": [...]}.
    The pool's task, and the main process's for the few it makes itself."""
    entry = Entry(Path(folder))
    tables = dict(entry.load()["tables"])
    tables["sentences"] = entry.sentences() if sentences is None else sentences
    warnings: list[str] = []
    return {"parts": file_parts(frames_from_parts([tables]), warnings), "warnings": warnings}


def _remake_parts_in_parallel(cfg: RunConfig, entries: list[Entry], parts_version: str,
                              warnings_out: list[str]) -> None:
    """After an upgrade of the analysis or digest code every entry's parts are stale: re-made on a
    pool of local worker processes (~60 ms of CPU per report) rather than one by one here. Entries
    live in this machine's cache, so the pool is local whatever executor the run uses; a few
    stale entries are left to ``_parts_blob`` in this process (a pool costs ~2 s to start)."""
    stale = [e for e in entries if not e.parts_path(parts_version).is_file()]  # a stat each
    size = sum(_size(str(e.folder / "sentences.arrow")) for e in stale)
    jobs = min(cfg.n_jobs, len(stale))
    if jobs < 2 or size < cfg.parallel_min_bytes:
        return
    try:
        ex = make_executor("local", jobs)
    except ExecutorError:
        return  # made one by one in this process instead
    try:
        for k, value in ex.imap(remake_parts, [(str(e.folder),) for e in stale]):
            if isinstance(value, BaseException):
                continue  # _parts_blob makes this one here and reports what goes wrong
            try:
                stale[k].put_parts(parts_version, value["parts"])
            except OSError:
                continue  # an unwritable cache: _parts_blob keeps them in the scratch folder
            warnings_out.extend(value["warnings"])
    finally:
        ex.close()


def _parts_blob(entry: Entry, parts_version: str, corrections: list[dict[str, str]] | None,
                scratch: Path, warnings_out: list[str] | None = None) -> PartsBlob:
    """The entry's parts for this season-level code and these corrections, made when missing."""
    corrected = _corrected_sentences(entry, corrections) if corrections else None
    version = parts_version
    if corrected is not None:
        version = stable_id(parts_version, corrected[1], n=24)
    blob = entry.parts(version)
    if blob is not None:
        return blob
    made = remake_parts(str(entry.folder), corrected[0] if corrected is not None else None)
    parts = made["parts"]
    if corrected is not None:
        parts[RUN_NS] = {SENTENCES: corrected[0]}
    if warnings_out is not None:
        warnings_out.extend(made["warnings"])
    try:
        return entry.put_parts(version, parts)
    except OSError:  # a read-only or full cache: this run keeps them in its scratch folder
        path = scratch / f"parts-{stable_id(str(entry.folder), version)}.bin"
        path.write_bytes(pack_parts(parts))
        return PartsBlob(path)


def _corrected_sentences(entry: Entry, corrections: list[dict[str, str]]
                         ) -> tuple[pa.Table, str] | None:
    """(the file's sentences with the editors' corrections applied, a digest of those that
    applied), or None when none applies to this file."""
    from .tag.corrections import doc_name, matching_corrections

    sentences = entry.sentences()
    if not sentences.num_rows or "source" not in sentences.column_names:
        return None
    names = {doc_name(s) for s in sentences.column("source").unique().to_pylist() if s}
    if not any(not r["source"] or doc_name(r["source"]) in names for r in corrections):
        return None  # no correction names this file, and none applies to every file
    frame = frames_from_parts([{"sentences": sentences}])["sentences"]
    new, applied = matching_corrections(frame, corrections)
    if not applied:
        return None
    table = pa.Table.from_pandas(new, schema=sentence_schema(), preserve_index=False)
    return table, stable_id(*applied)


# ---------------------------------------------------------------- sentences.parquet

LONG_TEXT_COLUMNS = frozenset({"text", "tokens", "section"})
#: bump when the encoding of sentences.parquet's row groups changes (their memo keys)
ROW_GROUP_FORMAT = "1"


def sentence_schema() -> pa.Schema:
    """The Arrow schema (with pandas metadata) of the contract's sentences table, exactly as
    ``DataFrame.to_parquet`` writes ``to_frames``' sentences, so readers get the same dtypes."""
    return _sentence_schema()


@functools.cache
def _sentence_schema() -> pa.Schema:
    from .model import Sentence

    doc = Document(doc_id="d", source="s.txt", format="txt")
    doc.sentences = [Sentence(text="x", idx=0, para=0, article_id="a", page=1, phys_page=1)]
    sample = to_frames([document_rows(doc)])["sentences"]
    return pa.Schema.from_pandas(sample, preserve_index=False)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.equals(schema, check_metadata=True):
        return table
    n = table.num_rows
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _sentence_writer_options(schema: pa.Schema) -> dict[str, Any]:
    # dictionaries and min/max statistics only where they pay (ids, labels, numbers), never for
    # the long texts; LZ4 (~half the write time of Snappy at nearly its size) only for the texts:
    # on the rest it saved 2 % of the file for 20 % of the write (measured, 1,000 reports)
    small = [f.name for f in schema if f.name not in LONG_TEXT_COLUMNS]
    return {"compression": {f.name: "lz4" if f.name in LONG_TEXT_COLUMNS | {"evidence"} else "none"
                            for f in schema},
            "use_dictionary": small, "write_statistics": small}


def write_sentences(entries: list[Entry], blobs: list[PartsBlob | None], path: Path,
                    names: Sequence[str] | None = None, keys: Sequence[str | None] | None = None,
                    memo: MutableMapping[str, Any] | None = None) -> int:
    """sentences.parquet from the entries (corrected where corrections apply), in input order;
    returns the number of rows. One row group per run of files (``rowgroups.groups`` over the
    files' ``names``), each encoded alone and kept in ``memo`` under its files' ``keys`` (a file
    without a key, e.g. not cached, has its row group encoded every time), then spliced: a rerun
    after one file changed encodes one row group and copies the others' bytes."""
    import pyarrow.parquet as pq

    from . import rowgroups

    schema = sentence_schema()
    options = _sentence_writer_options(schema)
    names = names if names is not None else [str(i) for i in range(len(entries))]
    version = stable_id(ROW_GROUP_FORMAT, pa.__version__, schema.to_string(show_schema_metadata=True),
                        json.dumps(options, sort_keys=True), n=24)

    def group(span: range) -> tuple[str | None, Callable[[], pa.Table]]:
        def make() -> pa.Table:
            tables = [_conform(file_sentences(entries[i], blobs[i]), schema) for i in span]
            tables = [t for t in tables if t.num_rows]
            return pa.concat_tables(tables) if tables else schema.empty_table()

        if keys is None or any(keys[i] is None for i in span):
            return None, make
        return f"sentences-rowgroup-{version}-" + stable_id(*(str(keys[i]) for i in span), n=32), make

    pieces = rowgroups.cached_pieces((group(span) for span in rowgroups.groups(names)), memo,
                                     **options)
    with path.open("wb") as fh:
        try:
            return rowgroups.splice(pieces, fh)
        except rowgroups.NoPieces:  # not one sentence in the season (nothing written yet)
            pq.write_table(schema.empty_table(), fh, **options)
            return 0


def _peak_rss_mib(children: bool = False) -> float:
    """This process's peak resident memory so far (MiB), or with ``children`` the largest of its
    finished child processes' (worker processes, the forked halves of the analysis and digest)."""
    try:
        import resource

        who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
        return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # KiB on Linux
    except (ImportError, OSError):
        return 0.0


def _cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) of this process and of its finished child processes (workers,
    the forked halves): on a busy machine a steadier measure of a run's work than its wall time."""
    try:
        import resource
    except ImportError:
        return {}
    out = {}
    for name, who in (("run", resource.RUSAGE_SELF), ("child processes", resource.RUSAGE_CHILDREN)):
        r = resource.getrusage(who)
        out[name] = round(r.ru_utime + r.ru_stime, 3)
    return out


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
