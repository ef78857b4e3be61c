"""Issue 8: season-scale batch runs — cache reuse, determinism, process pool, lock, kill -9 safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from conftest import REPO, SAMPLE, seed

from pipeline.cache import entry_key, file_digest, pipeline_fingerprint
from pipeline.executor import LocalPool, WorkerDied
from pipeline.lock import RunLock
from pipeline.outputs import finish_discarding, replace
from pipeline.run import RunConfig, RunError, columnar, frames_from_parts, process_path, run
from pipeline.season import EntryStore
from pipeline.tables import to_frames

TABLES = ("documents.csv", "articles.parquet", "toc.parquet", "sentences.parquet", "matrix.parquet")


def _inputs(tmp_path: Path, n: int = 4) -> Path:
    """A small season: the first n sample files (seeds and gov reports) plus one bad file."""
    folder = tmp_path / "in"
    folder.mkdir()
    files = sorted(p for p in SAMPLE.rglob("*.txt"))[:n]
    for f in files:
        shutil.copyfile(f, folder / f.name)
    (folder / "empty.txt").write_bytes(b"")
    return folder


def _tables(out: Path) -> dict[str, bytes]:
    names = sorted({*TABLES, *(p.name for p in out.glob("*.parquet"))})
    return {n: (out / n).read_bytes() for n in names if (out / n).exists()}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_frames_from_columnar_parts_equal_to_frames() -> None:
    # the batch path (columnar per file, concatenated) must build exactly the frames to_frames does
    paths = [seed("000"), seed("003"), SAMPLE / "gov2026" / "no-such-file.txt"]
    rows = [process_path(p, str(p)) for p in paths]
    expected = to_frames(rows)
    got = frames_from_parts([columnar(r) for r in rows])
    assert set(got) == set(expected)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=name)
    assert len(got["sentences"]) > 100 and (got["documents"]["status"] == "rejected").sum() == 1


def test_rerun_reuses_unchanged_files_and_outputs_are_byte_identical(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    clean1, clean2, cached = tmp_path / "c1", tmp_path / "c2", tmp_path / "cached"
    run(RunConfig(inputs=[str(inputs)], out=clean1, jobs=1, use_cache=False))
    run(RunConfig(inputs=[str(inputs)], out=clean2, jobs=1, use_cache=False))
    assert _tables(clean1) == _tables(clean2)  # two clean runs: byte-identical tables

    first = run(RunConfig(inputs=[str(inputs)], out=cached, jobs=1))
    assert first["reused"] == 0
    second = run(RunConfig(inputs=[str(inputs)], out=cached, jobs=1))
    # the empty file is cached too (its rejection depends only on its bytes)
    assert second["reused"] == second["files_in"] == 5 and second["processed"] == 0
    assert _tables(cached) == _tables(clean1)  # reusing the cache changes no byte

    # one file changes: only it is re-done, and the result equals a clean run on the new inputs
    changed = sorted(inputs.glob("0*.txt"))[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n今年新增就业岗位一万二千个。\n",
                       encoding="utf-8")
    third = run(RunConfig(inputs=[str(inputs)], out=cached, jobs=1))
    assert (third["reused"], third["processed"]) == (4, 1)
    clean3 = tmp_path / "c3"
    run(RunConfig(inputs=[str(inputs)], out=clean3, jobs=1, use_cache=False))
    assert _tables(cached) == _tables(clean3)
    assert "今年新增就业岗位一万二千个。" in set(pd.read_parquet(cached / "sentences.parquet")["text"])

    m = _manifest(cached)
    for key in ("started", "finished", "inputs", "ok", "rejected", "reused", "timings", "versions",
                "warnings", "files"):
        assert key in m, key
    assert (m["inputs"], m["ok"], m["rejected"], m["reused"]) == (5, 4, 1, 4)
    assert {"ingest", "normalize", "structure", "segment", "tag", "analyze", "total"} <= set(m["timings"])
    finish_discarding()  # the replaced outputs are deleted in the background
    assert "documents.csv" in m["files"] and not list(cached.glob(".staging-*"))


def test_untouched_inputs_are_not_read_again_and_a_same_size_edit_is_seen(tmp_path: Path,
                                                                         monkeypatch) -> None:
    from pipeline.cache import DigestIndex

    # a test writes its files and runs within the same second; the index's racy-file guard
    # would hash them all again, so it is narrowed here (to be checked: everything else)
    monkeypatch.setattr(DigestIndex, "RACY_NS", 0)
    inputs = _inputs(tmp_path, n=3)
    out = tmp_path / "out"
    first = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert first["hashed"] == first["files_in"] == 4  # the empty file is hashed too
    second = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert second["hashed"] == 0 and second["reused"] == 4

    # same size, same mtime, other bytes: the ctime moved, so the file is hashed and re-done
    f = sorted(inputs.glob("0*.txt"))[0]
    text = f.read_text(encoding="utf-8")
    old = f.stat()
    i = text.index("。")
    f.write_text(text[:i] + "！" + text[i + 1:], encoding="utf-8")  # one 3-byte character for another
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert f.stat().st_size == old.st_size and f.stat().st_mtime_ns == old.st_mtime_ns
    third = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert (third["hashed"], third["processed"], third["reused"]) == (1, 1, 3)
    assert "！" in "".join(pd.read_parquet(out / "sentences.parquet")["text"])

    # without an index (damaged), every file is simply hashed again
    (out / ".cache" / "digests.pkl").write_bytes(b"not a pickle")
    fourth = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert fourth["hashed"] == 4 and fourth["reused"] == 4


def test_a_run_that_tags_in_process_frees_the_models_before_the_season_stages(tmp_path: Path) -> None:
    from pipeline.resources import models_loaded
    from pipeline.segment import tokenizer

    inputs = _inputs(tmp_path, n=2)
    tokenizer()  # loaded before, as a notebook would have it
    assert models_loaded()
    m = run(RunConfig(inputs=[str(inputs)], out=tmp_path / "out", jobs=1))
    assert m["processed"] == m["files_in"] and m["executor"] == "inprocess"
    assert not models_loaded()  # jieba, OpenCC, the tag model and the POS tables all let go
    assert tokenizer().lcut("三会一课") == ["三会一课"]  # and loaded again when needed


def test_cache_key_follows_bytes_source_and_pipeline_version(tmp_path: Path, monkeypatch) -> None:
    a = tmp_path / "a.txt"
    a.write_text("一、工作成绩\n完成任务。\n", encoding="utf-8")
    d1 = file_digest(a)
    assert d1 is not None and file_digest(tmp_path / "missing.txt") is None
    k = entry_key(d1, str(a))
    assert entry_key(d1, str(tmp_path / "b.txt")) != k  # same bytes elsewhere: ids differ
    a.write_text("一、工作成绩\n完成任务！\n", encoding="utf-8")
    assert entry_key(file_digest(a), str(a)) != k

    store = EntryStore(tmp_path / "cache", "v1")
    assert store.get(k) is None
    sentences = pa.table({"text": ["完成任务。"], "idx": [0]})
    docs = pa.table({"doc_id": ["d"], "status": ["ok"]})
    store.put(k, {"tables": {"documents": docs, "sentences": sentences}, "warnings": ["w"],
                  "timings": {}}, {"analyze": {"n": 1, "big": b"x" * 100}}, "pv1")
    entry = store.get(k)
    assert entry is not None and entry.load()["warnings"] == ["w"]
    assert entry.sentences().equals(sentences) and entry.load()["tables"]["documents"].equals(docs)
    blob = entry.parts("pv1")
    assert blob is not None and blob.get("analyze", "big") == b"x" * 100
    assert entry.parts("pv2") is None  # parts of other season-level code are not found
    entry.put_parts("pv2", {"analyze": {"n": 2}})
    assert entry.parts("pv1") is None and entry.parts("pv2").get("analyze", "n") == 2
    pkl = entry.folder / "entry.pkl"
    pkl.write_bytes(pkl.read_bytes()[:5])  # a damaged entry is a miss, not a crash
    assert store.get(k) is None

    # an extra dictionary folder changes what the stages do, hence the fingerprint
    pipeline_fingerprint.cache_clear()  # computed afresh from the files as they are now
    before = pipeline_fingerprint()
    extra = tmp_path / "dict"
    extra.mkdir()
    (extra / "userdict.txt").write_text("新质生产力 10 n\n", encoding="utf-8")
    monkeypatch.setenv("HUIBIAN_DICTIONARIES", str(extra))
    pipeline_fingerprint.cache_clear()
    try:
        assert pipeline_fingerprint() != before
    finally:
        monkeypatch.delenv("HUIBIAN_DICTIONARIES")
        pipeline_fingerprint.cache_clear()
    assert pipeline_fingerprint() == before


def test_process_pool_gives_the_same_bytes_as_in_process(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    run(RunConfig(inputs=[str(inputs)], out=one, jobs=1, use_cache=False))
    m = run(RunConfig(inputs=[str(inputs)], out=two, jobs=2, use_cache=False, parallel_min_bytes=0))
    assert (m["executor"], m["workers"]) == ("local", 2)
    assert _tables(two) == _tables(one)


def square_or_die(x: int) -> int:
    """Task for the pool test: item 2 kills its worker process outright, like a crashing parser."""
    if x == 2:
        os._exit(3)
    return x * x


def test_pool_survives_a_dying_worker_and_names_the_culprit() -> None:
    pool = LocalPool(2)
    try:
        got = dict(pool.imap(square_or_die, [(0,), (1,), (2,), (3,), (4,)]))
    finally:
        pool.close()
    assert isinstance(got.pop(2), WorkerDied)
    assert got == {0: 0, 1: 1, 3: 9, 4: 16}


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_run_on_the_same_folder_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with RunLock(out):  # a run in progress holds the folder
        with pytest.raises(RunError, match="another huibian run"):
            run(RunConfig(inputs=[str(seed("002"))], out=out, jobs=1))
        t0 = time.monotonic()
        proc = _cli(str(seed("002")), "--out", str(out), cwd=tmp_path)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "another huibian run" in err and str(out) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert time.monotonic() - t0 < 60  # fails at once instead of waiting
    # the lock is free again once its holder is gone
    run(RunConfig(inputs=[str(seed("002"))], out=out, jobs=1))
    assert (out / "documents.csv").exists()


def test_run_killed_with_sigkill_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, n=8)
    clean, out = tmp_path / "clean", tmp_path / "out"
    run(RunConfig(inputs=[str(inputs)], out=clean, jobs=1, use_cache=False))
    # the folder holds an earlier, smaller run: it must stay readable through the killed run
    run(RunConfig(inputs=[str(seed("002"))], out=out, jobs=1, use_cache=False))
    before = _tables(out)

    proc = _cli(str(inputs), "--out", str(out), "--jobs", "1", cwd=tmp_path)
    deadline = time.monotonic() + 120

    def stored_entries() -> list[Path]:  # entries renamed into place, not one still being written
        return [p for p in (out / ".cache").rglob("entry.pkl") if not p.parent.name.startswith(".tmp-")]

    while not stored_entries() and time.monotonic() < deadline:
        time.sleep(0.05)  # kill once the run is under way (its first file is done)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if _manifest(out)["inputs"] == 1:  # killed before publishing: the old run, intact
        assert _tables(out) == before
    assert len(pd.read_csv(out / "documents.csv")) >= 1
    pd.read_parquet(out / "sentences.parquet")

    rerun = _cli(str(inputs), "--out", str(out), "--jobs", "1", cwd=tmp_path)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    # the killed run's finished files were kept, and the summary says so
    m = _manifest(out)
    assert m["reused"] >= 1 and m["reused"] + m["processed"] == m["files_in"] == 9
    assert f"reused {m['reused']} of 9 documents" in stdout
    assert _tables(out) == _tables(clean)
    finish_discarding()
    assert not list(out.glob(".staging-*"))


def test_folder_memo_survives_processes_and_damage(tmp_path: Path) -> None:
    from pipeline.season import FolderMemo

    memo = FolderMemo(tmp_path / "memo")
    assert memo.get("block:abc") is None and memo.misses == 1
    memo["block:abc"] = [1, 2, 3]
    again = FolderMemo(tmp_path / "memo")  # a later run reads what an earlier one wrote
    assert again["block:abc"] == [1, 2, 3] and again.hits == 1 and "block:abc" in again
    path = next((tmp_path / "memo").rglob("*.pkl"))
    path.write_bytes(b"\x80\x05garbage")
    assert again.get("block:abc") is None  # damaged: recomputed, never a crash


def test_folder_memo_prunes_what_no_run_needs_least_recently_used_first(tmp_path: Path,
                                                                       monkeypatch) -> None:
    from pipeline.season import FolderMemo

    monkeypatch.setattr(FolderMemo, "MIN_SPARE", 0)
    first = FolderMemo(tmp_path / "memo")
    for k in ("a", "b", "c", "d"):
        first[k] = b"x" * 10_000
    old = time.time() - 3600
    for age, k in enumerate(("a", "b", "c", "d")):  # a is the least recently used
        os.utime(first._path(k), (old + age, old + age))

    one = first._path("a").stat().st_size  # a pickled entry of 10,000 bytes
    later = FolderMemo(tmp_path / "memo")  # the next run: reads c, writes e
    assert later["c"] == b"x" * 10_000
    later["e"] = b"y" * 20_000
    freed = later.prune(spare=1.0)  # the others may weigh as much as this run's c + e, no more
    assert freed == one
    assert "a" not in later and all(k in later for k in ("b", "c", "d", "e"))
    assert later.prune(spare=0.0) == 2 * one  # b and d go; what this run used stays
    assert [k for k in "abcde" if k in later] == ["c", "e"]


def test_corrections_reach_every_table_through_the_cache(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, n=3)
    out = tmp_path / "out"
    run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    before = _tables(out)
    s = pd.read_parquet(out / "sentences.parquet")
    body = s[(s["kind"] == "body") & (s["label"] == "strength")]
    row = body.iloc[0]
    fix = tmp_path / "fix.csv"
    pd.DataFrame([{"text": row["text"], "source": row["source"], "correct_label": "gap"}]).to_csv(
        fix, index=False)

    m = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1, corrections=fix))
    assert m["reused"] == m["files_in"]  # the files' entries are reused; only parts are redone
    s2 = pd.read_parquet(out / "sentences.parquet")
    hit = s2[(s2["doc_id"] == row["doc_id"]) & (s2["idx"] == row["idx"])]
    assert list(hit["label"]) == ["gap"] and list(hit["evidence"]) == ["correction"]
    unit = row["unit"] or "(未识别)"
    def gaps(folder: Path) -> int:
        mx = pd.read_parquet(folder / "matrix.parquet")
        return int(mx.loc[(mx["unit"] == unit) & (mx["label"] == "gap"), "n"].sum())
    clean = tmp_path / "clean"
    run(RunConfig(inputs=[str(inputs)], out=clean, jobs=1, use_cache=False, corrections=fix))
    assert _tables(out) == _tables(clean)  # cached parts + corrections = a clean corrected run
    assert gaps(out) == gaps(tmp_path / "clean")
    s_old = pd.read_parquet(tmp_path / "clean" / "sentences.parquet")
    assert (s_old["label"] == "gap").sum() == (s["label"] == "gap").sum() + 1

    run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))  # corrections withdrawn
    assert _tables(out) == before


def test_new_season_code_remakes_parts_from_cached_entries(tmp_path: Path, monkeypatch) -> None:
    import pipeline.run as run_module

    inputs = _inputs(tmp_path, n=2)
    out = tmp_path / "out"
    run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    before = _tables(out)
    # the analysis or digest code changed: entries (ingest → tag) are reused, parts are re-made
    monkeypatch.setattr(run_module, "parts_fingerprint", lambda: "f" * 64)
    m = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert m["reused"] == m["files_in"] == 3 and m["processed"] == 0
    assert m["memo"]["hits"] == 0  # a new code version starts a new memo
    assert _tables(out) == before
    blobs = list((out / ".cache").rglob("parts-*.bin"))
    assert blobs and all(b.name == f"parts-{'f' * 24}.bin" for b in blobs)  # old versions dropped
    assert not [d for d in (out / ".cache").iterdir() if d.name.startswith("memo-")
                and d.name != f"memo-{'f' * 16}"]


def test_stale_parts_of_a_season_are_remade_on_worker_processes(tmp_path: Path, monkeypatch) -> None:
    import pipeline.run as run_module

    inputs = _inputs(tmp_path, n=3)
    out = tmp_path / "out"
    run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    before = _tables(out)
    n_blobs = len(list((out / ".cache").rglob("parts-*.bin")))
    monkeypatch.setattr(run_module, "parts_fingerprint", lambda: "d" * 64)

    def not_here(*_a: object, **_k: object) -> None:
        raise AssertionError("parts made in the main process")

    # only the spawned workers can make them: this process's file_parts is broken
    monkeypatch.setattr(run_module, "file_parts", not_here)
    m = run(RunConfig(inputs=[str(inputs)], out=out, jobs=2, parallel_min_bytes=0))
    assert m["reused"] == m["files_in"] and not [w for w in m["warnings"] if "parts failed" in w]
    assert _tables(out) == before
    assert n_blobs >= 3 and len(list((out / ".cache").rglob(f"parts-{'d' * 24}.bin"))) == n_blobs


def test_parts_that_cannot_be_cached_are_kept_for_the_run(tmp_path: Path, monkeypatch) -> None:
    import pipeline.run as run_module
    from pipeline.season import Entry

    inputs = _inputs(tmp_path, n=2)
    out = tmp_path / "out"
    run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    before = _tables(out)

    def full_disk(self: Entry, version: str, parts: dict) -> None:
        raise OSError(28, "No space left on device")

    # new season code on a cache that cannot take the new parts: made, used, not stored
    monkeypatch.setattr(run_module, "parts_fingerprint", lambda: "e" * 64)
    monkeypatch.setattr(Entry, "put_parts", full_disk)
    m = run(RunConfig(inputs=[str(inputs)], out=out, jobs=1))
    assert m["reused"] == m["files_in"] and _tables(out) == before
    assert not list((out / ".cache").rglob(f"parts-{'e' * 24}.bin"))
    finish_discarding()
    assert not list(out.glob(".staging-*"))  # the scratch copies went with the staging folder


def test_replace_swaps_an_existing_output_and_moves_a_new_one(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "out"
    new.write_text("new run")
    old.write_text("last run")
    swapped = replace(new, old)
    assert old.read_text() == "new run"
    # swapped (Linux): the previous output lies where the new one was, for deleting later
    assert new.read_text() == "last run" if swapped else not new.exists()
    fresh = tmp_path / "fresh"
    assert replace(old, fresh) is False  # nothing to swap with: a plain rename
    assert fresh.read_text() == "new run" and not old.exists()
