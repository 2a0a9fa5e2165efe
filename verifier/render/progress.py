"""Showing a run's steps as they happen: live bars on a terminal, timestamped lines in a log.

Both are a `Step` callback (see `verifier.progress`): called when a step starts, they return the
meter the step's work reports to. A step ends when the next one starts or when the run is over;
then one summary line says how long it took and what it did ("restore: 4.2 s, 195,000 of
195,000 rows restored").
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar

from verifier.progress import BYTES_WRITTEN, ROWS_RESTORED, TABLES_COUNTED, Meter
from verifier.units import format_bytes, format_seconds, plural

logger = logging.getLogger("verifier")
_ORDER = (BYTES_WRITTEN, ROWS_RESTORED, TABLES_COUNTED)


class StepMeasures:
    """What one step measured so far, and since when it runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.measures: dict[str, tuple[int, int | None]] = {}

    def seconds(self) -> float:
        """Returns how long the step has run."""
        return time.monotonic() - self.started

    def detail(self, *, compact: bool = False) -> str:
        """Returns the measures as words: "1.3 MiB written (2.6 MiB/s), 12 of 27 tables counted", or
        `compact` for a live line: "1.3 MiB (2.6 MiB/s), 12/27 tables"."""
        parts = []
        for what, (done, total) in sorted(self.measures.items(), key=lambda item: _ORDER.index(item[0])):
            if what == BYTES_WRITTEN:
                rate = done / self.seconds() if self.seconds() > 0.5 else None
                parts.append(
                    format_bytes(done)
                    + ("" if compact else " written")
                    + (f" ({format_bytes(rate)}/s)" if rate else "")
                )
                continue
            noun, _, verb = what.partition(" ")  # "tables counted" → tables, counted
            words = plural(total if total is not None else done, noun.removesuffix("s"))
            if compact:
                parts.append(f"{done:,}/{total:,} {words}" if total is not None else f"{done:,} {words}")
            else:
                parts.append(
                    f"{done:,} of {total:,} {words} {verb}" if total is not None else f"{done:,} {words} {verb}"
                )
        return ", ".join(parts)


class LogProgress:
    """Off a terminal: one log line when a step starts and one, with its summary, when it ends."""

    def __init__(self) -> None:
        self.current: StepMeasures | None = None
        self.lock = threading.Lock()

    def __call__(self, name: str) -> Meter:
        """Ends the running step and starts `name`. Returns its meter."""
        self.close()
        step = StepMeasures(name)
        with self.lock:
            self.current = step
        logger.info("step %s: started", name)

        def meter(what: str, done: int, total: int | None) -> None:
            with self.lock:
                step.measures[what] = (done, total)

        return meter

    def close(self) -> None:
        """Ends the running step, if any, with its summary line."""
        with self.lock:
            step, self.current = self.current, None
        if step is not None:
            detail = step.detail()
            logger.info(
                "step %s: done in %s%s", step.name, format_seconds(step.seconds()), f", {detail}" if detail else ""
            )


class TerminalProgress:
    """On a terminal: the running step as a live line (spinner, bar when the total is known, what
    it did so far, elapsed time); each finished step stays as one summary line above it."""

    _PRIMARY = (ROWS_RESTORED, TABLES_COUNTED)  # the measure the bar shows, when the step has one

    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream, highlight=False)
        self.display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            _StepBar(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.current: StepMeasures | None = None
        self.task: TaskID | None = None
        self.lock = threading.Lock()

    def __call__(self, name: str) -> Meter:
        """Ends the running step (leaving its summary line) and shows `name`. Returns its meter."""
        self.close_step()
        step = StepMeasures(name)
        task = self.display.add_task(name, total=None, detail="", bar=None)
        with self.lock:
            self.current, self.task = step, task

        def meter(what: str, done: int, total: int | None) -> None:
            # A step's work may report after the step has ended (the restore that reads along with
            # the dump is watched by a thread that outlives the dump's step): its line is gone, so
            # only its measures change. The lock keeps the line from going while it is updated.
            with self.lock:
                step.measures[what] = (done, total)
                if self.task != task:
                    return
                primary = next((step.measures[key] for key in self._PRIMARY if key in step.measures), None)
                if BYTES_WRITTEN in step.measures:  # the dump's end is unknown: no bar that looks done
                    primary = None
                self.display.update(
                    task, bar=primary if primary and primary[1] else None, detail=step.detail(compact=True)
                )

        return meter

    def close_step(self) -> None:
        """Replaces the running step's live line by its summary line."""
        with self.lock:
            step, task, self.current, self.task = self.current, self.task, None, None
            if step is None or task is None:
                return
            self.display.remove_task(task)
        self.console.print(f"{step.name:<17} {format_seconds(step.seconds()):>7}  {step.detail()}".rstrip())


class _StepBar(ProgressColumn):
    """A bar of the task's `bar` field, (done, total); a pulse while it is None (the end is unknown)."""

    def render(self, task: Task) -> ProgressBar:
        """Returns the bar for the task's current measure."""
        measure = task.fields.get("bar")
        return ProgressBar(
            total=measure[1] if measure else None,
            completed=measure[0] if measure else 0,
            width=10,
            animation_time=task.get_time(),
        )


@contextmanager
def terminal_progress(stream: TextIO) -> Iterator[TerminalProgress]:
    """Yields a TerminalProgress drawing on `stream`; log lines printed meanwhile go above it. A step
    that ends in an exception leaves no summary line (the error says what happened)."""
    progress = TerminalProgress(stream)
    handlers = [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.StreamHandler)]
    with progress.display:
        # the display now routes sys.stderr above its live line: so must the log handlers
        previous = [handler.setStream(sys.stderr) for handler in handlers]
        try:
            yield progress
            progress.close_step()
        finally:
            for handler, stream_before in zip(handlers, previous, strict=True):
                if stream_before is not None:
                    handler.setStream(stream_before)


@contextmanager
def log_progress() -> Iterator[LogProgress]:
    """Yields a LogProgress; the last step's summary is logged when the run is over."""
    progress = LogProgress()
    try:
        yield progress
    finally:
        progress.close()
