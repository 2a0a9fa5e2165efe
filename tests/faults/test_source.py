"""Faults of the source: unreachable before the dump, stopped in the middle of it, a table the role
cannot read. The dump fails in one line, the status reaches the spool, older backups stay."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.e2e.conftest import verifier
from tests.faults.conftest import (
    Fault,
    config,
    config_file,
    first_backup,
    json_report,
    json_result,
    result,
    spooled,
)
from tests.integration.conftest import SourceDatabase
from tests.support import leftovers
from verifier.pipeline import commands
from verifier.postgres.binaries import Installation
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status
from verifier.zabbix import keys


def test_01_source_unreachable_before_the_dump(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    unreachable = config_file(tmp_path / "c.yaml", source_db, repository, source={"port": 1, "connect_timeout": 2})
    fault.inject("source unreachable before the dump")
    completed = verifier("run", "--config", unreachable, "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 2, completed.stderr
    dump = json_result(json_report(completed), "dump")
    assert dump["status"] == "CRITICAL"
    assert f"cannot connect to postgres@127.0.0.1:1/{source_db.dbname}" in dump["summary"]
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"


def test_02_source_stopped_mid_dump(postgres_installation: Installation, tmp_path: Path, fault: Fault) -> None:
    with TemporaryCluster(postgres_installation, tcp=True) as stoppable:
        source = SourceDatabase(stoppable, "postgres")
        source.execute("CREATE TABLE small AS SELECT g FROM generate_series(1, 100) g")
        repository = tmp_path / "repo"
        configured = first_backup(source, repository)
        fault.protect(repository)
        source.execute(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS payload "
            "FROM generate_series(1, 1000000) g"
        )
        programs_before = leftovers.client_programs()

        def stop_when_pg_dump_runs() -> None:
            deadline = time.monotonic() + 60
            while not leftovers.client_programs() - programs_before and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            fault.inject("source stopped mid-dump")
            stoppable.stop()

        stopper = threading.Thread(target=stop_when_pg_dump_runs)
        stopper.start()
        report = commands.run(configured)
        stopper.join()
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL
    assert "\n" not in dump.summary
    assert "terminating connection" in dump.summary or "server closed the connection" in dump.summary, dump.summary
    assert report.exit_code == 2
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"


def test_03_role_that_cannot_read_one_table(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    role = f"reader_{source_db.dbname}"
    source_db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        source_db.execute(f'GRANT USAGE ON SCHEMA "Sales" TO {role}')
        source_db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public, "Sales" TO {role}')
        source_db.execute(f'GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, "Sales" TO {role}')
        source_db.execute(f'REVOKE SELECT ON "Sales"."OrderLines" FROM {role}')
        fault.inject("a role that cannot read one table")
        report = commands.run(config(source_db, repository, source={"user": role}))
    finally:
        source_db.execute(f"DROP OWNED BY {role}")
        source_db.execute(f"DROP ROLE {role}")
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL
    assert "\n" not in dump.summary
    assert "permission denied for table OrderLines" in dump.summary, dump.summary
    assert report.exit_code == 2
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"
