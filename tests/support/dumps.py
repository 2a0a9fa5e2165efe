"""Dumps the way the tests need them: a cron'd legacy dump, flipped bytes, a restore that loses rows."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.conftest import SourceDatabase
from tests.support.reports import newest_manifest
from verifier.archive.files import hash_existing
from verifier.pipeline import verify
from verifier.postgres.binaries import Installation


def alter_and_reseal(repository: Path, change: tuple[str, str]) -> None:
    """Replaces one piece of text in the newest plain backup and re-seals its manifest, so that only a
    restore-and-compare can tell."""
    dump_path, manifest = newest_manifest(repository)
    text = gzip.decompress(dump_path.read_bytes()).decode()
    old, new = change
    assert text.count(old) == 1, old
    dump_path.write_bytes(gzip.compress(text.replace(old, new).encode()))
    manifest.files = [hash_existing(dump_path, dump_path.name), *manifest.files[1:]]
    manifest.write(repository / f"{manifest.name}.json")


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
    """Returns a stand-in for `verify.compare_restored` (where every restore path ends) that deletes
    `table`'s rows in the restored copy and then compares for real: the test hook of the negative
    control (the comparison must notice)."""
    real_compare = verify.compare_restored

    def delete_then_compare(sandbox: Any, *arguments: Any, **options: Any) -> Any:
        with sandbox.connect() as connection:
            connection.execute(f"DELETE FROM {table}")
        return real_compare(sandbox, *arguments, **options)

    return delete_then_compare
