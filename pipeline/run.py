"""``huibian run``: the stages wired together over a season of files.

Per document: ingest → normalize → structure → segment → tag, giving that document's rows.
Across the season: analyze → digest. Outputs are written to a staging folder and published.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .analyze import analyze
from .digest import write_digest
from .ingest import discover, ingest_file
from .model import Document
from .normalize import normalize
from .outputs import prepare, publish, write_json, write_table
from .segment import segment
from .structure import structure
from .tables import document_rows, to_frames
from .tag import tag

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO_ROOT / "corpus" / "sample"

#: the per-document stages, in order; each is Document -> Document
STAGES = (("normalize", normalize), ("structure", structure), ("segment", segment), ("tag", tag))


class RunError(Exception):
    """The run itself cannot proceed (missing input, unwritable output): one line for the user."""


@dataclass
class RunConfig:
    inputs: list[str] = field(default_factory=list)
    out: Path | None = None
    season: str | None = None
    jobs: int = 1
    config: dict[str, Any] = field(default_factory=dict)
    corrections: Path | None = None
    executor: str = "local"
    scheduler: str | None = None
    use_cache: bool = True

    @property
    def out_dir(self) -> Path:
        return self.out or Path("outputs") / (self.season or "latest")


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


def process_path(path: Path, source: str, root: Path | None = None,
                 timings: dict[str, float] | None = None) -> dict[str, list[dict[str, Any]]]:
    t0 = time.perf_counter()
    doc = ingest_file(path, source, root=root)
    if timings is not None:
        timings["ingest"] = timings.get("ingest", 0.0) + time.perf_counter() - t0
    return document_rows(process_document(doc, timings))


def run(cfg: RunConfig) -> dict[str, Any]:
    started = datetime.now(UTC)
    inputs = cfg.inputs or [str(SAMPLE_CORPUS)]
    for given in inputs:
        if not Path(given).exists() and not Path(given).is_symlink():
            raise RunError(f"input not found: {given}")
    out_dir = cfg.out_dir
    staging = prepare(out_dir)
    timings: dict[str, float] = {}
    parts = []
    for given in inputs:
        root = Path(given) if Path(given).is_dir() else None
        for path, source in discover([given]):
            parts.append(process_path(path, source, root=root, timings=timings))
    frames = to_frames(parts)
    if cfg.corrections is not None:
        from .tag.corrections import apply_corrections

        frames["sentences"] = apply_corrections(frames["sentences"], cfg.corrections)
    t0 = time.perf_counter()
    frames.update(analyze(frames))
    timings["analyze"] = time.perf_counter() - t0
    docs = frames["documents"]
    meta = {
        "season": cfg.season or "latest",
        "inputs": len(docs), "ok": int((docs["status"] == "ok").sum()),
        "rejected": int((docs["status"] == "rejected").sum()),
        "sentences": len(frames["sentences"]),
    }
    t0 = time.perf_counter()
    for name, df in frames.items():
        write_table(df, staging / (f"{name}.csv" if name == "documents" else f"{name}.parquet"))
    write_digest(frames, meta, staging)
    timings["digest"] = time.perf_counter() - t0
    manifest = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
        "input_paths": inputs,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "versions": _versions(),
    }
    write_json(manifest, staging / "manifest.json")
    publish(staging, out_dir)
    manifest["out_dir"] = str(out_dir)
    return manifest


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"huibian": __version__}
    for pkg in ("jieba", "pandas", "scikit-learn", "opencc"):
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
