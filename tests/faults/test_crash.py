"""The crash rule (issue 20 point 4, issue 21 point 6): an exception the code did not expect, at any step
of `run` or `check`, ends as exit 3 with one line (no traceback without --debug), the report and the
history row written, and the failed status spooled for Zabbix — never exit 0 or 1, which the systemd
unit (`SuccessExitStatus=1`) would count as a good night.

The unexpected exceptions are injected in-process: the tests call `verifier.cli.main.main` (the console
script's own function) with one pipeline function monkeypatched to raise, so the product ships no test
hook. The full disk, the corrupt spool and the other unreadable state files are real.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Fault, config_file, first_backup, one_line, spooled
from tests.integration.conftest import SourceDatabase
from tests.support.mounts import small_disk
from verifier.cli import main as cli
from verifier.pipeline import commands as steps
from verifier.pipeline import verify
from verifier.repository import retention
from verifier.repository.backups import Repository
from verifier.repository.history import History
from verifier.zabbix import keys
from verifier.zabbix.spool import Spool, SpooledValue

CRASH = "unexpected error"


class InjectedCrash(Exception):
    """The exception no step expects."""


def crash(*_: Any, **__: Any) -> Any:
    raise InjectedCrash("injected crash ('public', 'heartbeat')")


RUN_STEPS = [
    (steps, "take_backup", "snapshot and dump"),
    (verify.Proof, "prove", "restore"),
    (retention, "plan_repository", "retention"),
    (steps, "run_checks", "checks"),
    (steps, "push_report", "zabbix"),
    (steps.report_delivery, "deliver_html_and_email", "report"),
]
CHECK_STEPS = [
    (steps, "check_integrity", "integrity"),
    (verify.Proof, "prove", "restore"),
    (steps, "run_checks", "checks"),
]


def crashed_command(
    command: str,
    repository: Path,
    source_db: SourceDatabase,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    injected: tuple[Any, str, str],
) -> tuple[int, str]:
    """Runs `verifier COMMAND` in-process over a repository with one backup, the step's function (module,
    function, step name) replaced by `crash`. Returns the exit code and everything printed."""
    module, function, step = injected
    configured = config_file(repository.parent / "c.yaml", source_db, repository)
    first_backup(source_db, repository)
    fault.protect(repository)
    monkeypatch.setattr(module, function, crash)
    fault.inject(f"unexpected exception in {command} at {step}")
    exit_code = cli.main([command, "--config", str(configured)])
    captured = capsys.readouterr()
    fault.output(captured.out, captured.err)
    return exit_code, captured.out + captured.err


@pytest.mark.parametrize(("module", "function", "step"), RUN_STEPS, ids=[step for _, _, step in RUN_STEPS])
def test_unexpected_exception_in_run_is_exit_3_with_report_history_and_spool(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    function: str,
    step: str,
) -> None:
    repository = tmp_path / "repo"
    exit_code, output = crashed_command(
        "run", repository, source_db, fault, capsys, monkeypatch, (module, function, step)
    )
    assert exit_code == 3, output
    line = one_line(output, CRASH)
    assert "injected crash" in line and "InjectedCrash" in line, line
    stored = _newest_report(repository)
    assert stored["exit_code"] == 3 and CRASH in stored["could_not_run"], stored["could_not_run"]
    assert "InjectedCrash" in stored["traceback"]
    newest_run = History(Repository(repository).history_path).runs(limit=1)[0]
    assert newest_run.exit_code == 3 and newest_run.run_id == stored["run_id"]
    if function == "push_report":
        return  # the push itself is what crashed: nothing reached the spool
    assert spooled(repository, keys.HEARTBEAT), "no value spooled for Zabbix"
    if step == "snapshot and dump":
        assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"
    if step == "restore":
        assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


@pytest.mark.parametrize(("module", "function", "step"), CHECK_STEPS, ids=[step for _, _, step in CHECK_STEPS])
def test_unexpected_exception_in_check_is_exit_3_with_report_history_and_spool(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    function: str,
    step: str,
) -> None:
    repository = tmp_path / "repo"
    exit_code, output = crashed_command(
        "check", repository, source_db, fault, capsys, monkeypatch, (module, function, step)
    )
    assert exit_code == 3, output
    one_line(output, CRASH)
    assert _newest_report(repository)["exit_code"] == 3
    assert History(Repository(repository).history_path).runs(limit=1)[0].exit_code == 3
    assert spooled(repository, keys.HEARTBEAT)
    if step == "restore":
        assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def test_unexpected_exception_with_debug_shows_the_traceback(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    first_backup(source_db, repository)
    fault.protect(repository)
    monkeypatch.setattr(steps, "run_checks", crash)
    fault.inject("unexpected exception in check --quick, --debug")
    exit_code = cli.main(["check", "--quick", "--debug", "--config", str(configured)])
    captured = capsys.readouterr()
    fault.output(captured.out, captured.err)
    assert exit_code == 3
    assert "Traceback" in captured.err and "InjectedCrash" in captured.err


def test_repository_filesystem_full_at_the_start(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk is full before the run starts: `OSError: [Errno 28]` writing the lock's holder (exit 1
    with a traceback on today's code). Now: one line naming the full disk, exit 2 or 3."""
    with small_disk(tmp_path / "small", "4m") as disk:
        repository = disk / "repo"
        configured = config_file(tmp_path / "c.yaml", source_db, repository, zabbix=None)
        first_backup(source_db, repository, zabbix=None)
        fault.protect(repository)
        try:
            (repository / ".lock").unlink(missing_ok=True)
            _fill(disk)
            fault.inject("repository filesystem full at the start")
            exit_code = cli.main(["run", "--config", str(configured)])
            captured = capsys.readouterr()
            fault.output(captured.out, captured.err)
            assert list(repository.glob("*.partial")) == []
        finally:
            fault.release(repository)
    assert exit_code in (2, 3), captured.out + captured.err
    one_line(captured.out + captured.err, "No space left on device")


