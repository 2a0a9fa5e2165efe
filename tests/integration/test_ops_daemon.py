"""`verifier daemon` as a real process against real PostgreSQL: catch-up of a missed night (of several
databases: then the weekly self-test of one), and SIGTERM in the middle of a run (sandbox torn down,
partial files removed, exit 0).

The only waits are for log lines the daemon prints, bounded by a generous deadline so a hang
fails instead of blocking the suite; nothing asserts on how long anything took.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.integration.conftest import SourceDatabase
from verifier.report import Report
from verifier.repository.backups import Repository
from verifier.repository.databases import Databases
from verifier.repository.history import History

DEADLINE = 180.0


class Daemon:
    """A `verifier daemon` child process whose stderr is read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str) -> str:
        """Returns the first new stderr line containing `text`; fails if the daemon ends or hangs first."""
        while True:
            try:
                line = self._queue.get(timeout=DEADLINE)
            except queue.Empty:
                raise AssertionError(f"no {text!r} from the daemon; it said:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"daemon ended before {text!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if text in line:
                return line

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Sends `signum` and returns the exit code."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=DEADLINE)


@contextmanager
def daemon(config: Path) -> Iterator[Daemon]:
    process = subprocess.Popen(
        [sys.executable, "-m", "verifier.cli", "daemon", "--config", str(config), "--heartbeat-interval", "3600"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield Daemon(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


def write_config(source_db: SourceDatabase, repository: Path, path: Path) -> Path:
    """A config whose slot (03:30 in Auckland) is never right now, so only the catch-up runs."""
    data = source_db.config(repository).model_dump(mode="json", by_alias=True, exclude_none=True)
    data["schedule"] = {"at": "03:30", "timezone": "Pacific/Auckland", "randomized_delay": "0"}
    data.pop("report", None)
    path.write_text(yaml.safe_dump(data))
    return path


def missed_night(repository: Path) -> None:
    """Records a nightly run from two days ago, so the daemon finds last night missed."""
    Repository(repository).ensure()
    started = datetime.now(UTC) - timedelta(days=2)
    History(Repository(repository).history_path).record(
        Report(run_id="old-run", command="run", source="eatfit24", started_at=started, finished_at=started)
    )


def test_daemon_catches_up_a_missed_night_then_stops_on_sigterm(source_db: SourceDatabase, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    missed_night(repository)
    config = write_config(source_db, repository, tmp_path / "config.yaml")

    with daemon(config) as running:
        running.wait_for("before the last scheduled slot: running now")
        finished = running.wait_for("run finished with exit code")
        running.wait_for("next run at")
        assert running.stop() == 0
        running.wait_for("daemon stopped")
    assert finished.endswith("exit code 0"), "\n".join(running.lines)

    runs = History(Repository(repository).history_path).runs()
    assert [run.command for run in runs] == ["run", "run"]
    assert runs[0].verify_ok is True
    assert len(list((repository / "reports").glob("*.html"))) == 1


def test_sigterm_during_a_run_tears_everything_down_and_exits_zero(source_db: SourceDatabase, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    missed_night(repository)
    config = write_config(source_db, repository, tmp_path / "config.yaml")

    with daemon(config) as running:
        running.wait_for("step: restore")
        code = running.stop()
        running.wait_for("run aborted by a stop request")
    print("\n".join(running.lines))
    assert code == 0, "\n".join(running.lines)
    assert not list(repository.glob("*.partial")), "a partial file was left"
    # the conftest guard asserts that no postgres server and no temp directory was left behind
    assert (repository / ".lock").read_text() == ""  # the lock was released, not held by a dead run


def test_daemon_catches_up_a_missed_night_of_several_databases_then_self_tests_one(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    repository = tmp_path / "repo"
    missed_night(Databases(repository).repository(source_db.dbname).path)  # the night's catch-up reads every database
    config = write_config(source_db, repository, tmp_path / "config.yaml")
    data = yaml.safe_load(config.read_text())
    data["source"]["databases"] = [data["source"].pop("dbname")]
    data["schedule"]["selftest"] = "weekly"
    config.write_text(yaml.safe_dump(data))

    with daemon(config) as running:
        running.wait_for("before the last scheduled slot: running now")
        running.wait_for(f"weekly self-test of database {source_db.dbname} (never self-tested)")
        selftest = running.wait_for("self-test: ")
        finished = running.wait_for("run finished with exit code")
        assert running.stop() == 0
    assert finished.endswith("exit code 0"), "\n".join(running.lines)
    assert "damages to the restored copy of" in selftest and selftest.endswith("were caught"), selftest
    runs = History(Databases(repository).repository(source_db.dbname).history_path).runs()
    assert [run.command for run in runs] == ["run", "run"] and runs[0].verify_ok is True
