"""The warm server: ``huibian run`` without Python's start-up and the models' loading.

A rerun after a late report or an editor's correction re-does one file and the season-level
combines; before that, a fresh process spends ~2 s importing pandas, pyarrow, scipy and the
stages and loading jieba's dictionary, its POS tables, OpenCC and the tag model. After a run the
CLI therefore leaves a *warm server* behind (the way Rails' Spring, the Gradle daemon or
Android's zygote do): one background process that has imported everything and loaded every
model, then waits on a Unix socket. The next ``huibian run`` (a small client) hands it its
arguments, working folder, environment and its own stdin/stdout/stderr (``SCM_RIGHTS``); the
server forks a child that runs exactly what the CLI would have run, printing to the client's
terminal, and the client exits with the child's exit code. Ctrl-C and other signals the client
gets are passed on to the child's process group; a client that dies takes its child with it.

Safety:
* one server per user, Python, ``sys.path`` and model settings (``HUIBIAN_MODEL``,
  ``HUIBIAN_DICTIONARIES``, ``HUIBIAN_RULES_ONLY``); its socket lives in a folder only the user
  can enter, and the peer's uid is checked on every connection;
* before every fork the server compares a stamp of its code, dictionaries, model and installed
  packages with the one it started with: anything changed, it refuses (the client runs the
  command itself) and exits, and that run leaves a new server behind;
* anything going wrong before the child starts (no server, a stale or busy one, a time-out)
  means the client runs the command itself: the server can make a run faster, never break it;
* it exits after ``HUIBIAN_SERVER_IDLE`` seconds without a request (default 600), and on
  ``huibian server stop``. ``HUIBIAN_SERVER=0`` (or ``huibian run --no-server``) turns it off.

The child is a fork of a process that holds only imported modules and models (and a finished
warm-up run's garbage collected): it starts in milliseconds and shares those pages with the
server instead of loading its own copy.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
#: settings read when a model is loaded: a server only serves clients that have the same
MODEL_SETTINGS = ("HUIBIAN_MODEL", "HUIBIAN_DICTIONARIES", "HUIBIAN_RULES_ONLY")
#: seconds a server waits for a request before it exits
DEFAULT_IDLE = 600.0
#: seconds a client waits for the server to start its run before running the command itself
HANDSHAKE_TIMEOUT = 5.0
_LEN = struct.Struct(">I")
#: in a served run: the pid of the warm server it was forked from (for the manifest)
served_by: int | None = None
_OFF = {"0", "off", "no", "false"}


# ---------------------------------------------------------------- where, and whether

def enabled() -> bool:
    """Whether ``huibian run`` may use (and leave behind) a warm server here."""
    if os.environ.get("HUIBIAN_SERVER", "1").strip().lower() in _OFF:
        return False
    # fork, Unix sockets passing descriptors, and the peer's uid (SO_PEERCRED: Linux)
    return (hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")
            and hasattr(socket, "SO_PEERCRED"))


def runtime_dir() -> Path | None:
    """The user's private folder for server sockets (created 0700), or None if it is not safe."""
    base = os.environ.get("HUIBIAN_RUNTIME_DIR")
    if base:
        folder = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "huibian"
    else:
        folder = Path(tempfile.gettempdir()) / f"huibian-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return None
    # someone else's folder, a symlink, or one others may write in: no socket there
    if st.st_uid != os.getuid() or not os.path.isdir(folder) or folder.is_symlink() or st.st_mode & 0o022:
        return None
    return folder


def identity() -> str:
    """Which server may serve this process: same user, Python, import path and model settings."""
    parts = [str(os.getuid()), sys.executable, *sys.path, str(PACKAGE)]
    parts += [f"{k}={os.environ.get(k, '')}" for k in MODEL_SETTINGS]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:20]


def socket_path() -> Path | None:
    folder = runtime_dir()
    return folder / f"{identity()}.sock" if folder is not None else None


