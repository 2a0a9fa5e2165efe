"""Signals and concurrency: SIGTERM/SIGINT during the restore, SIGKILL mid-restore (the next run removes
the orphan), SIGTERM between the dump's rename and its manifest, two runs at once and a stale lock, and
SIGKILL at 20 random points of a run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import verifier
from tests.faults.conftest import (
    Fault,
    big_copy,
    config_file,
    first_backup,
    json_report,
    json_result,
    one_line,
    spooled,
)
from tests.integration.conftest import SourceDatabase
from tests.support import agent, leftovers
from verifier.archive.files import verify_file
from verifier.cli import main as cli
from verifier.postgres.backup import dump
from verifier.repository.backups import Repository
from verifier.zabbix import keys

INTERRUPTED = "verifier: interrupted; the sandbox and partial files were removed"


def strike_during_restore(arguments: list[str | Path]) -> subprocess.Popen[str]:
    """Returns the agent started with `arguments`, once its sandbox runs and pg_restore has worked a moment."""
    servers_before, programs_before = leftovers.postgres_servers(), leftovers.client_programs()
    process = agent.start(*arguments)
    agent.wait_for_sandbox(process, servers_before)
    deadline = time.monotonic() + 60
    while not leftovers.client_programs() - programs_before:
        assert process.poll() is None and time.monotonic() < deadline, "pg_restore never started"
        time.sleep(0.02)
    time.sleep(0.5)
    assert process.poll() is None, "the restore ended before the fault"
    return process


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_10_signal_during_the_restore(
    big_source: SourceDatabase, big_repository: Path, tmp_path: Path, fault: Fault, signal_number: int
) -> None:
    """An interrupted run reports nothing (it stops); the spool stays as it was, readable."""
    repository = big_copy(big_repository, tmp_path / "repo")
    fault.protect(repository)
    spool_before = spooled(repository, keys.HEARTBEAT)
    process = strike_during_restore(["check", "--config", config_file(tmp_path / "c.yaml", big_source, repository)])
    process.send_signal(signal_number)
    fault.inject(f"{signal.Signals(signal_number).name} during the restore")
    stdout, stderr = process.communicate(timeout=120)
    fault.output(stdout, stderr)
    assert process.returncode == 3, stdout + stderr
    one_line(stderr, INTERRUPTED)
    assert spooled(repository, keys.HEARTBEAT) == spool_before


def test_11_sigkill_mid_restore_the_next_run_removes_the_orphan(
    big_source: SourceDatabase, big_repository: Path, tmp_path: Path, fault: Fault
) -> None:
    repository = big_copy(big_repository, tmp_path / "repo")
    fault.protect(repository)
    configured = config_file(tmp_path / "c.yaml", big_source, repository)
    servers_before = leftovers.postgres_servers()
    process = strike_during_restore(["check", "--config", configured])
    process.kill()
    process.communicate(timeout=30)
    fault.inject("SIGKILL of the agent mid-restore")
    assert leftovers.postgres_servers() - servers_before, "no orphan: the fault was not injected"

    completed = verifier("check", "--config", configured, "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 1, completed.stdout + completed.stderr  # Zabbix unreachable: a warning
    restore = json_result(json_report(completed), "restore")
    assert restore["status"] == "OK"
    assert "removed 1 orphan sandbox left by a killed run" in restore["summary"], restore["summary"]
    assert leftovers.postgres_servers() - servers_before == set()
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"


def test_12_sigterm_between_the_rename_and_the_manifest(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real SIGTERM, sent to this process by a wrapper around the first directory fsync after the dump's
    rename (the run is in-process, through `cli.main`, which turns SIGTERM into an interrupt)."""
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    names_before = sorted(path.name for path in repository.iterdir() if path.is_file())
    real_fsync_directory = dump.fsync_directory
    renamed: list[bool] = []

    def signal_after_the_rename(path: Path) -> None:
        if not renamed and any(repository.glob("*.dump.zst")) and not list(repository.glob("*.partial")):
            renamed.append(True)
            fault.inject("SIGTERM between the dump's rename and the manifest write")
            os.kill(os.getpid(), signal.SIGTERM)
        real_fsync_directory(path)

    monkeypatch.setattr(dump, "fsync_directory", signal_after_the_rename)
    umask = os.umask(0o077)
    try:
        exit_code = cli.main(["run", "--config", str(config_file(tmp_path / "c.yaml", source_db, repository))])
    finally:
        os.umask(umask)
    captured = capsys.readouterr()
    fault.output(captured.out, captured.err)
    assert renamed, "the run never reached the rename"
    assert exit_code == 3
    one_line(captured.err, INTERRUPTED)
    names_after = sorted(path.name for path in repository.iterdir() if path.is_file())
    assert names_after == names_before, "a backup without manifest (or its roles file) was left"


