"""Season-level work split in two: one part in a forked child process, the rest in this one.

The combines of the analysis and the digest's deliverables are independent of each other and
mostly pure Python, so threads would share one core (the GIL). A forked child sees the run's
tables and lazy parts as they are (copy-on-write: nothing is pickled on the way in); only its
result comes back through a pipe, so what runs there should return something small (a season
table of a few MB, flags). Where fork is not available (or not wanted: one job), the work is done
in this process when its result is asked for, so the outcome is the same either way.
"""

from __future__ import annotations

import ctypes
import io
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

#: fork only where it is the platform's own way (Linux); macOS and Windows run the work inline
CAN_FORK = sys.platform.startswith("linux") and hasattr(os, "fork")


@runtime_checkable
class SharedMemo(Protocol):
    """A memo a child may use (:class:`~pipeline.season.FolderMemo`): the child hands back what it
    read and wrote (``usage`` since the fork's counts) and the run's copy takes it (``absorb``)."""

    hits: int
    misses: int

    def usage(self, since: tuple[int, int]) -> Any: ...

    def absorb(self, usage: Any) -> None: ...


class Beside(Generic[T]):
    """``fn`` started now in a forked child (``fork=True`` and the platform allows it), or kept to be
    run here by :meth:`result`. A child that dies without answering (killed, out of memory) is not
    an error of the run: the work is then done here."""

    def __init__(self, fn: Callable[[], T], fork: bool = True, memo: object | None = None) -> None:
        self._fn = fn
        self._pid: int | None = None
        self._read = -1
        self.forked = False
        # ``memo``: the one ``fn`` uses. A child's use of it is handed back; a memo that cannot
        # take it back (a plain dict) would lose the child's writes, so the work stays here
        self._memo = memo if isinstance(memo, SharedMemo) else None
        if fork and CAN_FORK and (memo is None or self._memo is not None):
            self._start()

    def _start(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no memory or process slots for a child: done here instead
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(self._in_child, write, os.getppid())
        os.close(write)
        self._pid, self._read, self.forked = pid, read, True

    def _in_child(self) -> tuple[T, Any]:
        memo = self._memo
        counts = (memo.hits, memo.misses) if memo is not None else (0, 0)
        value = self._fn()
        return value, memo.usage(counts) if memo is not None else None

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        """A child whose result was not asked for (this process's half failed) is stopped and
        reaped: no orphan keeps working, no zombie or open pipe is left behind."""
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(self._read)
            os.waitpid(self._pid, 0)
            self._pid = None

    def result(self) -> T:
        if self._pid is None:
            return self._fn()
        with os.fdopen(self._read, "rb") as fh:  # read to the end first: a full pipe blocks the child
            payload = fh.read()
        os.waitpid(self._pid, 0)
        self._pid = None
        if not payload:
            return self._fn()
        kind, value, printed = pickle.loads(payload)
        if printed:  # what the child printed (warnings, a deliverable it could not write)
            sys.stderr.write(printed)
        if kind == "error":
            raise value
        result, usage = value
        if self._memo is not None and usage is not None:
            self._memo.absorb(usage)  # what the child read and wrote: kept by the memo's prune
        return result


def _child(fn: Callable[[], object], write: int, parent: int) -> None:
    """Run ``fn`` and send back ("ok", result, printed) or ("error", exception, printed); exit
    without cleanup (the parent's atexit handlers, buffers and temp folders are the parent's).
    What it prints is collected and sent back: another thread of the parent (a progress display)
    may have held the real streams' locks at the fork."""
    code = 0
    try:
        _die_with(parent)
        printed = sys.stdout = sys.stderr = io.StringIO()
        try:
            payload = pickle.dumps(("ok", fn(), printed.getvalue()),
                                   protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
            try:
                payload = pickle.dumps(("error", e, printed.getvalue()),
                                       protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
                payload = pickle.dumps(("error", RuntimeError(traceback.format_exc()),
                                        printed.getvalue()))
        view = memoryview(payload)
        while view:
            view = view[os.write(write, view):]
    except BaseException:  # noqa: BLE001 - the parent sees an empty answer and does the work
        code = 1
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this child when the run's process dies (a SIGKILLed run must not leave a
    child holding the output folder's lock, which it inherited)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
