"""The daemon: run the nightly job at `schedule.at` in `schedule.timezone`, heartbeat in between.

All time goes through a `Clock` (now + an interruptible wait) so tests drive the loop with a fake
clock and never sleep. The next run is computed with `zoneinfo` on the wall clock of the configured
zone, so "03:30 Europe/Berlin" stays 03:30 across DST changes: a time that does not exist on the
spring-forward day runs at the same offset later (02:30 → 03:30), a time that occurs twice on the
fall-back day runs once, at its first occurrence.

Why not the `schedule` library: its time-zone support needs pytz, it reads `datetime.now()` itself
(no injectable clock), and it keeps the next run as a naive local time, which is ambiguous in the
machine's own fall-back hour. The loop here is small enough to own.

Catch-up: when the daemon starts, the newest run in the history started before the most recent
scheduled slot (the machine was off at 03:30) and is older than one period, it runs once at start.
"One period" is shortened by the randomized delay, so a daemon restarted at 03:32 after yesterday's
03:38 run does not skip tonight. An empty history waits for the first slot, as a `Persistent=true`
systemd timer does.
"""

from __future__ import annotations

import logging
import random
import re
import signal
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from verifier.config import ScheduleConfig
from verifier.errors import ConfigError, VerifierError

logger = logging.getLogger(__name__)

PERIOD = timedelta(days=1)
DEFAULT_HEARTBEAT_INTERVAL = timedelta(minutes=15)
_DELAY = re.compile(r"^(\d+)([smh]?)$")


class Clock(Protocol):
    """Where the daemon gets the time and waits."""

    def now(self) -> datetime:
        """Returns the current time, timezone-aware."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Returns after `seconds`, or earlier when `stop` is set."""
        ...


class SystemClock:
    """The real clock: `datetime.now(UTC)` and `Event.wait`."""

    def now(self) -> datetime:
        """Returns the current UTC time."""
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Sleeps up to `seconds`, waking at once when `stop` is set."""
        stop.wait(max(seconds, 0.0))


class Stopped(BaseException):
    """Raised inside a running job when SIGTERM/SIGINT arrives, so its `finally` blocks clean up.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in a step cannot swallow it.
    """


@dataclass(frozen=True)
class Schedule:
    """When the nightly job runs: a wall-clock time in a zone, plus up to `randomized_delay` later."""

    at: time
    timezone: tzinfo
    randomized_delay: timedelta

    @classmethod
    def from_config(cls, config: ScheduleConfig) -> Schedule:
        """Returns the schedule of the config's `schedule:` section.

        Raises ConfigError for an unknown time zone.
        """
        hour, minute = (int(part) for part in config.at.split(":"))
        return cls(time(hour, minute), zone(config.timezone), parse_delay(config.randomized_delay))

    def next_slot(self, after: datetime) -> datetime:
        """Returns the first scheduled instant (UTC, without the random delay) strictly after `after`."""
        return next_occurrence(after, self.at, self.timezone)

    def previous_slot(self, now: datetime) -> datetime:
        """Returns the latest scheduled instant (UTC, without the random delay) at or before `now`."""
        return previous_occurrence(now, self.at, self.timezone)

    def describe(self) -> str:
        """Returns e.g. "daily at 03:30 Europe/Moscow, randomized delay up to 0:10:00"."""
        return f"daily at {self.at.strftime('%H:%M')} {self.timezone}, randomized delay up to {self.randomized_delay}"


@dataclass
class Daemon:
    """Runs `job` on `schedule`, calls `heartbeat` between runs, stops cleanly on SIGTERM/SIGINT.

    `job` runs one `verifier run` and returns its exit code; `last_run_started` reads the newest
    run's start from the history (None when there is none).
    """

    schedule: Schedule
    job: Callable[[], int]
    last_run_started: Callable[[], datetime | None]
    heartbeat: Callable[[], object] | None = None
    heartbeat_interval: timedelta = DEFAULT_HEARTBEAT_INTERVAL
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    stop_event: threading.Event = field(default_factory=threading.Event)
    max_runs: int | None = None
    runs: list[tuple[datetime, int | None]] = field(default_factory=list)
    _running: bool = False

    def serve(self) -> int:
        """Runs until stopped (or until `max_runs` jobs have run). Returns the exit code 0."""
        logger.info("daemon started: %s", self.schedule.describe())
        if self.catch_up_due():
            self._run_job(reason="catch-up: the last scheduled run was missed")
        next_heartbeat = self.clock.now()
        while not self._finished():
            due = self.next_run_time()
            logger.info("next run at %s", _local(due, self.schedule.timezone))
            while not self.stop_event.is_set():
                now = self.clock.now()
                if now >= due:
                    break
                if self.heartbeat is not None and now >= next_heartbeat:
                    self._beat()
                    next_heartbeat = now + self.heartbeat_interval
                wake = min(due, next_heartbeat) if self.heartbeat is not None else due
                self.clock.wait((wake - now).total_seconds(), self.stop_event)
            if self.stop_event.is_set():
                break
            self._run_job(reason="scheduled")
        logger.info("daemon stopped")
        return 0

    def catch_up_due(self) -> bool:
        """Returns True when the newest run predates the latest slot and is older than about a period."""
        last = self.last_run_started()
        now = self.clock.now()
        if last is None:
            logger.info("no run in the history yet: waiting for the first scheduled run")
            return False
        old_enough = now - last > PERIOD - self.schedule.randomized_delay
        missed = old_enough and last < self.schedule.previous_slot(now)
        if missed:
            logger.warning("the newest run started %s, before the last scheduled slot: running now", last.isoformat())
        return missed

    def next_run_time(self) -> datetime:
        """Returns the next slot after now plus a random delay in [0, randomized_delay]."""
        slot = self.schedule.next_slot(self.clock.now())
        delay = self.rng.uniform(0, self.schedule.randomized_delay.total_seconds())
        return slot + timedelta(seconds=delay)

    def request_stop(self, signum: int | None = None) -> None:
        """Asks the loop to stop; when a job is running, aborts it by raising `Stopped` in it."""
        name = signal.Signals(signum).name if signum is not None else "stop request"
        logger.info("%s received: stopping", name)
        self.stop_event.set()
        if self._running and signum is not None:
            raise Stopped(name)

    @contextmanager
    def signals_handled(self) -> Iterator[None]:
        """Installs SIGTERM/SIGINT handlers that call `request_stop` for the duration of the block."""

        def handler(signum: int, frame: types.FrameType | None) -> None:
            self.request_stop(signum)

        previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def _finished(self) -> bool:
        return self.stop_event.is_set() or (self.max_runs is not None and len(self.runs) >= self.max_runs)

    def _run_job(self, *, reason: str) -> None:
        started = self.clock.now()
        logger.info("run starting (%s)", reason)
        code: int | None = None
        self._running = True
        try:
            code = self.job()
            logger.info("run finished with exit code %d", code)
        except Stopped:
            logger.warning("run aborted by a stop request; its steps cleaned up after themselves")
        except VerifierError as error:
            code = error.exit_code
            logger.error("run failed: %s", error)
        except Exception:
            code = 3
            logger.exception("run crashed; the daemon keeps the schedule")
        finally:
            self._running = False
        self.runs.append((started, code))

    def _beat(self) -> None:
        assert self.heartbeat is not None
        try:
            self.heartbeat()
        except Exception as error:
            logger.warning("heartbeat failed: %s", error)


def zone(name: str) -> ZoneInfo:
    """Returns the IANA time zone `name`. Raises ConfigError when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone: unknown time zone {name!r} (e.g. Europe/Moscow, UTC)") from None


