"""Digest: the season's findings as files people already open.

``digest.html`` (browser, self-contained), ``digest.docx`` (Word), ``tables.xlsx`` (Excel, pandas)
and ``corpus.qdpx`` (REFI-QDA: QualCoder, NVivo, ATLAS.ti, MAXQDA). ``huibian compile`` (in
``compile.py``) makes an anthology volume from a run.

Issue 8: the run never holds the season's sentences. Per input file, :func:`document_parts` makes
what the deliverables need from that file (cached with it); :func:`write_digest` combines the files'
parts with the season's small tables. Old callers pass whole frames and get the same files: the parts
are then made here from ``frames["sentences"]`` (one implementation).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from ..forked import Beside
from ..season import FrameParts, docs_from_frames
from .common import (
    BODY_PART,
    ROLE_NAMES,
    ROLES,
    SENTENCES,
    DocTables,
    SeasonBody,
    body_part,
    problem_clusters,
    records,
    source_names,
    unit_profiles,
)

__all__ = ["write_digest", "document_parts", "render_html", "ROLE_NAMES", "ROLES", "records", "unit_profiles"]



def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any],
                parts: Sequence[Mapping[str, Any]] | None = None) -> str:
    from .html import render_html as _render

    return _render(frames, meta, parts=parts)


def _part_makers() -> list[tuple[str, Callable[[DocTables], Any]]]:
    """(key, maker) of each deliverable's per-file part."""
    from . import qdpx, xlsx

    return [(BODY_PART, lambda d: body_part(d[SENTENCES])), (xlsx.PART_KEY, xlsx.document_part),
            (qdpx.PART_KEY, qdpx.document_part)]


def document_parts(doc: DocTables) -> dict[str, Any]:
    """One input file's parts for the digest (INTERFACE.md): ``body`` (digest.html/.docx: report-text
    masks, unit × role counts, coded rows' unit/role/confidence, quote candidates — a few KB), and the
    tables.xlsx and corpus.qdpx fragments under ``xlsx`` and ``qdpx``. Picklable and deterministic."""
    return {key: make(doc) for key, make in _part_makers()}


def parts_from_frames(frames: dict[str, pd.DataFrame]) -> list[FrameParts]:
    """Whole frames (old callers) → the per-file parts the run would pass, "sentences" included (as an
    Arrow table made from the file's rows when read)."""
    return [FrameParts(document_parts(d), d[SENTENCES]) for d in docs_from_frames(frames)]


def _writers() -> list[tuple[str, Callable[[dict[str, pd.DataFrame], dict[str, Any], Path], None]]]:
    """The deliverables as (file name, write(frames, meta, path)) on whole frames (benchmarks)."""
    from .docx import write_docx
    from .html import write_html
    from .qdpx import write_qdpx
    from .xlsx import write_xlsx

    return [("digest.html", write_html), ("digest.docx", write_docx),
            ("tables.xlsx", lambda f, _m, p: write_xlsx(f, p)), ("corpus.qdpx", write_qdpx)]


