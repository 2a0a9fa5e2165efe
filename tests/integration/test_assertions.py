"""User assertions against real PostgreSQL: run on the restored copy read-only, under their timeout, as
a role that reads everything but may do nothing else; each its own result; never the verdict."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import SourceDatabase
from verifier.config_assertions import Assertion
from verifier.pipeline import commands
from verifier.pipeline.assertions import run_assertions
from verifier.report import CheckResult, Report, Status, Verification


def assertion(report: Report, name: str) -> CheckResult:
    return next(result for result in report.results if result.name == f"assertion {name}")


def with_assertions(source_db: SourceDatabase, repository: Path, *assertions: dict[str, Any]) -> Any:
    return source_db.config(repository, verify={"assertions": list(assertions)})


def test_a_failing_assertion_is_critical_with_got_and_expected_and_not_the_verdict(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    source_db.execute(
        "CREATE TABLE private_notes (id int); INSERT INTO private_notes VALUES (1), (2);"
        "ALTER TABLE private_notes ENABLE ROW LEVEL SECURITY"  # no policy: only its owner or BYPASSRLS sees rows
    )
    config = with_assertions(
        source_db,
        tmp_path / "repo",
        {"name": "cities", "sql": "SELECT count(*) FROM ONLY cities", "expect": ">= 3"},
        {"name": "enough_capitals", "sql": "SELECT count(*) FROM capitals", "expect": "= 50"},
        {"name": "a_mood", "sql": "SELECT min(m) FROM moods", "expect": "ok"},
        {"name": "hidden_rows_counted", "sql": "SELECT count(*) FROM private_notes", "expect": 2},
    )
    source_db.execute("INSERT INTO moods VALUES ('meh')")
    report = commands.run(config)
    assert report.verification_passed, [(r.name, r.summary) for r in report.results if r.status]
    assert assertion(report, "cities").status is Status.OK
    assert assertion(report, "hidden_rows_counted").status is Status.OK  # the reader role bypasses row security
    failed = assertion(report, "enough_capitals")
    assert failed.status is Status.CRITICAL
    assert failed.summary == "failed on the restored copy: got '3', expected '= 50'"
    a_mood = assertion(report, "a_mood")
    assert a_mood.status is Status.CRITICAL and "got 'meh', expected 'ok'" in a_mood.summary
    assert report.exit_code == 2
    # every other check is OK: the assertions did not change the verdict
    assert {r.name for r in report.results if r.status is not Status.OK} == {
        "assertion enough_capitals",
        "assertion a_mood",
    }


def test_an_assertion_cannot_write_or_escalate_and_ends_at_its_timeout(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    config = with_assertions(
        source_db,
        tmp_path / "repo",
        {
            "name": "writes",
            "sql": "WITH added AS (INSERT INTO cities VALUES ('x', 1) RETURNING 1) SELECT count(*) FROM added",
            "expect": "1",
        },
        {"name": "reads_files", "sql": "SELECT length(pg_read_file('PG_VERSION')) > 0", "expect": True},
        {"name": "slow", "sql": "SELECT pg_sleep(60) IS NULL", "expect": True, "timeout": "1s"},
        {"name": "two_columns", "sql": "SELECT 1, 2", "expect": "1"},
        {"name": "who", "sql": "SELECT current_user", "expect": "pgbv_assertion_reader"},
    )
    started = time.monotonic()
    report = commands.run(config)
    assert time.monotonic() - started < 60  # the sleeping assertion did not hold the run
    assert report.verification_passed
    writes = assertion(report, "writes")
    # PostgreSQL names the statement's top level: "cannot execute SELECT in a read-only transaction"
    assert writes.status is Status.CRITICAL and "in a read-only transaction" in writes.summary
    reads_files = assertion(report, "reads_files")
    assert reads_files.status is Status.CRITICAL and "permission denied" in reads_files.summary
    slow = assertion(report, "slow")
    assert slow.status is Status.CRITICAL and "ran longer than its timeout (1 s)" in slow.summary
    assert "returned 1 row(s) of 2 column(s)" in assertion(report, "two_columns").summary
    assert assertion(report, "who").status is Status.OK


def test_on_a_server_sandbox_they_run_as_its_user_and_create_no_role(source_db: SourceDatabase) -> None:
    """No dump: the assertions run straight on a database as a server sandbox's (here superuser) user would."""
    verification = Verification(backup_name="b", exact=True, restored=True, sandbox="server")
    run_assertions(
        [
            Assertion(name="who", sql="SELECT current_user", expect="postgres"),
            Assertion(name="writes", sql="SELECT nextval('invoice_numbers')", expect="> 0"),
        ],
        lambda: source_db.cluster.connect(source_db.dbname),
        verification,
        own_cluster=False,
    )
    who, writes = verification.assertions
    assert who.passed and who.got == "postgres"
    assert not writes.passed and writes.error is not None and "read-only transaction" in writes.error
    assert source_db.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pgbv_assertion_reader'") == []
    assert source_db.execute("SELECT last_value FROM invoice_numbers") == [(1004,)]  # nothing advanced it