def parse_delay(text: str) -> timedelta:
    """Returns "10m", "600", "600s", "1h" as a timedelta. Raises ConfigError on anything else."""
    match = _DELAY.match(text.strip())
    if match is None:
        raise ConfigError(f"schedule.randomized_delay: expected e.g. 10m, 600s or 1h, got {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return timedelta(seconds=int(match.group(1)) * unit)


def next_occurrence(after: datetime, at: time, timezone: tzinfo) -> datetime:
    """Returns the first instant (UTC) strictly after `after` whose wall clock in `timezone` reads `at`.

    A wall time skipped by a DST change maps to the same offset later (zoneinfo's fold=0 rule);
    a repeated one maps to its first occurrence. Raises ValueError if `after` is naive.
    """
    _aware(after)
    start = after.astimezone(timezone).date() - timedelta(days=1)
    for offset in range(4):
        candidate = _at(start + timedelta(days=offset), at, timezone)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a wall-clock time occurs every day")  # pragma: no cover


def previous_occurrence(now: datetime, at: time, timezone: tzinfo) -> datetime:
    """Returns the latest instant (UTC) at or before `now` whose wall clock in `timezone` reads `at`.

    Raises ValueError if `now` is naive.
    """
    _aware(now)
    start = now.astimezone(timezone).date() + timedelta(days=1)
    for offset in range(4):
        candidate = _at(start - timedelta(days=offset), at, timezone)
        if candidate <= now:
            return candidate
    raise AssertionError("unreachable: a wall-clock time occurs every day")  # pragma: no cover


def _at(day: date, at: time, timezone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=timezone).astimezone(UTC)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("the scheduler needs timezone-aware datetimes")


def _local(moment: datetime, timezone: tzinfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M:%S %Z")