def code_state() -> list[str]:
    """Size and modification time of everything the server has loaded that could change under
    it: the package's files, the dictionaries, the tag model, the installed packages' folders."""
    paths: list[Path] = sorted(p for p in PACKAGE.rglob("*") if p.is_file()
                               and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
    with contextlib.suppress(Exception):
        from .dictionaries import dictionary_dirs

        for d in dictionary_dirs():
            paths += sorted(f for f in d.rglob("*") if f.is_file())
    model = os.environ.get("HUIBIAN_MODEL")
    if model:
        paths.append(Path(model))
    # a package installed or removed changes its folder (site-packages, a PYTHONPATH folder);
    # the checkout's folder, and the one ``python -m`` was started in, change with anything
    # written there (a season's outputs), and this package's code is stamped file by file above
    started_in = sys.path[0] if sys.path and sys.path[0] in ("", os.getcwd()) else None
    paths += [Path(p) for p in sys.path
              if p and p != started_in and Path(p).resolve() != PACKAGE.parent]
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append(f"{p} {st.st_size} {st.st_mtime_ns} {st.st_ino}")
        except OSError:
            out.append(f"{p} -")
    return out


# ---------------------------------------------------------------- messages

def _send(sock: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(msg, ensure_ascii=False).encode("utf-8")
    frame = _LEN.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], fds)
    else:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def _recv(sock: socket.socket, with_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    fds: list[int] = []
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, _LEN.size, with_fds)
        if not head:
            raise EOFError("connection closed")
        head += _recv_exact(sock, _LEN.size - len(head)) if len(head) < _LEN.size else b""
    else:
        head = _recv_exact(sock, _LEN.size)
    (n,) = _LEN.unpack(head)
    return json.loads(_recv_exact(sock, n).decode("utf-8")), fds


# ---------------------------------------------------------------- the client

def delegate(argv: list[str]) -> int | None:
    """Run ``huibian`` with ``argv`` in the warm server; its exit code, or None when there is no
    server to run it (none running, stale, refused, timed out): the caller runs it itself."""
    path = socket_path()
    if path is None or not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HANDSHAKE_TIMEOUT)
        sock.connect(str(path))
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        _send(sock, request, [0, 1, 2])
        reply, _ = _recv(sock)
    except (OSError, EOFError, ValueError):
        sock.close()
        return None
    if "started" not in reply:
        sock.close()
        return None  # refused: stale code, or busy shutting down
    sock.settimeout(None)
    return _wait_for_child(sock)