def test_13_two_runs_at_once(big_source: SourceDatabase, big_repository: Path, tmp_path: Path, fault: Fault) -> None:
    repository = big_copy(big_repository, tmp_path / "repo")
    fault.protect(repository)
    configured = config_file(tmp_path / "c.yaml", big_source, repository)
    first = strike_during_restore(["check", "--config", configured])
    fault.inject("a second run while the first holds the lock")
    second = verifier("run", "--config", configured)
    stdout, stderr = first.communicate(timeout=300)
    fault.output(second.stdout, second.stderr, stdout, stderr)
    assert second.returncode == 3
    line = one_line(second.stderr, "verifier: another run (pid ")
    assert f"pid {first.pid}, started" in line and "holds the lock" in line
    assert first.returncode == 1, stdout + stderr  # the first run goes on (Zabbix unreachable: a warning)
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"


def test_13_stale_lock_of_a_dead_pid(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (repository / ".lock").write_text(f"pid {dead.pid}, started 2026-01-01T03:30:00+00:00\n")
    fault.inject("a stale lock of a dead pid")
    completed = verifier("run", "--config", config_file(tmp_path / "c.yaml", source_db, repository), "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 1, completed.stdout + completed.stderr  # Zabbix unreachable: a warning
    assert json_result(json_report(completed), "dump")["status"] == "OK"
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "1"
    assert f"pid {dead.pid}," not in (repository / ".lock").read_text()


def intact(repository: Path, name: str) -> bool:
    """Returns True when every file of backup `name` matches its manifest."""
    backup = next(found for found in Repository(repository).backups() if found.name == name)
    assert backup.manifest is not None
    return all(not verify_file(repository / entry.path, entry).problems for entry in backup.manifest.files)


def test_22_sigkill_at_20_random_points(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    """SIGKILL at random moments of `verifier run` (seeded, printed): after each, the repository holds the
    old set of backups, or the old set plus one complete backup whose files all match its manifest."""
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    started = time.monotonic()
    assert verifier("run", "--config", configured).returncode == 1  # Zabbix unreachable: a warning
    duration = time.monotonic() - started
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    print(f"SIGKILL points seeded with {seed}, over a {duration:.1f}s run")
    for attempt in range(20):
        fault.protect(repository)
        old = {backup.name for backup in Repository(repository).backups()}
        process = agent.start("run", "--config", configured)
        time.sleep(chooser.uniform(0.0, duration))
        process.kill()
        process.communicate(timeout=30)
        fault.inject(f"SIGKILL at a random point ({attempt + 1} of 20)")
        now = {backup.name for backup in Repository(repository).backups()}
        assert old <= now and len(now - old) <= 1, (attempt, old, now)
        for name in now - old:
            assert intact(repository, name), f"attempt {attempt}: backup {name} is not complete"
    completed = verifier("run", "--config", configured, "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    report: dict[str, Any] = json_report(completed)
    assert json_result(report, "restore")["status"] == "OK"
    fault.watch(repository)
