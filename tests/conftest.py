"""Shared fixtures: paths to the real inputs, and one run of the bundled sample season per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the commands tests start must not leave warm servers behind (tests/test_server.py turns it on
# for its own processes, in a private runtime folder)
os.environ["HUIBIAN_SERVER"] = "0"

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "corpus" / "sample"
SHARED = REPO.parent / "shared"
SEEDS = SAMPLE  # the five seeds are bundled in the sample corpus (same bytes as ../shared/seeds)
GOLD = SHARED / "gold" / "dev.jsonl"


def seed(prefix: str) -> Path:
    """A seed file by its number, e.g. seed("003")."""
    return next(SAMPLE.glob(f"{prefix}_*.txt"))


def process_text(folder: Path, name: str, text: str):
    """Write ``text`` to a real file and run it through ingest and every per-document stage."""
    from pipeline.ingest import ingest_file
    from pipeline.run import STAGES

    f = folder / name
    f.write_text(text, encoding="utf-8")
    doc = ingest_file(f, name)
    for _, stage in STAGES:
        doc = stage(doc)
    assert doc.status == "ok", doc.reason
    return doc


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder of one `huibian run` over the bundled sample corpus (shared by tests)."""
    from pipeline.run import RunConfig, run

    out = tmp_path_factory.mktemp("sample_run")
    run(RunConfig(inputs=[str(SAMPLE)], out=out, jobs=1))
    return out
