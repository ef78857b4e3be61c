"""Per-stage progress on the terminal (counts and rate) via rich; silent when stderr is not a TTY,
so logs of unattended runs and test output stay clean."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class _Rate(ProgressColumn):
    """Items per second, plus how many came from the cache."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        rate = f"{speed:,.1f}/s" if speed else ""
        reused = task.fields.get("reused", 0)
        return Text(f"{rate}  reused {reused}" if reused else rate, style="progress.data.speed")


class RunProgress:
    """``with RunProgress() as p: t = p.stage("documents", 1000); p.advance(t)``."""

    def __init__(self, enabled: bool | None = None) -> None:
        console = Console(stderr=True)
        self.enabled = console.is_terminal if enabled is None else enabled
        self._reused: dict[TaskID, int] = {}
        self._progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), _Rate(),
            TimeElapsedColumn(), console=console, disable=not self.enabled, transient=False,
        )

    def stage(self, name: str, total: int | None) -> TaskID:
        return self._progress.add_task(name, total=total, reused=0)

    def advance(self, task: TaskID, n: int = 1, reused: int = 0) -> None:
        self._reused[task] = self._reused.get(task, 0) + reused
        self._progress.update(task, advance=n, reused=self._reused[task])

    def done(self, task: TaskID) -> None:
        """Mark a stage without a known size (analyze, write) as finished."""
        self._progress.update(task, total=1, completed=1)

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()


def say(message: str) -> None:
    """A one-line note on stderr (used for the end-of-run summary when not on a TTY too)."""
    print(message, file=sys.stderr)
