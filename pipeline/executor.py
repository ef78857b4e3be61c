"""Where per-document work runs: in this process, in a pool of long-lived worker processes, or as
Dask tasks (a ``LocalCluster`` or an existing scheduler).

Every executor has one method, ``imap(fn, items)``, yielding ``(index, result)`` as work finishes,
where result is ``fn(*items[index])`` or the exception it raised.  The caller puts results back in
input order, so the outputs do not depend on which worker finished first.  At most a few tasks
per worker are in flight, so memory stays bounded however many files a season has.

Workers are long-lived and run ``warm_up`` once, so jieba's dictionary and the tag model are
loaded once per worker, not once per file.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

#: tasks in flight per worker (enough to keep workers busy, few enough to bound memory)
IN_FLIGHT_PER_WORKER = 4


class ExecutorError(Exception):
    """The executor cannot start (e.g. no Dask scheduler at the address); one line for the user."""


class WorkerDied(Exception):
    """The worker process running a task died (killed, out of memory, a crashing parser)."""


class Executor(Protocol):
    name: str
    workers: int

    def imap(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]
             ) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class InProcess:
    """Runs tasks one after another in this process (``--jobs 1``, or nothing to parallelise)."""

    name = "inprocess"
    workers = 1

    def __init__(self, initializer: Callable[[], None] | None = None) -> None:
        self._init = initializer

    def imap(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]
             ) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(items):
            try:
                yield i, fn(*args)
            except Exception as e:  # reported per item, like the other executors
                yield i, e

    def close(self) -> None:
        pass


class LocalPool:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes.

    ``spawn`` (not ``fork``) because the parent may run threads (progress display) and forking a
    threaded process can deadlock.  A pool broken by a dying worker is rebuilt; the tasks that were
    in flight are retried one at a time, and the one that kills its worker again alone comes back
    as ``WorkerDied`` while the others complete normally.
    """

    name = "local"

    def __init__(self, workers: int, initializer: Callable[[], None] | None = None) -> None:
        self.workers = max(1, workers)
        self._init = initializer
        self._pool = self._new_pool()
        try:
            # workers that cannot even start (e.g. a caller's script without a __main__ guard,
            # which spawn re-runs) would otherwise fail every file one by one
            self._pool.submit(os.getpid).result()
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise ExecutorError("worker processes cannot start (is the calling script missing "
                                "an `if __name__ == \"__main__\":` guard?)") from None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=self._init)

    def imap(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]
             ) -> Iterator[tuple[int, Any]]:
        todo = deque(range(len(items)))
        suspects: deque[int] = deque()  # in flight when a worker died; retried one at a time
        running: dict[Future[Any], tuple[int, bool]] = {}
        limit = self.workers * IN_FLIGHT_PER_WORKER
        while todo or suspects or running:
            if suspects:
                if not running:
                    i = suspects.popleft()
                    running[self._pool.submit(fn, *items[i])] = (i, True)
            else:
                while todo and len(running) < limit:
                    i = todo.popleft()
                    running[self._pool.submit(fn, *items[i])] = (i, False)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                i, alone = running.pop(fut)
                try:
                    yield i, fut.result()
                except BrokenProcessPool:
                    broken = True
                    if alone:  # it ran alone, so it is the one that kills its worker
                        yield i, WorkerDied("the worker process died while processing this file")
                    else:
                        suspects.append(i)
                except Exception as e:
                    yield i, e
            if broken:
                suspects.extend(i for i, _ in running.values())
                running.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Per-document tasks on Dask: ``distributed.Client`` to ``scheduler`` or to a fresh
    ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)``.

    Workers must see the input files at the same paths (a shared file system), as is usual for
    a cluster; the results travel back to this process, which alone writes cache and outputs.
    """

    name = "dask"

    def __init__(self, workers: int, scheduler: str | None = None,
                 initializer: Callable[[], None] | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("--executor dask needs dask[distributed]: "
                                "pip install 'huibian[dask]'") from None
        self._cluster = None
        try:
            if scheduler:
                self._client = Client(scheduler, timeout="10s")
            else:
                self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as e:
            self._shutdown_cluster()
            where = scheduler or "a LocalCluster"
            raise ExecutorError(f"cannot start Dask on {where}: {e}") from None
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
        if initializer is not None:
            self._client.run(initializer)  # once per worker process

    def imap(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]
             ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        limit = self.workers * IN_FLIGHT_PER_WORKER
        nxt = 0
        ac = as_completed()
        index: dict[str, int] = {}

        def submit() -> None:
            nonlocal nxt
            fut = self._client.submit(fn, *items[nxt], pure=False)
            index[fut.key] = nxt
            ac.add(fut)
            nxt += 1

        while nxt < len(items) and nxt < limit:
            submit()
        for fut in ac:
            i = index.pop(fut.key)
            try:
                yield i, fut.result()
            except Exception as e:  # includes KilledWorker after Dask's own retries
                yield i, e
            fut.release()
            if nxt < len(items):
                submit()

    def _shutdown_cluster(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def close(self) -> None:
        self._client.close()
        self._shutdown_cluster()


def make_executor(kind: str, jobs: int, scheduler: str | None = None,
                  initializer: Callable[[], None] | None = None) -> Executor:
    if kind == "dask":
        return DaskExecutor(jobs, scheduler, initializer)
    if kind != "local":
        raise ExecutorError(f"unknown executor '{kind}' (choose local or dask)")
    if jobs <= 1:
        return InProcess(initializer)
    return LocalPool(jobs, initializer)