def test_corrupt_spool_record_is_skipped_and_named_the_rest_is_kept(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, capsys: pytest.CaptureFixture[str]
) -> None:
    """One non-UTF-8 byte in one spooled record (`UnicodeDecodeError`, exit 1 on every later run on
    today's code): that record is skipped and said so, the others are kept and resent or respooled."""
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    first_backup(source_db, repository)
    fault.protect(repository)
    spool = Spool(Repository(repository).spool_path, 1000)
    kept = [SpooledValue("pgbv-faults", "pgbackup.test.kept", str(number), 1_700_000_000 + number) for number in (1, 2)]
    spool.save(kept, 0)
    lines = spool.path.read_bytes().splitlines()
    lines.insert(2, b'{"host": "pgbv-faults", "key": "pgbackup.test.bad", "value": "\xff", "clock": 1700000001}')
    spool.path.write_bytes(b"\n".join(lines) + b"\n")
    fault.inject("non-UTF-8 byte in the Zabbix spool")
    for night in range(2):
        exit_code = cli.main(["check", "--quick", "--config", str(configured), "--json"])
        captured = capsys.readouterr()
        fault.output(captured.out, captured.err)
        assert exit_code == 1, captured.out + captured.err  # Zabbix unreachable: a warning, never a crash
        assert "Traceback" not in captured.err
        report = json.loads(captured.out)
        zabbix = next(result for result in report["results"] if result["name"] == "zabbix")
        if night == 0:
            assert "1 unreadable spool record skipped" in zabbix["summary"], zabbix["summary"]
        else:
            assert "unreadable" not in zabbix["summary"], zabbix["summary"]
        assert spooled(repository, "pgbackup.test.kept") == ["1", "2"]
        assert spooled(repository, "pgbackup.test.bad") == []


@pytest.mark.parametrize(("state_file", "expected_exit"), [("state/history.sqlite", 3), ("manifest", 2)])
def test_other_unreadable_state_file_is_never_a_crash(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    state_file: str,
    expected_exit: int,
) -> None:
    """A state file holding bytes that are not UTF-8 (nor SQLite, nor JSON) is named, never a crash."""
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    first_backup(source_db, repository)
    path = next(repository.glob("*.json")) if state_file == "manifest" else repository / state_file
    path.write_bytes(b'{"\xff\xfe": [1, 2\x00\x80')
    fault.watch(repository)
    fault.inject(f"{state_file} unreadable (not UTF-8)")
    exit_code = cli.main(["check", "--quick", "--config", str(configured)])
    captured = capsys.readouterr()
    fault.output(captured.out, captured.err)
    assert "Traceback" not in captured.out + captured.err, captured.err
    assert exit_code == expected_exit, captured.out + captured.err  # named as damaged or as could-not-run
    assert not any(CRASH in line for line in (captured.out + captured.err).splitlines()), captured.err


def _newest_report(repository: Path) -> dict[str, Any]:
    reports = sorted((repository / "reports").glob("*.json"), key=os.path.getmtime)
    assert reports, "no report written"
    return dict(json.loads(reports[-1].read_text()))


def _fill(disk: Path) -> None:
    """Fills the filesystem of `disk` to the last byte."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        for chunk in (1 << 16, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * chunk)


def test_unexpected_exception_before_any_report_is_one_line_and_exit_3(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the repository is open there is no report to write: the command line's own catch-all still
    makes it one line and exit 3 (it was a traceback and exit 1)."""
    configured = config_file(tmp_path / "c.yaml", source_db, tmp_path / "repo")
    monkeypatch.setattr(Repository, "ensure", crash)
    fault.inject("unexpected exception opening the repository")
    exit_code = cli.main(["run", "--config", str(configured)])
    captured = capsys.readouterr()
    fault.output(captured.out, captured.err)
    assert exit_code == 3
    line = one_line(captured.err, "verifier: unexpected error: InjectedCrash: injected crash")
    assert "--debug" in line
