"""Issue 8: season-level work split between the run's process and a forked child (pipeline.forked)."""

from __future__ import annotations

import functools
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest
from test_run_batch import _inputs, _tables

from pipeline.forked import CAN_FORK, Beside
from pipeline.run import RunConfig, run
from pipeline.season import FolderMemo

needs_fork = pytest.mark.skipif(not CAN_FORK, reason="fork is used on Linux only")


@needs_fork
def test_work_runs_in_a_child_and_its_result_comes_back() -> None:
    parent = os.getpid()
    beside = Beside(lambda: (os.getpid(), [1, 2, 3] * 1000, "表"))
    pid, numbers, text = beside.result()
    assert beside.forked and pid != parent
    assert numbers == [1, 2, 3] * 1000 and text == "表"


@needs_fork
def test_a_childs_exception_is_raised_here() -> None:
    def fail() -> None:
        raise ValueError("坏了")

    with pytest.raises(ValueError, match="坏了"):
        Beside(fail).result()


@needs_fork
def test_a_child_that_dies_without_answering_costs_only_time() -> None:
    parent = os.getpid()

    def only_here() -> str:
        if os.getpid() != parent:
            os._exit(9)  # like a child killed by the OOM killer
        return "done here"

    beside = Beside(only_here)
    assert beside.forked
    assert beside.result() == "done here"


def test_without_fork_the_work_is_done_when_asked() -> None:
    calls: list[int] = []
    beside = Beside(lambda: calls.append(os.getpid()) or len(calls), fork=False)
    assert not beside.forked and calls == []
    assert beside.result() == 1 and calls == [os.getpid()]


def _zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        # python-docx stamps the document's creation time: the rest must be equal
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


@needs_fork
def test_a_split_run_writes_the_same_files_and_keeps_the_childs_memo_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # prune keeps nothing a run did not use: an entry the child used but the run forgot is lost
    monkeypatch.setattr(FolderMemo, "MIN_SPARE", 0)
    monkeypatch.setattr(FolderMemo, "prune", functools.partialmethod(FolderMemo.prune, spare=0.0))
    inputs = _inputs(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    first = {jobs: run(RunConfig(inputs=[str(inputs)], out=out, jobs=jobs))["memo"]
             for jobs, out in ((1, one), (2, two))}
    assert _tables(two) == _tables(one)
    for name in ("digest.html", "corpus.qdpx"):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
    for name in ("tables.xlsx", "digest.docx"):
        assert _zip_members(two / name) == _zip_members(one / name), name

    # the memo's counts include the child's lookups, and every entry the first run used (the
    # child's keyword and copy entries too) survived its prune: the second runs find the same
    again = {jobs: run(RunConfig(inputs=[str(inputs)], out=out, jobs=jobs))["memo"]
             for jobs, out in ((1, one), (2, two))}
    assert first[2] == first[1] and first[1]["misses"] > 0
    assert again[2] == again[1] and again[1] == {"hits": again[1]["hits"], "misses": 0}
    assert _tables(two) == _tables(one)


@needs_fork
def test_what_the_child_prints_reaches_this_process(capsys: pytest.CaptureFixture[str]) -> None:
    def noisy() -> int:
        print("huibian: could not write tables.xlsx: 磁盘已满", file=sys.stderr)
        return 7

    beside = Beside(noisy)
    assert beside.result() == 7 and beside.forked
    assert "could not write tables.xlsx: 磁盘已满" in capsys.readouterr().err


@needs_fork
def test_a_run_with_two_jobs_forks_the_analysis_and_the_archives(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.analyze as analyze
    import pipeline.digest as digest

    made: list[Beside[object]] = []

    class Recorded(Beside[object]):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(analyze, "Beside", Recorded)
    monkeypatch.setattr(digest, "Beside", Recorded)
    inputs = _inputs(tmp_path)
    run(RunConfig(inputs=[str(inputs)], out=tmp_path / "two", jobs=2))
    assert [b.forked for b in made] == [True, True]  # the analysis, then the archives
    made.clear()
    run(RunConfig(inputs=[str(inputs)], out=tmp_path / "one", jobs=1))
    assert not any(b.forked for b in made)


@needs_fork
def test_a_child_whose_result_is_not_wanted_is_stopped_and_reaped() -> None:
    with pytest.raises(RuntimeError, match="this half failed"), Beside(lambda: time.sleep(60)) as beside:
        pid = beside._pid
        assert pid is not None
        raise RuntimeError("this half failed")
    with pytest.raises(ChildProcessError):  # reaped: no such child any more
        os.waitpid(pid, os.WNOHANG)