def _wait_for_child(sock: socket.socket) -> int | None:
    """Pass our signals on to the served run until it reports its exit code."""
    relayed = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    previous = {}

    def relay(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            _send(sock, {"signal": signum})

    for s in relayed:
        previous[s] = signal.signal(s, relay)
    try:
        while True:
            try:
                reply, _ = _recv(sock)
            except InterruptedError:
                continue
            except (OSError, EOFError, ValueError):
                # the served run died without a word (killed, out of memory): say so; outputs are
                # published atomically, so the previous ones are intact
                print("huibian: the run in the warm server ended unexpectedly; run again with "
                      "--no-server to run it in this process", file=sys.stderr)
                return 1
            if "exit" in reply:
                return int(reply["exit"])
    finally:
        sock.close()
        for s, h in previous.items():
            signal.signal(s, h)


def running() -> dict[str, Any] | None:
    """The server's status (pid, uptime, memory) if one serves this process, else None."""
    return _control("status")


def stop() -> bool:
    """Ask the server to exit; whether one was there to ask."""
    return _control("stop") is not None


def _control(command: str) -> dict[str, Any] | None:
    path = socket_path()
    if path is None or not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            sock.connect(str(path))
            _send(sock, {"control": command})
            reply, _ = _recv(sock)
        except (OSError, EOFError, ValueError):
            return None
    return reply


def note_season(folders: list[Path], blobs: list[Path] | None = None) -> None:
    """Tell the warm server which cached entries (and parts files) the run just finished used:
    it keeps them in memory for the next run it forks (``pipeline.season.keep_resident``)."""
    if not enabled() or _warming:
        return
    path = socket_path()
    if path is None:
        return
    from .season import atomic_write

    with contextlib.suppress(OSError):
        note = {"entries": [str(f) for f in folders],
                "blobs": None if blobs is None else [str(b) for b in blobs]}
        atomic_write(_season_file(path), json.dumps(note).encode("utf-8"))


def _season_file(path: Path) -> Path:
    return path.with_suffix(".season.json")


def start_in_background() -> None:
    """Leave a warm server for the next run, unless one is already serving this process."""
    if not enabled():
        return
    path = socket_path()
    if path is None or running() is not None:
        return
    log = path.with_suffix(".log")
    try:
        with log.open("wb") as fh:
            subprocess.Popen([sys.executable, "-m", "pipeline.server", str(path)],
                             stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, close_fds=True,
                             start_new_session=True, cwd=os.getcwd())
    except OSError:
        pass  # no server: the next run is slower, not wrong


# ---------------------------------------------------------------- the server

#: set while the server warms up: its runs are not the user's season (``note_season``)
_warming = False


def _warm() -> None:
    """Import every stage and load every model: a run of the bundled sample season into a scratch
    folder, then a rerun after one of its files changed (what most served runs are: the code paths
    that update the last tables, and the first calls of the Arrow kernels they use, which cost up
    to ~60 ms each in a fresh process), its models pinned so that the runs do not release them."""
    from .resources import pin_models
    from .run import SAMPLE_CORPUS, RunConfig, run

    global _warming
    pin_models()  # kept through the warm-up runs; served runs share these pages with the server
    _warming = True
    try:
        with tempfile.TemporaryDirectory(prefix="huibian-warm-") as tmp:
            season = Path(tmp) / "season"
            shutil.copytree(SAMPLE_CORPUS, season)
            cfg = RunConfig(inputs=[str(season)], out=Path(tmp) / "out", jobs=1, progress=False)
            with (contextlib.redirect_stdout(io.StringIO()),
                  contextlib.redirect_stderr(io.StringIO())):
                run(cfg)
                changed = min(season.rglob("*.txt"), default=None)
                if changed is not None:
                    with changed.open("a", encoding="utf-8") as fh:
                        fh.write("\n但是基层治理能力仍有短板，新增就业岗位一千二百个。\n")
                    run(cfg)
    finally:
        _warming = False


def serve(path: Path, idle: float | None = None) -> None:
    """Warm up, then serve requests on ``path`` until idle for ``idle`` seconds or told to stop."""
    idle = idle if idle is not None else float(os.environ.get("HUIBIAN_SERVER_IDLE") or DEFAULT_IDLE)
    lock_fd = _single_instance(path)
    if lock_fd is None:
        return  # another server is starting or serving here
    _warm()
    state = code_state()
    season = _Season(_season_file(path))
    season.refresh(first=True)
    started = time.time()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(16)
    # a short tick: a finished run is reaped, and the entries it changed read, before the next
    # request comes in (a user's, or a script's straight after)
    listener.settimeout(0.1)
    bound = os.stat(path).st_ino
    last = time.monotonic()
    children: set[int] = set()
    print(f"huibian server {os.getpid()} ready on {path}", flush=True)
    try:
        while True:
            _reap(children)
            season.refresh()
            if time.monotonic() - last > idle and not children:
                break
            if not _still_ours(path, bound):
                break  # our socket was removed or replaced
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            try:
                conn.settimeout(HANDSHAKE_TIMEOUT)
                if not _same_user(conn):
                    conn.close()
                    continue
                request, fds = _recv(conn, with_fds=3)
            except (OSError, EOFError, ValueError):
                conn.close()
                continue
            if "control" in request:
                _reap(children)
                _control_reply(conn, request["control"], started, children)
                if request["control"] == "stop":
                    break
                continue
            season.refresh()  # the run that just finished may have changed entries
            now = code_state() if len(fds) == 3 else state
            if len(fds) != 3 or now != state:
                changed = sorted(set(now) ^ set(state))[:4]
                print(f"refused a run: {'stale: ' + ', '.join(changed) if changed else 'no stdio'}",
                      flush=True)
                for fd in fds:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    _send(conn, {"refused": "stale" if len(fds) == 3 else "no terminal"})
                conn.close()
                if len(fds) == 3:
                    break  # code or models changed: the client's run leaves a fresh server
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                os.close(lock_fd)
                _child(conn, request, fds)  # never returns
            children.add(pid)
            for fd in fds:
                os.close(fd)
            conn.close()
    finally:
        with contextlib.suppress(OSError):
            if _still_ours(path, bound):
                path.unlink()
        listener.close()
        os.close(lock_fd)


class _Season:
    """The entries of the last run (as its note names them), kept in memory by this server."""

    def __init__(self, note: Path) -> None:
        self.note = note
        self.seen: tuple[int, int] | None = None

    def refresh(self, first: bool = False) -> None:
        try:
            st = self.note.stat()
            key = (st.st_ino, st.st_mtime_ns)
            if key != self.seen:
                self.seen = key
                note = json.loads(self.note.read_text(encoding="utf-8"))
                from .season import keep_resident

                keep_resident([Path(f) for f in note["entries"]],
                              None if note.get("blobs") is None else [Path(b) for b in note["blobs"]])
                first = True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if first:
            gc.collect()
            gc.freeze()  # the children's collections never touch (so never copy) these objects
            _trim()


def _trim() -> None:
    """Give the memory the warm-up and the refresh freed back to the system: every page this
    process holds is in each served run's resident memory too."""
    with contextlib.suppress(Exception):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: free heap pages (~15 MiB here)


def _single_instance(path: Path) -> int | None:
    import fcntl

    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _still_ours(path: Path, bound: int) -> bool:
    """Whether ``path`` is still the socket this server bound (not removed, not replaced)."""
    try:
        return os.stat(path).st_ino == bound
    except OSError:
        return False


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _reap(children: set[int]) -> None:
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
        children.discard(pid)


def _control_reply(conn: socket.socket, command: str, started: float, children: set[int]) -> None:
    with contextlib.suppress(OSError):
        _send(conn, {"pid": os.getpid(), "uptime_s": round(time.time() - started, 1),
                     "rss_mib": _rss_mib(), "runs_in_progress": len(children),
                     "stopping": command == "stop"})
    conn.close()


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """The forked child: become the client's ``huibian`` process, run, report the exit code."""
    global served_by
    code = 1
    served_by = os.getppid()
    answered = threading.Event()
    try:
        os.setpgid(0, 0)  # a group of its own: the client's signals reach its workers too
        for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding="utf-8")  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding="utf-8",  # noqa: SIM115
                                      line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), encoding="utf-8",  # noqa: SIM115
                                      errors="backslashreplace", line_buffering=True)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        conn.settimeout(None)
        _send(conn, {"started": os.getpid()})
        threading.Thread(target=_watch_client, args=(conn, answered), daemon=True).start()
        from .cli import main

        sys.argv = ["huibian", *request["argv"]]
        try:
            code = main(list(request["argv"]))
        except SystemExit as e:  # argparse: --help, usage errors
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl-C at the client: as Python reports it, exit as shells do
            traceback.print_exc()
            code = 130
        except BaseException:  # noqa: BLE001 - reported to the user as a crash would be
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        answered.set()
        with contextlib.suppress(Exception):
            _send(conn, {"exit": code})
        with contextlib.suppress(Exception):  # the client has its answer: now the tidying up
            from .outputs import finish_discarding

            finish_discarding()
        os._exit(0)


def _watch_client(conn: socket.socket, answered: threading.Event) -> None:
    """Signals from the client, for this run's process group; the client gone before it got its
    answer: stop at once (as a ``kill -9`` of a local run would)."""
    while True:
        try:
            msg, _ = _recv(conn)
        except (OSError, EOFError, ValueError):
            if not answered.is_set():
                os.killpg(0, signal.SIGKILL)
            return
        if "signal" in msg:
            with contextlib.suppress(OSError):
                os.killpg(0, int(msg["signal"]))


if __name__ == "__main__":
    # run as pipeline.server, not as __main__: the served runs read this module's globals
    from pipeline import server as _module

    _module.serve(Path(sys.argv[1]))
