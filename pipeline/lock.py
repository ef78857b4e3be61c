"""One run per output folder: an exclusive ``flock`` on ``<out_dir>/.lock``.

The kernel drops the lock when the process dies (even by SIGKILL), so a killed run never leaves a
stale lock behind; a second run on the same folder fails at once with a clear message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class LockError(Exception):
    """Another run holds the output folder (or the lock cannot be taken); one line for the user."""


class RunLock:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LockError(f"cannot write to output folder {self.path.parent}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockError(f"another huibian run{who} is writing to {self.path.parent}; "
                            "wait for it to finish or choose another --out") from None
        # record who holds it, for the message above
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
