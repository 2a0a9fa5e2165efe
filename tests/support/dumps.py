"""Dumps the way the tests need them: a cron'd legacy dump, flipped bytes, a restore that loses rows."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from tests.integration.conftest import SourceDatabase
from verifier.pipeline import verify
from verifier.postgres.binaries import Installation


def flip_bytes(path: Path, offset: int, count: int = 16) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        data = handle.read(count)
        handle.seek(offset)
        handle.write(bytes(byte ^ 0xFF for byte in data))


def legacy_dump(source_db: SourceDatabase, installation: Installation, path: Path) -> bytes:
    """Returns a plain dump made the way a cron script does (`pg_dump | gzip`), also written to `path`."""
    completed = subprocess.run(
        [
            str(installation.program("pg_dump")),
            "-h",
            source_db.cluster.host,
            "-p",
            str(source_db.cluster.port),
            "-U",
            "postgres",
            source_db.dbname,
        ],
        check=True,
        capture_output=True,
    )
    path.write_bytes(gzip.compress(completed.stdout))
    return completed.stdout


def delete_rows_after_restore(table: str) -> Callable[..., Any]:
    """Returns a stand-in for `restore_archive` that restores for real and then deletes `table`'s rows in
    the restored copy: the test hook of the negative control (the comparison must notice)."""
    real_restore = verify.restore_archive

    def restore_then_delete(executor: Any, archive: str, dbname: str, jobs: int, environment: Mapping[str, str]) -> Any:
        restored = real_restore(executor, archive, dbname, jobs, environment)
        with psycopg.connect(
            host=environment["PGHOST"], port=environment["PGPORT"], user=environment["PGUSER"], dbname=dbname,
            autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
        return restored

    return restore_then_delete