def write_digest(frames: dict[str, pd.DataFrame], meta: dict[str, Any], folder: Path,
                 parts: Sequence[Mapping[str, Any]] | None = None,
                 memo: MutableMapping[str, Any] | None = None, fork: bool = False,
                 timings: dict[str, float] | None = None, body: SeasonBody | None = None
                 ) -> list[str]:
    """Write every deliverable into ``folder``; returns the names written.

    ``frames``: documents, articles, toc and the analysis tables (no sentences needed); ``parts``: one
    mapping per input file in input order (:func:`document_parts` plus "sentences", a pyarrow Table).
    Without parts they are made from ``frames["sentences"]``. ``memo`` (optional, persistent across
    runs) keeps the page's charts and goes to the tables.xlsx and corpus.qdpx writers that take one.
    The HTML and the DOCX share one :class:`SeasonBody` and one set of
    unit profiles (quotes fetched once).

    One deliverable failing (say a table another stage is still reshaping) must not cost the others
    or the run: it is reported on stderr and left out.

    ``fork``: the two archives are written by a forked child meanwhile (:mod:`pipeline.forked`;
    with a memo that cannot take a child's use back, e.g. a dict, here). ``timings``: seconds per
    deliverable, filled in when given. ``body``: the page's text already combined from these parts
    (:func:`page_body`, made while the analysis was waiting), else made here.
    """
    from . import docx, html
    from .qdpx import write_qdpx
    from .xlsx import write_xlsx

    if parts is None:
        parts = parts_from_frames(frames)
    shared: dict[str, Any] = {}

    def page_data() -> dict[str, Any]:
        if not shared:
            page = body if body is not None else page_body(parts)
            per_role, _ = html.prepare(page)  # (done already by page_body: its rows are read)
            shared["body"] = page
            shared["profiles"] = unit_profiles(frames, per_role=per_role, body=body)
            if html.MAX_MEMBERS == docx.MAX_DOCX_MEMBERS and html.MAX_CLUSTERS >= docx.MAX_DOCX_CLUSTERS:
                # one grouping of the problems for both (the DOCX shows the first of the same list)
                shared["clusters"] = problem_clusters(frames, source_names(frames), html.MAX_CLUSTERS,
                                                      html.MAX_MEMBERS)
        return shared

    writers: list[tuple[str, Callable[[Path], None]]] = [
        ("digest.html", lambda p: html.write_html(frames, meta, p, parts=parts, memo=memo, **page_data())),
        ("digest.docx", lambda p: docx.write_docx(frames, meta, p, parts=parts, **page_data())),
        ("tables.xlsx", lambda p: write_xlsx(frames, p, parts=parts, memo=memo)),
        ("corpus.qdpx", lambda p: write_qdpx(frames, meta, p, parts=parts)),
    ]

    secs = timings if timings is not None else {}

    def write(name: str, writer: Callable[[Path], None]) -> bool:
        t0 = time.perf_counter()
        try:
            writer(folder / name)
            secs[name] = time.perf_counter() - t0
            return True
        except Exception as e:  # noqa: BLE001 - a broken deliverable is reported, the run goes on
            (folder / name).unlink(missing_ok=True)
            print(f"huibian: could not write {name}: {type(e).__name__}: {e}", file=sys.stderr)
            return False

    if fork:
        return _write_forked(writers, write, memo, secs)
    # the two archives are mostly zlib and Arrow work, which release the GIL: written in a thread
    # beside the page and the Word file, they cost little on a second core. An archive the thread
    # has not started when the page and the Word file are done is written here instead (the
    # workbook takes longer than the page: corpus.qdpx is then no longer queued behind it)
    with ThreadPoolExecutor(1, thread_name_prefix="digest") as pool:
        archives = [(name, w, pool.submit(write, name, w)) for name, w in writers[2:]]
        ok = {name: write(name, w) for name, w in writers[:2]}
        for name, w, fut in reversed(archives):  # the last queued first: it is the one not started
            if fut.cancel():
                ok[name] = write(name, w)
        ok.update((name, fut.result()) for name, _, fut in archives if name not in ok)
    return [name for name, _ in writers if ok[name]]


def page_body(parts: Sequence[Mapping[str, Any]]) -> SeasonBody:
    """The season's text as the page and the Word file need it, its quotes' and search rows read:
    it needs the files' parts only, not the analysis tables, so a run makes it while it waits."""
    from . import html

    body = SeasonBody(parts)
    html.prepare(body)
    return body


def _write_forked(writers: list[tuple[str, Callable[[Path], None]]],
                  write: Callable[[str, Callable[[Path], None]], bool],
                  memo: MutableMapping[str, Any] | None, secs: dict[str, float]) -> list[str]:
    """The archives (tables.xlsx, corpus.qdpx) in a forked child, the page and the Word file here:
    each half is mostly Python, so two processes, not two threads, use two cores."""
    def archives() -> tuple[dict[str, bool], dict[str, float]]:
        done = {name: write(name, w) for name, w in writers[2:]}
        return done, {n: secs[n] for n in done if n in secs}

    with Beside(archives, memo=memo) as beside:
        ok = {name: write(name, w) for name, w in writers[:2]}
        done, child_secs = beside.result()
    ok.update(done)
    secs.update(child_secs)
    return [name for name, _ in writers if ok[name]]
