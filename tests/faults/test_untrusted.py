"""Untrusted input and secrets: a dump that tries to run commands (Part 1 of issue 10 makes it refused),
the marker password nowhere a person or another process could read it, and deletion that never leaves
the repository."""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from pathlib import Path

from tests.e2e.conftest import verifier
from tests.faults.conftest import SECRET, Fault, config_file, first_backup, json_report, json_result, spooled
from tests.integration.conftest import SourceDatabase
from tests.support import agent, leftovers
from verifier.pipeline import commands
from verifier.zabbix import keys


def test_23_dump_that_tries_to_run_commands(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    markers = Path(tempfile.gettempdir()) / f"markers-{secrets.token_hex(3)}"
    markers.mkdir(mode=0o777)
    markers.chmod(0o777)  # so that only the refusal, not a permission, keeps the markers away
    hostile = tmp_path / "hostile.sql"
    hostile.write_text(
        f"\\! touch {markers}/shell\n"
        "CREATE TABLE t (a integer);\n"
        f"COPY (SELECT 1) TO PROGRAM 'touch {markers}/program';\n"
        "DROP DATABASE IF EXISTS postgres;\n"
    )
    fault.inject("a dump containing \\!, COPY TO PROGRAM and DROP DATABASE")
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    completed = verifier("check", "--config", configured, "--backup", hostile, "--json")
    fault.output(completed.stdout, completed.stderr)
    created = sorted(path.name for path in markers.iterdir())
    for path in markers.iterdir():
        path.unlink()
    markers.rmdir()
    assert created == [], f"the dump ran commands: {created}"
    assert completed.returncode == 2
    restore = json_result(json_report(completed), "restore")
    assert "the dump contains psql meta-commands (line 1" in restore["summary"], restore["summary"]


def sample_during(arguments: list[str | Path], *, environ: bool) -> tuple[list[str], str, str, int]:
    """Runs the agent, reading every descendant's command line (and, with `environ`, the environment of
    the sandbox server) every few milliseconds. Returns (where the secret was seen, stdout, stderr, exit)."""
    seen: list[str] = []
    process = agent.start(*arguments)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid, name in leftovers.descendants().items():
                files = ["cmdline"] + (["environ"] if environ and name == "postgres" else [])
                for file in files:
                    try:
                        if SECRET.encode() in Path(f"/proc/{pid}/{file}").read_bytes():
                            seen.append(f"/proc/{pid}/{file} ({name})")
                    except OSError:
                        pass
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        done.set()
        sampler.join()
    return sorted(set(seen)), stdout, stderr, process.returncode


def test_secret_never_in_logs_reports_spool_history_or_command_lines(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault
) -> None:
    """The run logs at debug level; the fixture scans its output, and every file of the repository (manifests,
    JSON/HTML reports, history, spool: the Zabbix payloads); this test samples /proc/*/cmdline meanwhile."""
    repository = tmp_path / "repo"
    fault.watch(repository)
    fault.inject("the marker password, looked for everywhere")
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    seen, stdout, stderr, exit_code = sample_during(["run", "--debug", "--config", configured], environ=False)
    fault.output(stdout, stderr)
    assert exit_code == 1, stdout + stderr  # Zabbix unreachable: a warning
    assert "DEBUG" in stderr
    assert seen == []
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"


def test_secret_not_in_the_sandbox_server_environment(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    fault.watch(repository)
    fault.inject("the marker password in the agent's environment")
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    seen, stdout, stderr, _ = sample_during(["run", "--config", configured], environ=True)
    fault.output(stdout, stderr)
    assert seen == []


def test_deletion_never_follows_a_symlink_out_of_the_repository(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault
) -> None:
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository, retention={"keep_days": 0, "keep_min": 1})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("not the agent's")
    old = repository / "app_2020-01-01_00-00-00Z.dump"
    old.symlink_to(outside / "precious")
    os.utime(old, (0, 0), follow_symlinks=False)
    (repository / "app_2020-01-01_00-00-00Z.dump.partial").symlink_to(outside)
    fault.inject("symlinks from the repository to outside")
    report = commands.run(configured)
    assert report.verification_passed
    assert (outside / "precious").read_text() == "not the agent's"
    assert sorted(path.name for path in outside.iterdir()) == ["precious"]
    fault.watch(repository)
