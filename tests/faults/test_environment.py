"""Faults of the machine and its setup: an invalid config in every section, PostgreSQL programs missing or
older than the server, the sandbox's initdb failing, another server on the sandbox's port, umask 022."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import verifier
from tests.faults.conftest import (
    Fault,
    config,
    config_data,
    config_file,
    first_backup,
    json_report,
    json_result,
    one_line,
    result,
    spooled,
)
from tests.integration.conftest import SourceDatabase
from tests.support import agent
from verifier.pipeline import commands
from verifier.postgres import binaries
from verifier.postgres.binaries import Installation
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status
from verifier.zabbix import keys

INVALID = {  # section → (a wrong value, the YAML path the one line must name)
    "source": ({"port": 0}, "source.port"),
    "repository": ({"path": ["not", "a", "path"]}, "repository.path"),
    "dump": ({"format": "zip"}, "dump.format"),
    "verify": ({"sandbox": "cloud"}, "verify.sandbox"),
    "checks": ({"min_count": -1}, "checks.min_count"),
    "retention": ({"keep_min": 0}, "retention.keep_min"),
    "zabbix": ({"port": 70000}, "zabbix.port"),
    "schedule": ({"at": "25:99"}, "schedule.at"),
    "report": ({"keep": 0}, "report.keep"),
    "postgres": ({"bin_dir": ["x"]}, "postgres.bin_dir"),
}


def test_15_invalid_config_in_every_section(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    spool_before = spooled(repository, keys.HEARTBEAT)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (section, {section: wrong}, path) for section, (wrong, path) in INVALID.items()
    ]
    cases.append(("secret", {"source": {"password": "${PGBV_NO_SUCH_VARIABLE}"}}, "PGBV_NO_SUCH_VARIABLE"))
    for section, wrong, path in cases:
        data = config_data(source_db, repository)
        for key, value in wrong.items():
            data[key] = {**data.get(key, {}), **value}
        written = tmp_path / f"{section}.yaml"
        written.write_text(yaml.safe_dump(data))
        fault.inject(f"invalid config in {section}")
        completed = verifier("run", "--config", written)
        fault.output(completed.stdout, completed.stderr)
        assert completed.returncode == 3, (section, completed.stdout, completed.stderr)
        assert completed.stdout == ""
        line = one_line(completed.stderr, path)
        assert line.startswith("verifier: "), line
        assert [text for text in completed.stderr.splitlines() if text.startswith("verifier:")] == [line]
    assert spooled(repository, keys.HEARTBEAT) == spool_before  # nothing can be sent: the config says where


def old_pg_dump(directory: Path) -> Path:
    """Returns a directory whose `pg_dump` answers `--version` as PostgreSQL 11 does: no PostgreSQL older
    than 15 can be installed here (Debian 12 ships 15 only, and there is no internet), so a script plays it."""
    directory.mkdir()
    program = directory / "pg_dump"
    program.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n")
    program.chmod(0o755)
    return directory


@pytest.mark.parametrize("where", ["missing", "older"])
def test_16_postgres_programs_missing_or_older_than_the_server(
    source_db: SourceDatabase,
    tmp_path: Path,
    fault: Fault,
    where: str,
    postgres_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    bin_dir = old_pg_dump(tmp_path / "old-bin") if where == "older" else None
    monkeypatch.setenv("PATH", str(tmp_path))  # the machine's programs cannot be uninstalled: hidden instead
    monkeypatch.setattr(binaries, "DEBIAN_PATTERN", "/nonexistent/postgresql/*/bin")
    binaries._probe.cache_clear()
    try:
        fault.inject(f"PostgreSQL programs {where}")
        report = commands.run(config(source_db, repository, postgres={"bin_dir": str(bin_dir) if bin_dir else None}))
    finally:
        binaries._probe.cache_clear()
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL and "\n" not in dump.summary
    found = f"found: 11 ({bin_dir})" if bin_dir else "found: none"
    assert f"needs pg_dump of PostgreSQL {postgres_installation.major} or newer; {found}" in dump.summary, dump.summary
    assert report.exit_code == 3 and report.could_not_run is not None and found in report.could_not_run
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox runs as verify.run_as only when the agent is root")
def test_17_sandbox_initdb_fails(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    unreachable = tmp_path / "root-only"
    unreachable.mkdir(mode=0o700)  # the sandbox account cannot enter it: its server cannot start there
    fault.inject("the sandbox's server cannot use its directory")
    configured = config_file(tmp_path / "c.yaml", source_db, repository, verify={"temp_dir": str(unreachable)})
    completed = verifier("check", "--config", configured, "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    restore = json_result(json_report(completed), "restore")
    assert restore["status"] == "CRITICAL"
    # checked before anything starts as the sandbox account (issue 22.1): the directory is named, with the fix
    assert f"pgbv-sandbox cannot reach verify.temp_dir {unreachable}: it cannot enter " in restore["summary"], restore[
        "summary"
    ]
    assert "point verify.temp_dir at a directory every account can enter" in restore["summary"]
    assert list(unreachable.iterdir()) == []
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def test_17_another_server_on_the_sandbox_port(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, postgres_installation: Installation
) -> None:
    """Every sandbox has a private socket directory, so a server already on port 5432 (the sandbox's) does
    not collide with it."""
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository)
    fault.protect(repository)
    with TemporaryCluster(postgres_installation) as squatter:
        assert squatter.port == 5432
        fault.inject("another server on the sandbox's port")
        report = commands.check(configured)
        with squatter.connect() as connection:  # and the squatter was not disturbed
            assert connection.execute("SELECT 1").fetchone() == (1,)
    assert report.verification_passed, [(found.name, found.summary) for found in report.results]
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"


def test_21_umask_022_at_start(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository)
    fault.inject("umask 022 at start")
    process = agent.start("run", "--config", configured, umask=0o022)
    stdout, stderr = process.communicate(timeout=300)
    fault.output(stdout, stderr)
    assert process.returncode == 1, stdout + stderr  # Zabbix unreachable: a warning
    fault.watch(repository)
    wrong = []
    for path in [repository, *repository.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{oct(mode)} {path.relative_to(repository.parent)}")
    assert wrong == []
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"
