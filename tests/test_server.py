"""The warm server (pipeline/server.py): real processes, a real socket, real runs of the sample.

One server is started for the module (a local run leaves it behind, as for a user) in a private
runtime folder; every test talks to it through the real ``python -m pipeline`` command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, SHARED

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the warm server needs fork")


def _env(runtime: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIBIAN_")}
    env.update(HUIBIAN_SERVER="1", HUIBIAN_RUNTIME_DIR=str(runtime), HUIBIAN_SERVER_IDLE="120",
               PYTHONPATH=str(REPO), **extra)
    return env


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _status(env: dict[str, str]) -> dict[str, str] | None:
    r = _cli(env, "server", "status")
    return None if r.returncode else {"line": r.stdout}


def _wait_ready(env: dict[str, str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _status(env) is not None:
            return
        time.sleep(0.5)
    logs = "".join(p.read_text() for p in Path(env["HUIBIAN_RUNTIME_DIR"]).glob("*.log"))
    raise AssertionError(f"no warm server after {seconds} s; its log:\n{logs}")


def _outputs(out: Path) -> dict[str, bytes | None]:
    """Every output file: the tables' bytes (byte-identical across runs), the rest by name."""
    return {p.name: p.read_bytes() if p.suffix in (".csv", ".parquet") else None
            for p in sorted(out.iterdir()) if p.is_file() and p.name not in ("manifest.json", ".lock")}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """(environment whose runs go to the server, the output of the local run that started it)."""
    runtime = tmp_path_factory.mktemp("runtime")
    env = _env(runtime)
    out = tmp_path_factory.mktemp("local") / "out"
    r = _cli(env, "run", str(SAMPLE), "--out", str(out), "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert _manifest(out)["warm_server"] is None  # no server yet: this one ran here ...
    _wait_ready(env)  # ... and left one behind
    yield env, out
    _cli(env, "server", "stop")


def test_a_served_run_gives_the_same_outputs_as_a_local_one(warm, tmp_path: Path) -> None:
    env, local = warm
    out = tmp_path / "out"
    r = _cli(env, "run", str(SAMPLE), "--out", str(out), "--jobs", "1")
    assert r.returncode == 0, r.stderr
    m = _manifest(out)
    assert isinstance(m["warm_server"], int)  # forked from the server
    assert "11 files: 11 ok" in r.stdout  # printed to the client's own stdout
    assert _outputs(out) == _outputs(local)


def test_exit_codes_and_messages_come_back_through_the_client(warm, tmp_path: Path) -> None:
    env, _ = warm
    r = _cli(env, "run", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "input not found" in r.stderr
    r = _cli(env, "run", "--help")
    assert r.returncode == 0 and "--no-server" in r.stdout


def test_no_server_runs_here(warm, tmp_path: Path) -> None:
    env, _ = warm
    out = tmp_path / "out"
    r = _cli(env, "run", str(SAMPLE), "--out", str(out), "--no-server")
    assert r.returncode == 0, r.stderr
    assert _manifest(out)["warm_server"] is None
    r = _cli({**env, "HUIBIAN_SERVER": "0"}, "run", str(SAMPLE), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert _manifest(out)["warm_server"] is None


def _served_run_started(env: dict[str, str], out: Path) -> tuple[subprocess.Popen[str], int]:
    """A client running the government reports into ``out``, once its served run holds the
    folder's lock; and that run's pid."""
    gov = SHARED / "corpus" / "gov2026"
    cmd = [sys.executable, "-m", "pipeline", "run", str(gov), "--out", str(out), "--jobs", "1"]
    client = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lock = out / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return client, int(lock.read_text().strip())


def test_a_killed_client_takes_its_served_run_with_it(warm, tmp_path: Path) -> None:
    env, _ = warm
    out = tmp_path / "out"
    client, holder = _served_run_started(env, out)  # the served child holds the folder's lock
    assert holder != client.pid
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 30
    while _alive(holder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(holder)
    assert not (out / "manifest.json").exists()  # nothing half-published
    # the folder is free again: the next run takes the lock at once
    r = _cli(env, "run", str(SAMPLE), "--out", str(out), "--jobs", "1")
    assert r.returncode == 0, r.stderr


def test_ctrl_c_reaches_the_served_run(warm, tmp_path: Path) -> None:
    env, _ = warm
    out = tmp_path / "out"
    client, _ = _served_run_started(env, out)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=60)
    assert client.returncode == 130, err
    assert "KeyboardInterrupt" in err
    assert not (out / "manifest.json").exists()


def test_changed_code_is_never_served_by_a_stale_server(warm, tmp_path: Path) -> None:
    """Anything on the import path changing makes the server refuse and exit: the client runs
    the command itself (and leaves a fresh server behind)."""
    env, _ = warm
    extra = tmp_path / "site"
    extra.mkdir()
    env2 = {**env, "PYTHONPATH": os.pathsep.join([str(REPO), str(extra)]),
            "HUIBIAN_RUNTIME_DIR": str(tmp_path / "runtime")}
    out = tmp_path / "out"
    assert _cli(env2, "run", str(SAMPLE), "--out", str(out), "--jobs", "1").returncode == 0
    _wait_ready(env2)
    (extra / "new_package.py").write_text("X = 1\n")  # a package installed meanwhile
    r = _cli(env2, "run", str(SAMPLE), "--out", str(out), "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert _manifest(out)["warm_server"] is None  # refused: ran in the client
    _wait_ready(env2)  # a fresh server, started by that run
    r = _cli(env2, "run", str(SAMPLE), "--out", str(out), "--jobs", "1")
    assert _manifest(out)["warm_server"] is not None
    _cli(env2, "server", "stop")
    assert _status(env2) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (its parent, the server, reaps it within a second)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_resident_entries_are_used_only_while_their_file_is_unchanged(tmp_path: Path) -> None:
    import pyarrow as pa

    from pipeline import season
    from pipeline.season import EntryStore, keep_resident

    store = EntryStore(tmp_path, "entries")
    first = store.put("ab" * 8, {"tables": {"documents": pa.table({"doc_id": ["d1"]})}})
    other = store.put("cd" * 8, {"tables": {"documents": pa.table({"doc_id": ["d2"]})}})
    try:
        assert keep_resident([first.folder, other.folder]) == 2
        assert keep_resident([first.folder, other.folder]) == 0  # unchanged: nothing read again
        held = season.RESIDENT[first.folder / "entry.pkl"][1]
        assert season.Entry(first.folder).load() is held  # served from memory
        # the entry is rewritten (a rename: a new inode): read from disk, not the stale copy
        again = store.put("ab" * 8, {"tables": {"documents": pa.table({"doc_id": ["d1-new"]})}})
        fresh = season.Entry(again.folder).load()
        assert fresh is not held and fresh["tables"]["documents"]["doc_id"][0].as_py() == "d1-new"
        keep_resident([other.folder])  # the season moved on: the first entry is let go
        assert first.folder / "entry.pkl" not in season.RESIDENT
    finally:
        keep_resident([])
