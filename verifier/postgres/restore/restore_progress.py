"""How far a restore is, seen from inside the sandbox: the rows already in its tables.

pg_restore and psql say nothing while they work, and an archive's size says little about how long
its restore takes (it is compressed, and the indexes are built afterwards). The rows are what the
snapshot counted, so a backup with a manifest has an exact total. Finished tables are read from
the statistics (`pg_stat_user_tables.n_tup_ins`, flushed by each backend about once a second),
the table being copied from `pg_stat_progress_copy` (PostgreSQL 14 and newer).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import psycopg

from verifier.postgres.catalog import Connector
from verifier.progress import ROWS_RESTORED, Meter

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # a cheap statistics query: often enough that a short COPY is seen moving
FINAL_WAIT_SECONDS = 1.5  # for the restore's last statistics, when fewer rows than expected are seen

_ROWS_SQL = """
SELECT coalesce((SELECT sum(n_tup_ins) FROM pg_stat_user_tables), 0)::bigint
     + coalesce((SELECT sum(tuples_processed) FROM pg_stat_progress_copy
                 WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())), 0)::bigint
"""
_ROWS_SQL_BEFORE_14 = "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables"


@contextlib.contextmanager
def watching_restore(connect: Connector, expected_rows: int | None, meter: Meter | None) -> Iterator[None]:
    """Reports the rows restored so far to `meter` about five times a second while the body runs, and
    once more at its end. Never raises: a sandbox that cannot be watched just shows no rows."""
    if meter is None:
        yield
        return
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(connect, expected_rows, meter, stop), name="restore-progress", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def _watch(connect: Connector, expected_rows: int | None, meter: Meter, stop: threading.Event) -> None:
    try:
        with connect() as connection:
            connection.autocommit = True  # each poll its own transaction: fresh statistics
            query = _ROWS_SQL if connection.info.server_version >= 140000 else _ROWS_SQL_BEFORE_14
            while True:
                ended = stop.is_set()
                _report(meter, *_rows_restored(connection, query, expected_rows))
                if ended or stop.wait(POLL_SECONDS):
                    break
            # the last statistics: a restore's sessions send theirs as they end, just after it returns
            deadline = time.monotonic() + FINAL_WAIT_SECONDS
            rows, expected = _rows_restored(connection, query, expected_rows)
            while expected is not None and rows < expected and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS / 2)
                rows, expected = _rows_restored(connection, query, expected_rows)
            _report(meter, rows, expected)
    except (psycopg.Error, OSError) as error:
        logger.debug("restore progress not watched: %s", error)


def _report(meter: Meter, rows: int, expected: int | None) -> None:
    """Reports the rows so far; none while nothing is seen of a restore of unknown size (a small one
    said "0 rows restored" when its statistics came after its step ended)."""
    if rows or expected is not None:
        meter(ROWS_RESTORED, rows, expected)


def _rows_restored(
    connection: psycopg.Connection[tuple[object, ...]], query: str, expected: int | None
) -> tuple[int, int | None]:
    """Returns (rows in the sandbox so far, at most `expected`; `expected`). Raises psycopg.Error."""
    row = connection.execute(query).fetchone()
    rows = int(row[0]) if row else 0  # type: ignore[call-overload]
    return (rows if expected is None else min(rows, expected)), expected
