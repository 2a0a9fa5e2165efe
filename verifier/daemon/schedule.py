"""The daemon: `verifier run` every night on the `schedule` library, the Zabbix heartbeat in between.

Glue around `schedule`: catch-up of a missed night at start, the randomized delay (drawn and logged
when the job starts), a clean stop on SIGTERM/SIGINT, the heartbeat during a run (from a thread:
`schedule` runs one job at a time), and `_NightlyJob`, which corrects schedule 1.2.2 where the
`test_schedule_alone_*` tests pin it: its DST heuristic misplaces runs (an hour early the day after
a skipped time, twice on a fall-back night, over and over after Santiago's midnight change), and it
compares a naive time of the machine's own zone, which names two instants in its fall-back hour.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import schedule

from verifier.config import ScheduleConfig
from verifier.errors import VerifierError

logger = logging.getLogger(__name__)


class Stopped(BaseException):
    """Raised in a running job on SIGTERM/SIGINT so its `finally` blocks clean up (a BaseException,
    so that `except Exception` in a step cannot swallow it)."""


@dataclass
class Daemon:
    """Runs `job` (one `verifier run`, returning its exit code) on `schedule`, `heartbeat` in between.

    `last_run_started` reads the newest run's start from the history (None when there is none);
    `sleep` waits up to its seconds or until `stop_event` (default `stop_event.wait`; tests move the clock).
    """

    schedule: ScheduleConfig
    job: Callable[[], int]
    last_run_started: Callable[[], datetime | None]
    heartbeat: Callable[[], object] | None = None
    heartbeat_interval: timedelta = timedelta(minutes=15)
    sleep: Callable[[float], object] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    _running: bool = False

    @cached_property
    def zone(self) -> ZoneInfo:
        """Returns `schedule.timezone`, validated when the config loaded."""
        return ZoneInfo(self.schedule.timezone)

    def serve(self) -> int:
        """Runs until `stop_event` is set. Returns the exit code 0."""
        delay = timedelta(seconds=self.schedule.randomized_delay_seconds)
        logger.info("daemon started: daily at %s %s, randomized delay up to %s", self.schedule.at, self.zone, delay)
        if self._missed_a_night(delay):
            self._run("catch-up: the last scheduled run was missed")
        scheduler = schedule.Scheduler()
        nightly = _NightlyJob(scheduler, self.zone)
        nightly.day.at(self.schedule.at, self.schedule.timezone).do(self._nightly)
        if self.heartbeat is not None:
            scheduler.every(max(round(self.heartbeat_interval.total_seconds()), 1)).seconds.do(self._beat).run()
        while not self.stop_event.is_set():
            logger.info("next run at %s", nightly.next_run_utc.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z"))
            while not (self.stop_event.is_set() or nightly.should_run):
                scheduler.run_pending()  # the heartbeat; it is due at most an interval after each wake
                self._sleep(min(nightly.next_run_utc - datetime.now(UTC), self.heartbeat_interval).total_seconds())
            scheduler.run_pending()
        logger.info("daemon stopped")
        return 0

    @contextmanager
    def signals_handled(self) -> Iterator[None]:
        """Within the block, SIGTERM/SIGINT set `stop_event` and abort a running job with `Stopped`."""

        def handler(signum: int, frame: types.FrameType | None) -> None:
            logger.info("%s received: stopping", signal.Signals(signum).name)
            self.stop_event.set()
            if self._running:
                raise Stopped(signal.Signals(signum).name)

        previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def _missed_a_night(self, delay: timedelta) -> bool:
        # the newest run started before the latest slot and more than a day less the delay ago (so that
        # a restart at 03:32 after yesterday's 03:38 run does not skip tonight); an empty history waits
        # for the first slot, as a `Persistent=true` systemd timer does
        last, now, at = self.last_run_started(), datetime.now(UTC), time.fromisoformat(self.schedule.at)
        today = now.astimezone(self.zone).date()
        latest_slot = max(
            slot for day in (today - timedelta(days=1), today) if (slot := slot_on(day, at, self.zone)) <= now
        )
        missed = last is not None and now - last > timedelta(days=1) - delay and last < latest_slot
        if missed:
            logger.warning("the newest run started %s, before the last scheduled slot: running now", last)
        return missed

    def _nightly(self) -> None:
        delay = random.uniform(0, self.schedule.randomized_delay_seconds)
        start = (datetime.now(UTC) + timedelta(seconds=delay)).astimezone(self.zone)
        logger.info("randomized delay: %d s, starting at %s", delay, start.strftime("%H:%M:%S %Z"))
        self._run("scheduled", delay)

    def _run(self, reason: str, delay: float = 0.0) -> None:
        self._running, beating = True, threading.Event()
        thread = threading.Thread(target=self._beat_until, args=(beating,), name="heartbeat", daemon=True)
        if self.heartbeat is not None:  # while a run lasts, the heartbeat job cannot run
            thread.start()
        try:
            self._sleep(delay)
            if not self.stop_event.is_set():
                logger.info("run starting (%s)", reason)
                logger.info("run finished with exit code %d", self.job())
        except Stopped:
            logger.warning("run aborted by a stop request; its steps cleaned up after themselves")
        except VerifierError as error:
            logger.error("run failed: %s", error)
        except Exception:
            logger.exception("run crashed; the daemon keeps the schedule")
        finally:
            self._running = False
            beating.set()
            if thread.is_alive():
                thread.join()

    def _beat_until(self, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_interval.total_seconds()):
            self._beat()

    def _beat(self) -> None:
        try:
            if self.heartbeat is not None:
                self.heartbeat()
        except Exception as error:
            logger.warning("heartbeat failed: %s", error)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self.stop_event.is_set():
            (self.sleep or self.stop_event.wait)(seconds)


def slot_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Returns (in UTC) when `zone`'s wall clock reads `at` on `day`: a time a DST change repeats at
    its first occurrence, a time it skips the same offset later (zoneinfo's fold=0)."""
    return datetime.combine(day, at, zone).astimezone(UTC)


class _NightlyJob(schedule.Job):
    """`every().day.at(at, zone)`: the library picks the day, `slot_on` the instant, due by UTC."""

    next_run_utc: datetime = datetime.max.replace(tzinfo=UTC)

    def __init__(self, scheduler: schedule.Scheduler, zone: ZoneInfo) -> None:
        super().__init__(1, scheduler)
        self.zone = zone

    def _correct_utc_offset(self, moment: datetime, fixate_time: bool) -> datetime:
        assert self.at_time is not None, "a daily job at a time"
        self.next_run_utc = slot_on(moment.date(), self.at_time, self.zone)  # the last call places the run
        return self.next_run_utc.astimezone(self.zone)

    @property
    def should_run(self) -> bool:
        """Returns True when the next run is due."""
        return datetime.now(UTC) >= self.next_run_utc
