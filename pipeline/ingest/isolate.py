"""Run one parser in a forked child with a time and memory limit.

A malformed PDF can make a C parser loop, eat all memory or segfault; run in a child, that only
costs the child: the parent gets a plain reason back instead of a hang or a crash.  ``os.fork``
(not ``multiprocessing``) keeps the per-file overhead at a few milliseconds, shares the parent's
already imported modules, and works inside daemonic pool workers too.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import pickle
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .base import IngestError

T = TypeVar("T")


def _vm_bytes() -> int:
    """Address space the process uses now (RLIMIT_AS counts it, so the budget goes on top)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _set_limits(memory_mb: int | None, cpu_seconds: float) -> None:
    if memory_mb:
        limit = _vm_bytes() + memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    # CPU limit is a backstop for a child that somehow outlives the parent's deadline
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = int(cpu_seconds) + 5
    if hard == resource.RLIM_INFINITY or cpu < hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))


def _child(fn: Callable[..., Any], args: tuple[Any, ...], wfd: int, memory_mb: int | None,
           timeout: float) -> None:
    try:
        faulthandler.disable()  # a crash is reported as a reason, not as a traceback on stderr
        os.setpgid(0, 0)  # own process group: a timeout kills helpers (soffice) too
        _set_limits(memory_mb, timeout)
        try:
            result: tuple[str, Any] = ("ok", fn(*args))
        except IngestError as e:
            result = ("rejected", str(e))
        except MemoryError:
            result = ("rejected", f"parser ran out of memory (limit {memory_mb} MB)")
        except RecursionError:
            result = ("rejected", "document nests too deeply to read")
        except Exception as e:  # any parser failure becomes the file's reason
            result = ("rejected", f"could not be read: {type(e).__name__}: {str(e)[:200]}")
        try:
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except (MemoryError, pickle.PicklingError, TypeError):
            data = pickle.dumps(("rejected", "parser result too large to hand back"))
        view = memoryview(data)
        while view:
            n = os.write(wfd, view)
            view = view[n:]
    finally:
        os._exit(0)  # never run the parent's atexit handlers / test teardown in the child


def run_isolated(fn: Callable[..., T], *args: Any, timeout: float = 60.0,
                 memory_mb: int | None = 2048) -> T:
    """``fn(*args)`` in a forked child; its IngestError (or a timeout/crash/OOM) → IngestError here."""
    rfd, wfd = os.pipe()
    pid = -1
    # freeze the parent's objects so the child's garbage collector does not walk (and so copy,
    # page by page) the whole inherited heap: that cost 100 ms a file with pandas/jieba loaded
    gc.freeze()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(rfd)
            _child(fn, args, wfd, memory_mb, timeout)
    finally:
        if pid != 0:
            gc.unfreeze()
    os.close(wfd)
    try:  # also from this side, so a kill right after fork reaches the group
        os.setpgid(pid, pid)
    except (PermissionError, ProcessLookupError, OSError):
        pass
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([rfd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        if timed_out or not chunks:
            _kill_group(pid)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        raise IngestError(f"parser took longer than {timeout:g} s (stopped)")
    if not chunks:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                raise IngestError("parser used too much CPU time (stopped)")
            raise IngestError(f"parser crashed ({signal.Signals(sig).name}); file is probably corrupt")
        raise IngestError("parser crashed without a result; file is probably corrupt")
    kind, value = pickle.loads(b"".join(chunks))
    if kind != "ok":
        raise IngestError(value)
    return value


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
