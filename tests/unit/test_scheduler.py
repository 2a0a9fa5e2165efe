"""The daemon on the `schedule` library, driven through time-machine: nothing here sleeps.

The `time_machine` fixture sets the clock and the machine's own time zone; the daemon's waits move
that clock instead of sleeping. Only the heartbeat-during-a-run test uses real time (a thread's
10 ms interval), bounded by a deadline.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schedule
from time_machine import TimeMachineFixture

from verifier.config import ScheduleConfig
from verifier.daemon.schedule import Daemon
from verifier.errors import LockHeld


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(moments: list[datetime], zone: str) -> list[str]:
    return [moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") for moment in moments]


def serve(
    time_machine: TimeMachineFixture,
    start: datetime,
    *,
    runs: int,
    last: datetime | None = None,
    at: str = "03:30",
    zone: str = "Europe/Moscow",
    delay: str = "0",
    machine_zone: str = "UTC",
    run_minutes: float = 1,
    beats: list[datetime] | None = None,
) -> list[datetime]:
    """Serves from `start` on a machine whose zone is `machine_zone` until `runs` runs started, each
    taking `run_minutes`. Returns their starts (UTC). A daemon that stops running fails, not loops."""
    time_machine.move_to(start.astimezone(ZoneInfo(machine_zone)), tick=False)
    starts: list[datetime] = []
    deadline = start + timedelta(days=runs + 2)
    waits = 0

    def job() -> int:
        starts.append(datetime.now(UTC))
        time_machine.shift(timedelta(minutes=run_minutes))
        if len(starts) == runs:
            daemon.stop_event.set()
        return 0

    def wait(seconds: float) -> None:
        nonlocal waits
        waits += 1
        assert datetime.now(UTC) < deadline and waits < 10_000, f"{runs} runs expected, got {starts}"
        time_machine.shift(seconds)

    daemon = Daemon(
        ScheduleConfig(at=at, timezone=zone, randomized_delay=delay),
        job,
        lambda: last,
        heartbeat=(lambda: beats.append(datetime.now(UTC))) if beats is not None else None,
        sleep=wait,
    )
    assert daemon.serve() == 0
    return starts


def test_runs_at_0330_moscow_that_is_0030_utc(time_machine: TimeMachineFixture) -> None:
    starts = serve(time_machine, utc(2026, 11, 25, 12, 0), runs=3)
    assert starts == [utc(2026, 11, 26, 0, 30), utc(2026, 11, 27, 0, 30), utc(2026, 11, 28, 0, 30)]


@pytest.mark.parametrize(
    ("zone", "at", "start", "run_minutes", "expected"),
    [
        pytest.param(
            "Europe/Berlin", "03:30", utc(2026, 10, 23, 12), 1,
            ["2026-10-24 03:30 CEST", "2026-10-25 03:30 CET", "2026-10-26 03:30 CET"],
            id="berlin-wall-clock-kept-across-fall-back",
        ),
        pytest.param(
            "Europe/Berlin", "03:30", utc(2026, 3, 27, 12), 1,
            ["2026-03-28 03:30 CET", "2026-03-29 03:30 CEST", "2026-03-30 03:30 CEST"],
            id="berlin-wall-clock-kept-across-spring-forward",
        ),
        pytest.param(
            # on 2026-03-29 Berlin jumps from 02:00 to 03:00: 02:30 does not exist, runs once at 03:30
            "Europe/Berlin", "02:30", utc(2026, 3, 27, 12), 1,
            ["2026-03-28 02:30 CET", "2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"],
            id="berlin-time-skipped-by-spring-forward-runs-an-hour-later-once",
        ),
        pytest.param(
            # on 2026-10-25 Berlin repeats 02:00-03:00: 02:30 runs once, at its first occurrence,
            # also when the run ends inside the repeated hour, before the second 02:30
            "Europe/Berlin", "02:30", utc(2026, 10, 23, 12), 50,
            ["2026-10-24 02:30 CEST", "2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"],
            id="berlin-time-repeated-by-fall-back-runs-once",
        ),
        pytest.param(
            "America/New_York", "02:30", utc(2026, 3, 6, 12), 1,
            ["2026-03-07 02:30 EST", "2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT"],
            id="new-york-time-skipped-by-spring-forward",
        ),
        pytest.param(
            "America/New_York", "01:30", utc(2026, 10, 30, 12), 50,
            ["2026-10-31 01:30 EDT", "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"],
            id="new-york-time-repeated-by-fall-back",
        ),
        pytest.param(
            # Santiago skips 00:00-01:00 on 2026-09-06
            "America/Santiago", "00:30", utc(2026, 9, 4, 12), 1,
            ["2026-09-05 00:30 -04", "2026-09-06 01:30 -03", "2026-09-07 00:30 -03"],
            id="santiago-time-skipped-at-midnight",
        ),
        pytest.param(
            "Europe/Moscow", "03:30", utc(2026, 10, 23, 12), 1,
            ["2026-10-24 03:30 MSK", "2026-10-25 03:30 MSK", "2026-10-26 03:30 MSK"],
            id="moscow-has-no-dst-while-europe-falls-back",
        ),
        pytest.param(
            "Europe/Moscow", "03:30", utc(2026, 3, 27, 12), 1,
            ["2026-03-28 03:30 MSK", "2026-03-29 03:30 MSK", "2026-03-30 03:30 MSK"],
            id="moscow-has-no-dst-while-europe-springs-forward",
        ),
    ],
)  # fmt: skip
def test_dst_changes_of_the_schedule_zone(
    time_machine: TimeMachineFixture, zone: str, at: str, start: datetime, run_minutes: float, expected: list[str]
) -> None:
    starts = serve(time_machine, start, runs=3, at=at, zone=zone, run_minutes=run_minutes)
    assert local(starts, zone) == expected


@pytest.mark.parametrize(
    ("machine_zone", "zone", "at", "start", "expected"),
    [
        pytest.param(
            "Europe/Berlin", "Europe/Moscow", "03:30", utc(2026, 10, 23, 12),
            ["2026-10-24 00:30 UTC", "2026-10-25 00:30 UTC", "2026-10-26 00:30 UTC"],
            id="berlin-machine-moscow-schedule",
        ),
        pytest.param(
            # 01:30 UTC on 2026-10-25 is the second 02:30 of the machine's repeated hour
            "Europe/Berlin", "UTC", "01:30", utc(2026, 10, 23, 12),
            ["2026-10-24 01:30 UTC", "2026-10-25 01:30 UTC", "2026-10-26 01:30 UTC"],
            id="slot-in-the-machines-repeated-hour",
        ),
        pytest.param(
            # 09:30 Moscow on 2026-11-01 is 06:30 UTC, the second 01:30 of New York's repeated hour
            "America/New_York", "Europe/Moscow", "09:30", utc(2026, 10, 30, 12),
            ["2026-10-31 06:30 UTC", "2026-11-01 06:30 UTC", "2026-11-02 06:30 UTC"],
            id="new-york-machine-moscow-schedule",
        ),
    ],
)  # fmt: skip
def test_a_machine_whose_own_zone_differs_from_the_schedule_zone(
    time_machine: TimeMachineFixture, machine_zone: str, zone: str, at: str, start: datetime, expected: list[str]
) -> None:
    # the heartbeat wakes the daemon every 15 minutes, also inside the machine's repeated hour
    starts = serve(time_machine, start, runs=3, at=at, zone=zone, machine_zone=machine_zone, beats=[])
    assert local(starts, "UTC") == expected


def test_runs_within_the_randomized_delay_which_is_logged(
    time_machine: TimeMachineFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="verifier.daemon.schedule")
    starts = serve(time_machine, utc(2026, 11, 25, 12, 0), runs=3, last=utc(2026, 11, 25, 0, 35), delay="10m")
    delays = [start - utc(2026, 11, night, 0, 30) for night, start in enumerate(starts, start=26)]
    assert all(timedelta(0) <= delay <= timedelta(minutes=10) for delay in delays), delays
    assert len(set(delays)) == 3
    announced = [record.getMessage() for record in caplog.records if "randomized delay:" in record.getMessage()]
    assert len(announced) == 3
    first = starts[0].astimezone(ZoneInfo("Europe/Moscow")).strftime("%H:%M:%S")
    assert f"starting at {first} MSK" in announced[0]


def test_catch_up_when_the_machine_was_off_at_0330(time_machine: TimeMachineFixture) -> None:
    # last run two nights ago; the daemon starts at 09:00 Moscow today
    starts = serve(time_machine, utc(2026, 11, 26, 6, 0), runs=2, last=utc(2026, 11, 25, 0, 33), delay="10m")
    assert starts[0] == utc(2026, 11, 26, 6, 0)  # at once
    assert utc(2026, 11, 27, 0, 30) <= starts[1] <= utc(2026, 11, 27, 0, 40)


def test_no_catch_up_when_last_night_ran(time_machine: TimeMachineFixture) -> None:
    starts = serve(time_machine, utc(2026, 11, 26, 6, 0), runs=1, last=utc(2026, 11, 26, 0, 36), delay="10m")
    assert utc(2026, 11, 27, 0, 30) <= starts[0] <= utc(2026, 11, 27, 0, 40)


def test_no_double_run_when_restarted_just_before_the_slot(time_machine: TimeMachineFixture) -> None:
    # yesterday's run started at 03:38; restarted at 03:29 today, before today's slot: wait for it
    starts = serve(time_machine, utc(2026, 11, 26, 0, 29), runs=1, last=utc(2026, 11, 25, 0, 38), delay="10m")
    assert utc(2026, 11, 26, 0, 30) <= starts[0] <= utc(2026, 11, 26, 0, 40)


def test_catch_up_when_restarted_inside_the_delay_window_before_the_run(time_machine: TimeMachineFixture) -> None:
    # yesterday's run started at 03:38; the daemon restarts at 03:32 today, after the slot: today's
    # run would be lost until tomorrow, so it runs now although the last run is not quite 24 h old
    starts = serve(time_machine, utc(2026, 11, 26, 0, 32), runs=1, last=utc(2026, 11, 25, 0, 38), delay="10m")
    assert starts == [utc(2026, 11, 26, 0, 32)]


def test_no_catch_up_after_a_recent_manual_run(time_machine: TimeMachineFixture) -> None:
    # no run at 03:30 today, but one by hand at 20:00 yesterday: the newest run is younger than a period
    starts = serve(time_machine, utc(2026, 11, 26, 7, 0), runs=1, last=utc(2026, 11, 25, 17, 0))
    assert starts == [utc(2026, 11, 27, 0, 30)]


def test_no_catch_up_on_an_empty_history(time_machine: TimeMachineFixture) -> None:
    starts = serve(time_machine, utc(2026, 11, 26, 6, 0), runs=1, last=None)
    assert starts == [utc(2026, 11, 27, 0, 30)]


def test_heartbeat_every_interval_between_runs(time_machine: TimeMachineFixture) -> None:
    beats: list[datetime] = []
    starts = serve(time_machine, utc(2026, 11, 25, 22, 0), runs=1, last=utc(2026, 11, 25, 0, 30), beats=beats)
    assert starts == [utc(2026, 11, 26, 0, 30)]
    # 22:00 → 00:30 UTC: a beat every 15 minutes, the first at start
    before_the_run = [beat for beat in beats if beat < starts[0]]
    assert before_the_run == [utc(2026, 11, 25, 22, 0) + timedelta(minutes=15 * n) for n in range(10)]


def test_heartbeat_during_a_long_run() -> None:
    """Real time: the run waits (up to a deadline) until the heartbeat thread has beaten three times."""
    beaten = threading.Event()
    beats: list[str] = []
    daemon: Daemon

    def heartbeat() -> None:
        beats.append(threading.current_thread().name)
        if len(beats) == 3:
            beaten.set()

    def job() -> int:
        assert beaten.wait(timeout=30), f"only {len(beats)} heartbeats during the run"
        daemon.stop_event.set()
        return 0

    daemon = Daemon(
        ScheduleConfig(), job, lambda: datetime.now(UTC) - timedelta(days=2),
        heartbeat=heartbeat, heartbeat_interval=timedelta(milliseconds=10),
    )  # fmt: skip
    assert daemon.serve() == 0
    assert beats[:3] == ["heartbeat"] * 3
    assert not [thread for thread in threading.enumerate() if thread.name == "heartbeat"], "thread left running"


def test_a_failing_heartbeat_or_job_does_not_stop_the_daemon(
    time_machine: TimeMachineFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="verifier.daemon.schedule")
    time_machine.move_to(utc(2026, 11, 25, 12, 0), tick=False)
    outcomes = iter([LockHeld("another run (pid 42, started 03:30) holds the lock"), RuntimeError("bug"), 0])
    daemon: Daemon

    def job() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        daemon.stop_event.set()
        return outcome

    def heartbeat() -> None:
        raise ConnectionRefusedError("zabbix down")

    daemon = Daemon(
        ScheduleConfig(at="03:30", timezone="Europe/Moscow", randomized_delay="0"), job, lambda: None,
        heartbeat=heartbeat, sleep=time_machine.shift,
    )  # fmt: skip
    assert daemon.serve() == 0
    messages = [record.getMessage() for record in caplog.records]
    assert "run failed: another run (pid 42, started 03:30) holds the lock" in messages
    assert "run crashed; the daemon keeps the schedule" in messages
    assert "run finished with exit code 0" in messages
    assert "heartbeat failed: zabbix down" in messages
    assert datetime.now(UTC) == utc(2026, 11, 28, 0, 30)  # the third night's slot


def test_stop_request_between_runs_exits_without_running(time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utc(2026, 11, 25, 12, 0), tick=False)
    ran: list[datetime] = []
    daemon = Daemon(
        ScheduleConfig(timezone="Europe/Moscow"), lambda: ran.append(datetime.now(UTC)) or 0,
        lambda: utc(2026, 11, 25, 0, 30), sleep=lambda seconds: daemon.stop_event.set(),
    )  # fmt: skip
    assert daemon.serve() == 0
    assert ran == []


def test_sigterm_during_a_run_aborts_it_cleanly_and_exits_zero(
    time_machine: TimeMachineFixture, caplog: pytest.LogCaptureFixture
) -> None:
    time_machine.move_to(utc(2026, 11, 25, 12, 0), tick=False)
    cleaned: list[datetime] = []

    def job() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered to the real handler
            for _ in range(1000):  # the handler runs between bytecodes; raise before the loop ends
                pass
            return 0
        finally:
            cleaned.append(datetime.now(UTC))

    daemon = Daemon(
        ScheduleConfig(at="03:30", timezone="Europe/Moscow", randomized_delay="0"), job,
        lambda: utc(2026, 11, 25, 0, 30), sleep=time_machine.shift,
    )  # fmt: skip
    previous = signal.getsignal(signal.SIGTERM)
    with daemon.signals_handled():
        assert daemon.serve() == 0
    assert signal.getsignal(signal.SIGTERM) == previous
    assert cleaned == [utc(2026, 11, 26, 0, 30)]  # the sandbox's `finally` ran, once
    assert "run aborted by a stop request; its steps cleaned up after themselves" in caplog.messages
    assert daemon.stop_event.is_set()


def test_sigterm_during_the_randomized_delay_exits_zero_without_running(time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utc(2026, 11, 25, 12, 0), tick=False)
    ran: list[datetime] = []
    daemon: Daemon

    def wait(seconds: float) -> None:
        if daemon._running:  # the randomized delay: the job has started, the run has not
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        time_machine.shift(seconds)

    daemon = Daemon(
        ScheduleConfig(at="03:30", timezone="Europe/Moscow", randomized_delay="10m"),
        lambda: ran.append(datetime.now(UTC)) or 0, lambda: utc(2026, 11, 25, 0, 30), sleep=wait,
    )  # fmt: skip
    with daemon.signals_handled():
        assert daemon.serve() == 0
    assert ran == []


def test_journald_lines_carry_the_syslog_priority(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from verifier.daemon import logs as daemon_logging

    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        handlers = daemon_logging.configure(log_file=tmp_path / "logs" / "daemon.log")
        record = logging.LogRecord(
            "verifier.daemon.schedule", logging.WARNING, __file__, 1, "next run at %s", ("x",), None
        )
        assert handlers[0].format(record) == "<4>verifier.daemon.schedule: next run at x"
        logging.getLogger("verifier.daemon.schedule").error("run failed: lock held")
        for handler in handlers:
            handler.flush()
        line = (tmp_path / "logs" / "daemon.log").read_text()
        assert line.endswith("ERROR verifier.daemon.schedule: run failed: lock held\n")
        assert line[:4].isdigit()  # timestamped in the file
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


# What schedule 1.2.2 alone does in the cases above. When one of these fails, a newer `schedule`
# fixed it, and the matching correction in verifier.daemon.schedule can be deleted.


def library_alone(
    time_machine: TimeMachineFixture, machine_zone: str, zone: str, at: str, start: datetime, run_minutes: float
) -> list[str]:
    """Returns the starts (in `zone`) of a bare `every().day.at(at, zone)` job over three days, checked each minute."""
    time_machine.move_to(start.astimezone(ZoneInfo(machine_zone)), tick=False)
    starts: list[datetime] = []

    def job() -> None:
        starts.append(dt.datetime.now(UTC))
        time_machine.shift(timedelta(minutes=run_minutes))

    scheduler = schedule.Scheduler()
    scheduler.every().day.at(at, zone).do(job)
    while dt.datetime.now(UTC) < start + timedelta(days=3):
        scheduler.run_pending()
        time_machine.shift(60)
    return local(starts, zone)


def test_schedule_alone_runs_an_hour_early_the_day_after_a_skipped_time(time_machine: TimeMachineFixture) -> None:
    starts = library_alone(time_machine, "UTC", "Europe/Berlin", "02:30", utc(2026, 3, 27, 12), 1)
    assert starts == ["2026-03-28 02:30 CET", "2026-03-29 03:30 CEST", "2026-03-30 01:30 CEST", "2026-03-30 02:30 CEST"]


def test_schedule_alone_runs_a_repeated_time_twice_after_a_long_run(time_machine: TimeMachineFixture) -> None:
    starts = library_alone(time_machine, "UTC", "Europe/Berlin", "02:30", utc(2026, 10, 23, 12), 50)
    assert starts == ["2026-10-24 02:30 CEST", "2026-10-25 02:30 CEST", "2026-10-25 02:30 CET", "2026-10-26 02:30 CET"]


def test_schedule_alone_runs_over_and_over_the_night_after_a_skipped_midnight(time_machine: TimeMachineFixture) -> None:
    starts = library_alone(time_machine, "UTC", "America/Santiago", "00:30", utc(2026, 9, 4, 12), 1)
    assert starts[:4] == [
        "2026-09-05 00:30 -04",
        "2026-09-06 01:30 -03",
        "2026-09-06 23:30 -03",
        "2026-09-06 23:32 -03",
    ]
    assert len(starts) > 10


def test_schedule_alone_runs_early_and_repeatedly_in_the_machines_repeated_hour(
    time_machine: TimeMachineFixture,
) -> None:
    starts = library_alone(time_machine, "Europe/Berlin", "UTC", "01:30", utc(2026, 10, 23, 12), 5)
    assert starts[:3] == ["2026-10-24 01:30 UTC", "2026-10-25 00:30 UTC", "2026-10-25 00:36 UTC"]
    assert len(starts) > 4
