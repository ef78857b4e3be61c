"""Issue 8: `--executor dask` on a real LocalCluster of two workers gives the bytes `--jobs 2` gives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE

pytest.importorskip("distributed")

from pipeline.run import RunConfig, run  # noqa: E402


def _season(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted(SAMPLE.rglob("*.txt"))[1:5]:  # four real reports: a seed and gov reports
        shutil.copyfile(f, folder / f.name)
    (folder / "notes.xyz").write_text("not a report", encoding="utf-8")
    return folder


def test_dask_local_cluster_matches_local_pool_byte_for_byte(tmp_path: Path) -> None:
    inputs = _season(tmp_path)
    local, dask = tmp_path / "local", tmp_path / "dask"
    ml = run(RunConfig(inputs=[str(inputs)], out=local, jobs=2, use_cache=False,
                       parallel_min_bytes=0))
    md = run(RunConfig(inputs=[str(inputs)], out=dask, jobs=2, executor="dask", use_cache=False))
    assert (ml["executor"], ml["workers"]) == ("local", 2)
    assert (md["executor"], md["workers"]) == ("dask", 2)
    assert md["inputs"] == 5 and md["rejected"] == 1 and md["sentences"] > 500
    names = ["documents.csv", *sorted(p.name for p in local.glob("*.parquet"))]
    assert "sentences.parquet" in names
    for name in names:
        assert (dask / name).read_bytes() == (local / name).read_bytes(), name


def test_unreachable_scheduler_is_a_one_line_error(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(SAMPLE / "gov2026"), "--out", str(tmp_path / "o"),
         "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "tcp://127.0.0.1:9" in res.stderr and len(res.stderr.strip().splitlines()) == 1
