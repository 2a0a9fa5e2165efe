"""Commands are argv lists; connection details and secrets travel in the environment only."""

from __future__ import annotations

import os
from pathlib import Path

from verifier import process
from verifier.postgres.backup.dump import pg_dump_argv
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.restore.run import pg_restore_argv, psql_restore_argv


def test_pg_dump_argv_uses_the_snapshot_and_no_connection_details() -> None:
    argv = pg_dump_argv("custom", "00000003-0000001B-1", jobs=4, compression=None, output=None, lock_wait_timeout=2)
    assert argv == [
        "pg_dump",
        "--no-password",
        "--snapshot=00000003-0000001B-1",
        "--lock-wait-timeout=2000",
        "--format=custom",
    ]


def test_directory_format_runs_parallel_into_the_partial_directory() -> None:
    argv = pg_dump_argv("directory", "snap", jobs=3, compression=5, output=Path("/r/x.dir.partial"))
    assert "--jobs=3" in argv and "--file=/r/x.dir.partial" in argv and "--compress=5" in argv


def test_restore_argv_keeps_owners_and_privileges_but_drops_subscriptions() -> None:
    argv = pg_restore_argv("/r/x.dump", "restored", 2)
    for option in ("--no-subscriptions", "--jobs=2", "--dbname=restored"):
        assert option in argv
    assert "--no-owner" not in argv and "--no-privileges" not in argv  # a recovery needs them: proven too
    assert argv[-1] == "/r/x.dump"
    assert "--set=ON_ERROR_STOP=1" in psql_restore_argv("restored")


def test_password_goes_to_the_environment_never_to_argv_or_label() -> None:
    params = ConnectionParams(dbname="app", host="db", port=5433, user="u", password="s3cret")
    assert params.libpq_environment()["PGPASSWORD"] == "s3cret"
    assert "s3cret" not in params.label and "s3cret" not in repr(params)
    assert "s3cret" not in " ".join(pg_dump_argv("plain", "x", jobs=1, compression=None, output=None))


def test_child_environment_drops_inherited_targets_but_keeps_pgpassfile(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PGDATABASE", "wrong")
    monkeypatch.setenv("PGPASSFILE", "/etc/pgpass")
    environment = process.child_environment({"PGHOST": "right"})
    assert "PGDATABASE" not in environment
    assert environment["PGPASSFILE"] == "/etc/pgpass"
    assert environment["PGHOST"] == "right"
    assert os.environ["PGDATABASE"] == "wrong"
