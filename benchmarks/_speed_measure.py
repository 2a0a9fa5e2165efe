"""Measuring tools for bench_speed.py: programs run as a shell pipeline would run them, production's
rows read and snapshots held, a process's peak memory, and row counts table by table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from psycopg import sql

from verifier.postgres.throwaway.cluster import SUPERUSER, TEMP_PREFIX, TemporaryCluster

POLL_SECONDS = 0.05
STATS_SETTLE_SECONDS = 1.5  # backends flush their table statistics when they exit, a moment after disconnecting
_LIBPQ_TARGET = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS")
_TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1, 2
"""
# rows read by sequential scans plus index entries read by index scans: idx_tup_fetch (heap rows fetched) misses
# the index-only scans a count(*) of a vacuumed table uses, idx_tup_read (entries returned) counts them too
_ROWS_READ_SQL = """
SELECT (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables)
     + (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes)
"""
_SNAPSHOT_HOLDERS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
"""


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why, in one line."""


def client_environment(cluster: TemporaryCluster | None = None) -> dict[str, str]:
    """Returns our environment without libpq's target variables, pointed at `cluster` as its superuser
    when one is given."""
    environment = {key: value for key, value in os.environ.items() if key not in _LIBPQ_TARGET}
    if cluster is None:
        return environment
    return {**environment, "PGHOST": cluster.host, "PGPORT": str(cluster.port), "PGUSER": SUPERUSER}


def run_pipeline(
    commands: Sequence[Sequence[str | Path]], *, environment: dict[str, str], output: IO[bytes] | int, what: str
) -> None:
    """Runs `commands` as `a | b | …` with the last one writing to `output`; returns when all have ended.

    Raises BenchError naming the first command that failed and its last line of stderr. Every command
    still running when this returns or raises (an interrupt) is killed and reaped.
    """
    programs = [Path(argv[0]).name for argv in commands]
    processes: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as files:
        errors = [files.enter_context(tempfile.TemporaryFile()) for _ in commands]
        try:
            for index, argv in enumerate(commands):
                previous = processes[-1].stdout if processes else None
                processes.append(
                    subprocess.Popen(
                        [str(part) for part in argv],
                        stdin=previous if previous is not None else subprocess.DEVNULL,
                        stdout=output if index == len(commands) - 1 else subprocess.PIPE,
                        stderr=errors[index],
                        env=environment,
                    )
                )
                if previous is not None:
                    previous.close()  # the next command holds it now: the writer sees EPIPE if the reader dies
            for process in processes:
                process.wait()
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for program, process, error in zip(programs, processes, errors, strict=False):
            if process.returncode != 0:
                error.seek(0)
                lines = error.read().decode(errors="replace").strip().splitlines() or ["no output"]
                raise BenchError(f"{what}: {program} exited {process.returncode}: {lines[-1]}")


@contextlib.contextmanager
def stopwatch(phases: dict[str, float], phase: str) -> Iterator[None]:
    """Records the seconds the `with` block took as `phases[phase]` (only when it finished)."""
    started = time.monotonic()
    yield
    phases[phase] = round(time.monotonic() - started, 3)


def list_tables(cluster: TemporaryCluster, dbname: str) -> list[tuple[str, str]]:
    """Returns the (schema, table) pairs of the ordinary tables of `dbname`. Raises psycopg.Error."""
    with cluster.connect(dbname) as connection:
        return [(str(schema), str(table)) for schema, table in connection.execute(_TABLES_SQL).fetchall()]


def count_tables(cluster: TemporaryCluster, dbname: str, tables: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Returns each table's `count(*)`, counted one after the other on one connection. Raises psycopg.Error."""
    counts = {}
    with cluster.connect(dbname) as connection:
        for schema, table in tables:
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            row = connection.execute(query).fetchone()
            counts[schema, table] = int(row[0]) if row else 0  # type: ignore[call-overload]
    return counts


def rows_read(cluster: TemporaryCluster, dbname: str) -> int:
    """Returns the rows read from `dbname`'s tables since the statistics were reset (sequential scans'
    rows plus index entries read), after waiting for the backends that just ended to flush theirs.
    Raises psycopg.Error."""
    time.sleep(STATS_SETTLE_SECONDS)
    with cluster.connect(dbname) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(_ROWS_READ_SQL).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def stored_bytes(repository: Path) -> int:
    """Returns the bytes of the backups in a verifier repository: the dump file(s) and globals, not the
    manifests, reports, state or lock."""
    total = 0
    for path in repository.iterdir():
        if path.name in ("reports", "state", ".lock") or path.suffix == ".json":
            continue
        files = [path] if path.is_file() else [child for child in path.rglob("*") if child.is_file()]
        total += sum(child.stat().st_size for child in files)
    return total


class RunMonitor:
    """Polls every 50 ms, in a thread, how long any session of `dbname` on production (other than the
    benchmark's own) held a snapshot, and the peak RSS (VmHWM) of the process given to `watch`."""

    def __init__(self, production: TemporaryCluster, dbname: str) -> None:
        self.production = production
        self.dbname = dbname
        self.snapshot_seconds = 0.0
        self.longest_snapshot_seconds = 0.0
        self.peak_rss_bytes: int | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="bench-monitor", daemon=True)
        self._error: BaseException | None = None

    def watch(self, pid: int) -> None:
        """Also follows the peak memory of process `pid` from now on."""
        self._pid = pid

    def __enter__(self) -> RunMonitor:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None and exc is None:
            raise BenchError(f"monitoring production failed: {self._error}")

    def _poll(self) -> None:
        # Ctrl-C and SIGTERM go to the main thread, which then raises at once; delivered here, they would
        # raise there only at some later point, possibly halfway through removing a cluster
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            with self.production.connect() as connection:
                previous, holding_since = time.monotonic(), None
                while not self._stop.is_set():
                    self._read_rss()
                    row = connection.execute(_SNAPSHOT_HOLDERS_SQL, (self.dbname,)).fetchone()
                    now = time.monotonic()
                    if row and int(row[0]) > 0:  # type: ignore[call-overload]
                        self.snapshot_seconds += now - previous
                        holding_since = holding_since or previous
                        self.longest_snapshot_seconds = max(self.longest_snapshot_seconds, now - holding_since)
                    else:
                        holding_since = None
                    previous = now
                    self._stop.wait(POLL_SECONDS)
        except BaseException as error:  # reported by __exit__ in the benchmark's thread
            self._error = error

    def _read_rss(self) -> None:
        if self._pid is None:
            return
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self._pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_bytes = max(self.peak_rss_bytes or 0, int(line.split()[1]) * 1024)


def remove_leftovers(workdir: Path) -> None:
    """Kills the postgres servers still running from a data directory under `workdir` (a second interrupt
    can end a cluster's own cleanup halfway) and deletes `workdir`. Never raises."""
    for pid_file in workdir.glob(f"{TEMP_PREFIX}*/data/postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().split()[0])
            if str(pid_file.parent).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the server ends its backends too
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
    shutil.rmtree(workdir, ignore_errors=True)
