"""The daemon's schedule and loop, driven by a fake clock: nothing here sleeps."""

from __future__ import annotations

import os
import random
import signal
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from verifier.config import ScheduleConfig
from verifier.errors import ConfigError, LockHeld
from verifier.scheduler import (
    Daemon,
    Schedule,
    next_occurrence,
    parse_delay,
    previous_occurrence,
)

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


class FakeClock:
    """A clock whose `wait` advances time instantly and records how long the daemon wanted to sleep."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.current

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        if not stop.is_set():
            self.current += timedelta(seconds=seconds)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_next_run_at_0330_moscow_is_0030_utc() -> None:
    assert next_occurrence(utc(2026, 11, 26, 0, 0), time(3, 30), MOSCOW) == utc(2026, 11, 26, 0, 30)
    assert next_occurrence(utc(2026, 11, 26, 0, 30), time(3, 30), MOSCOW) == utc(2026, 11, 27, 0, 30)
    assert previous_occurrence(utc(2026, 11, 26, 0, 30), time(3, 30), MOSCOW) == utc(2026, 11, 26, 0, 30)
    assert previous_occurrence(utc(2026, 11, 26, 0, 29), time(3, 30), MOSCOW) == utc(2026, 11, 25, 0, 30)


def test_wall_clock_is_kept_across_dst_in_berlin() -> None:
    # 03:30 is 01:30 UTC in summer (CEST) and 02:30 UTC in winter (CET)
    before = next_occurrence(utc(2026, 10, 23, 12, 0), time(3, 30), BERLIN)
    after = next_occurrence(before, time(3, 30), BERLIN)
    assert before == utc(2026, 10, 24, 1, 30)  # the last summer night
    assert before.astimezone(BERLIN).strftime("%H:%M") == "03:30"
    assert after == utc(2026, 10, 25, 2, 30)  # fall-back night: 03:30 is already CET
    assert after.astimezone(BERLIN).strftime("%H:%M") == "03:30"


def test_time_skipped_by_spring_forward_runs_an_hour_later_once() -> None:
    # on 2026-03-29 Berlin jumps from 02:00 to 03:00: 02:30 does not exist
    slot = next_occurrence(utc(2026, 3, 28, 12, 0), time(2, 30), BERLIN)
    assert slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") == "2026-03-29 03:30"
    following = next_occurrence(slot, time(2, 30), BERLIN)
    assert following.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") == "2026-03-30 02:30"


def test_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    # on 2026-10-25 Berlin repeats 02:00-03:00: 02:30 happens twice
    slot = next_occurrence(utc(2026, 10, 24, 12, 0), time(2, 30), BERLIN)
    assert slot == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    following = next_occurrence(slot, time(2, 30), BERLIN)
    assert following == utc(2026, 10, 26, 1, 30)  # the next day, not 02:30 CET an hour later


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_occurrence(datetime(2026, 1, 1), time(3, 30), MOSCOW)


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("600", 600), ("45s", 45), ("1h", 3600), ("0", 0)])
def test_parse_delay(text: str, seconds: int) -> None:
    assert parse_delay(text) == timedelta(seconds=seconds)


def test_bad_delay_and_zone_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="randomized_delay"):
        parse_delay("ten minutes")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        Schedule.from_config(ScheduleConfig(timezone="Mars/Olympus"))


def make_daemon(
    clock: FakeClock,
    *,
    last: datetime | None,
    job_codes: list[int] | None = None,
    delay: str = "10m",
    heartbeat: list[datetime] | None = None,
    max_runs: int = 1,
) -> Daemon:
    codes = iter(job_codes or [0] * 10)
    schedule = Schedule.from_config(ScheduleConfig(at="03:30", timezone="Europe/Moscow", randomized_delay=delay))
    return Daemon(
        schedule=schedule,
        job=lambda: next(codes),
        last_run_started=lambda: last,
        heartbeat=(lambda: heartbeat.append(clock.now())) if heartbeat is not None else None,
        heartbeat_interval=timedelta(minutes=15),
        clock=clock,
        rng=random.Random(7),
        max_runs=max_runs,
    )


def test_runs_at_the_scheduled_time_within_the_randomized_delay() -> None:
    clock = FakeClock(utc(2026, 11, 25, 12, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 35), max_runs=3)
    assert daemon.serve() == 0
    starts = [started for started, _ in daemon.runs]
    assert len(starts) == 3
    for night, started in enumerate(starts, start=26):
        slot = utc(2026, 11, night, 0, 30)
        assert slot <= started <= slot + timedelta(minutes=10)
    assert len({(s - s.replace(minute=30, second=0, microsecond=0)) for s in starts}) == 3  # delays differ


def test_zero_delay_runs_exactly_at_the_slot() -> None:
    clock = FakeClock(utc(2026, 11, 25, 12, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 30), delay="0")
    daemon.serve()
    assert daemon.runs == [(utc(2026, 11, 26, 0, 30), 0)]


def test_catch_up_when_the_machine_was_off_at_0330() -> None:
    # last run two nights ago; the daemon starts at 09:00 Moscow today
    clock = FakeClock(utc(2026, 11, 26, 6, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 33), max_runs=2)
    daemon.serve()
    assert daemon.runs[0] == (utc(2026, 11, 26, 6, 0), 0)  # at once
    assert utc(2026, 11, 27, 0, 30) <= daemon.runs[1][0] <= utc(2026, 11, 27, 0, 40)


def test_no_catch_up_when_last_night_ran() -> None:
    clock = FakeClock(utc(2026, 11, 26, 6, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 26, 0, 36))
    assert daemon.catch_up_due() is False


def test_no_double_run_when_restarted_just_before_the_slot() -> None:
    # yesterday's run started at 03:38; restarted at 03:29 today, before today's slot: wait for it
    clock = FakeClock(utc(2026, 11, 26, 0, 29))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 38))
    assert daemon.catch_up_due() is False


def test_catch_up_when_restarted_inside_the_delay_window_before_the_run() -> None:
    # yesterday's run started at 03:38; the daemon restarts at 03:32 today, after the slot: today's
    # run would be lost until tomorrow, so it runs now although the last run is not quite 24 h old
    clock = FakeClock(utc(2026, 11, 26, 0, 32))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 38))
    assert daemon.catch_up_due() is True


def test_no_catch_up_after_a_recent_manual_run() -> None:
    # no run at 03:30 today, but one by hand at 20:00 yesterday: the newest run is younger than a period
    clock = FakeClock(utc(2026, 11, 26, 7, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 17, 0))
    assert daemon.catch_up_due() is False


def test_no_catch_up_on_an_empty_history() -> None:
    clock = FakeClock(utc(2026, 11, 26, 6, 0))
    daemon = make_daemon(clock, last=None)
    daemon.serve()
    assert daemon.runs[0][0] >= utc(2026, 11, 27, 0, 30)


def test_heartbeat_every_interval_between_runs() -> None:
    beats: list[datetime] = []
    clock = FakeClock(utc(2026, 11, 25, 22, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 30), heartbeat=beats, delay="0")
    daemon.serve()
    # 22:00 → 00:30 UTC: a beat every 15 minutes, the first at start
    assert beats[0] == utc(2026, 11, 25, 22, 0)
    assert beats[-1] == utc(2026, 11, 26, 0, 15)
    assert len(beats) == 10
    assert max(clock.waits) <= 15 * 60


def test_a_failing_heartbeat_or_job_does_not_stop_the_daemon() -> None:
    clock = FakeClock(utc(2026, 11, 25, 12, 0))
    calls = iter([LockHeld("another run (pid 42, started 03:30) holds the lock"), RuntimeError("bug"), 0])

    def job() -> int:
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def heartbeat() -> None:
        raise ConnectionRefusedError("zabbix down")

    schedule = Schedule.from_config(ScheduleConfig(at="03:30", timezone="Europe/Moscow"))
    daemon = Daemon(schedule, job, lambda: None, heartbeat=heartbeat, clock=clock, max_runs=3)
    assert daemon.serve() == 0
    assert [code for _, code in daemon.runs] == [3, 3, 0]


def test_stop_request_between_runs_exits_without_running() -> None:
    clock = FakeClock(utc(2026, 11, 25, 12, 0))
    daemon = make_daemon(clock, last=utc(2026, 11, 25, 0, 30))

    class StoppingClock(FakeClock):
        def wait(self, seconds: float, stop: threading.Event) -> None:
            daemon.request_stop()
            super().wait(seconds, stop)

    daemon.clock = StoppingClock(clock.current)
    assert daemon.serve() == 0
    assert daemon.runs == []


def test_sigterm_during_a_run_aborts_it_cleanly_and_exits_zero() -> None:
    clock = FakeClock(utc(2026, 11, 25, 12, 0))
    cleaned: list[str] = []
    daemon: Daemon

    def job() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered to the real handler
            for _ in range(1000):  # the handler runs between bytecodes; raise before the loop ends
                pass
            return 0
        finally:
            cleaned.append("sandbox torn down")

    schedule = Schedule.from_config(ScheduleConfig(at="03:30", timezone="Europe/Moscow", randomized_delay="0"))
    daemon = Daemon(schedule, job, lambda: utc(2026, 11, 25, 0, 30), clock=clock, max_runs=5)
    previous = signal.getsignal(signal.SIGTERM)
    with daemon.signals_handled():
        assert daemon.serve() == 0
    assert signal.getsignal(signal.SIGTERM) == previous
    assert cleaned == ["sandbox torn down"]
    assert daemon.runs == [(utc(2026, 11, 26, 0, 30), None)]
    assert daemon.stop_event.is_set()


def test_journald_lines_carry_the_syslog_priority(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import logging

    from verifier import daemon_logging

    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        handlers = daemon_logging.configure(log_file=tmp_path / "logs" / "daemon.log")
        record = logging.LogRecord("verifier.scheduler", logging.WARNING, __file__, 1, "next run at %s", ("x",), None)
        assert handlers[0].format(record) == "<4>verifier.scheduler: next run at x"
        logging.getLogger("verifier.scheduler").error("run failed: lock held")
        for handler in handlers:
            handler.flush()
        line = (tmp_path / "logs" / "daemon.log").read_text()
        assert line.endswith("ERROR verifier.scheduler: run failed: lock held\n")
        assert line[:4].isdigit()  # timestamped in the file
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
