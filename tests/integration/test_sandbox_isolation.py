"""A dump is untrusted: what runs inside the restore runs as the sandbox account, with none of the
agent's secrets, and psql meta-commands in a plain file never run at all."""

from __future__ import annotations

import gzip
import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from verifier.config import DEFAULT_ACCOUNT
from verifier.pipeline import commands
from verifier.report import Report, Status
from verifier.repository.backups import Repository
from verifier.sandbox.local import LocalSandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox account is used when the agent runs as root")


def result(report: Report, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.name == name)


@pytest.fixture
def drop_box() -> Iterator[Path]:
    """A directory anyone may write to, where code inside a dump leaves its markers: outside the temp
    directory, which the sandbox's server does not see (`verifier.netjail` covers /tmp, /run, /home…)."""
    directory = Path(tempfile.mkdtemp(prefix="pgbv-markers-", dir="/var/cache"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def open_repository() -> Iterator[Path]:
    """A repository whose parent anyone may traverse: only the repository's own 0700 protects it."""
    parent = Path(tempfile.mkdtemp(prefix="pgbv-parent-"))
    parent.chmod(0o755)
    yield parent / "repo"
    shutil.rmtree(parent, ignore_errors=True)


def test_code_in_a_dump_runs_as_the_sandbox_account_without_the_agents_secrets(
    source_db: SourceDatabase, tmp_path: Path, drop_box: Path, open_repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"marker-secret-{secrets.token_hex(8)}"
    for name in ("DB_PASS", "ZABBIX_API_TOKEN", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, marker)
    config = source_db.config(open_repository)
    commands.run(config)  # a repository with a backup (and its roles file) the sandbox must not reach
    production_data = source_db.cluster.data_dir
    program = (
        f"cat >/dev/null; id -un > {drop_box}/whoami; env > {drop_box}/environment; "
        f"(ls {open_repository} >/dev/null 2>&1 && echo readable || echo denied) > {drop_box}/repository; "
        f"(cat {production_data}/PG_VERSION >/dev/null 2>&1 && echo readable || echo denied) > {drop_box}/production"
    )
    hostile = tmp_path / "hostile.sql"
    hostile.write_text(  # shaped like a pg_dump file: the restore runs only what looks like one
        "--\n-- PostgreSQL database dump\n--\n\n"
        f"CREATE TABLE cities (name text);\nCOPY (SELECT 1) TO PROGRAM '{program}';\n"
        "\n--\n-- PostgreSQL database dump complete\n--\n"
    )

    commands.check(config, backup_file=hostile)

    assert (drop_box / "whoami").read_text().strip() == DEFAULT_ACCOUNT
    environment = (drop_box / "environment").read_text()
    assert marker not in environment
    assert {line.split("=", 1)[0] for line in environment.splitlines()} <= {
        "PATH", "LANG", "LANGUAGE", "TZ", "PWD", "SHLVL", "_", "PGDATA", "PGSYSCONFDIR", "PGLOCALEDIR",
    } | {line.split("=", 1)[0] for line in environment.splitlines() if line.startswith("LC_")}  # fmt: skip
    assert (drop_box / "repository").read_text().strip() == "denied"
    assert (drop_box / "production").read_text().strip() == "denied"


def test_the_sandbox_server_sees_no_secret_listens_on_no_port_and_lives_in_a_private_directory(
    source_db: SourceDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_installation: object
) -> None:
    marker = f"marker-secret-{secrets.token_hex(8)}"
    monkeypatch.setenv("DB_PASS", marker)
    config = source_db.config(tmp_path / "repo")
    dump = tmp_path / "empty.sql"
    dump.write_text("SELECT 1;\n")
    with LocalSandbox(postgres_installation, config.verify, None) as sandbox:  # type: ignore[arg-type]
        assert sandbox.cluster.process is not None
        postmaster = sandbox.cluster.process.pid
        environ = Path(f"/proc/{postmaster}/environ").read_bytes()
        owner = os.stat(f"/proc/{postmaster}").st_uid
        directory = sandbox.cluster.directory
        assert directory is not None
        mode, directory_owner = directory.stat().st_mode & 0o777, directory.stat().st_uid
        with sandbox.connect() as connection:
            listening = connection.execute("SHOW listen_addresses").fetchone()
    assert marker.encode() not in environ
    assert b"DB_PASS" not in environ
    assert pwd.getpwuid(owner).pw_name == DEFAULT_ACCOUNT
    assert (mode, pwd.getpwuid(directory_owner).pw_name) == (0o700, DEFAULT_ACCOUNT)
    assert listening == ("",)


@pytest.mark.parametrize("account", ["postgres", "root"])
def test_a_privileged_sandbox_account_is_refused_unless_insisted_on(
    source_db: SourceDatabase, tmp_path: Path, account: str
) -> None:
    dump = tmp_path / "empty.sql"
    dump.write_text("SELECT 1;\n")
    report = commands.check(source_db.config(tmp_path / "repo", verify={"run_as": account}), backup_file=dump)
    assert report.exit_code == 3
    assert report.could_not_run is not None
    assert f"verify.run_as: {account!r} is privileged" in report.could_not_run
    assert "verify.allow_privileged_run_as: true" in report.could_not_run
    if account == "postgres":
        insisted = source_db.config(tmp_path / "repo", verify={"run_as": account, "allow_privileged_run_as": True})
        assert commands.check(insisted, backup_file=dump).could_not_run is None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("\\! touch {marker}", "\\!"),
        ("\\o |touch {marker}", "\\o"),
        ("\\copy (SELECT 1) TO PROGRAM 'touch {marker}'", "\\copy"),
        ("\\setenv PAGER 'touch {marker}'", "\\setenv"),
        ("\\connect postgres", "\\connect"),
        ("SELECT 1 \\! touch {marker}", "\\!"),
    ],
)
def test_psql_meta_commands_are_critical_and_nothing_of_the_file_runs(
    source_db: SourceDatabase, tmp_path: Path, drop_box: Path, line: str, name: str
) -> None:
    marker = drop_box / "meta-command-ran"
    earlier = drop_box / "sql-before-it-ran"
    text = (
        "CREATE TABLE cities (name text);\n"
        f"COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; touch {earlier}';\n"
        f"{line.format(marker=marker)}\n"
        f"\\! touch {marker}\n"
    )
    dump = tmp_path / "hostile.sql.gz"
    dump.write_bytes(gzip.compress(text.encode()))
    report = commands.check(source_db.config(tmp_path / "repo"), backup_file=dump)
    restore = result(report, "restore")
    assert restore.status is Status.CRITICAL
    assert f"the dump contains psql meta-commands (line 3: {name})" in restore.summary
    assert report.exit_code == 2
    assert not marker.exists()
    assert not earlier.exists()


def test_server_sandbox_never_restores_a_file_the_agent_did_not_make(source_db: SourceDatabase, tmp_path: Path) -> None:
    cluster = source_db.cluster
    server = {"sandbox": "server", "server": {"host": cluster.host, "port": cluster.port, "user": "postgres"}}
    foreign = tmp_path / "cron.sql"
    foreign.write_text("CREATE TABLE cities (name text);\n")
    report = commands.check(source_db.config(tmp_path / "repo", verify=server), backup_file=foreign)
    assert report.exit_code == 3
    assert report.could_not_run is not None
    assert "verify.sandbox server restores only backups the agent made" in report.could_not_run
    with cluster.connect() as connection:
        scratch = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgbv_verify_%'").fetchall()
    assert scratch == []


def test_server_sandbox_never_restores_drop_database(source_db: SourceDatabase, tmp_path: Path) -> None:
    cluster = source_db.cluster
    victim = f"victim_{secrets.token_hex(3)}"
    with cluster.connect() as connection:
        connection.execute(f"CREATE DATABASE {victim}")
    try:
        server = {"sandbox": "server", "server": {"host": cluster.host, "port": cluster.port, "user": "postgres"}}
        config = source_db.config(tmp_path / "repo", verify=server, dump={"format": "plain"})
        assert commands.run(config).exit_code == 0
        backup = Repository(tmp_path / "repo").newest()
        assert backup is not None
        text = gzip.decompress(backup.dump_path.read_bytes()).decode()
        text = text.replace("SET statement_timeout = 0;", f"DROP DATABASE {victim};\nSET statement_timeout = 0;", 1)
        backup.dump_path.write_bytes(gzip.compress(text.encode()))

        report = commands.check(config)

        restore = result(report, "restore")
        assert restore.status is Status.CRITICAL
        assert "the dump contains DROP DATABASE (line" in restore.summary
        with cluster.connect() as connection:
            still = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (victim,)).fetchall()
        assert still == [(1,)]
    finally:
        with cluster.connect() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {victim}")
