"""The three pipelines bench_speed.py runs on one database, each returning its PipelineResult.

plain: `pg_dump | gzip -6 > f.sql.gz`, a new cluster with PostgreSQL's default settings, `gzip -dc | psql`,
`count(*)` table by table on production and on the copy, the cluster removed. verifier: `verifier run`
as a subprocess with its defaults. floor: `pg_dump -Fc -Z0 > /dev/null` plus `pg_restore -j2` of the
data and post-data sections into a cluster tuned for throwaway restores (pre-data restored untimed).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from _speed_measure import (
    BenchError,
    RunMonitor,
    client_environment,
    count_tables,
    list_tables,
    rows_read,
    run_pipeline,
    stopwatch,
    stored_bytes,
)
from _speed_results import PipelineResult
from psycopg import sql

from verifier.postgres.binaries import Installation
from verifier.postgres.throwaway.cluster import TemporaryCluster

# what an untuned PostgreSQL 15 runs with, in place of TemporaryCluster's throwaway settings: the plain
# user restores into an ordinary cluster
POSTGRES_DEFAULTS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "autovacuum": "on",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "5min",
    "maintenance_work_mem": "64MB",
    "max_connections": "100",
    "jit": "on",
}
FLOOR_JOBS = 2
VERIFIER_STOP_SECONDS = 60.0


def run_plain(installation: Installation, production: TemporaryCluster, dbname: str, workdir: Path) -> PipelineResult:
    """Runs the plain pipeline. Returns its result; `notes["live_rows"]` is the sum of production's counts.

    Raises BenchError (a program failed, the copy's counts differ), psycopg.Error.
    """
    result = PipelineResult("plain")
    phases = result.phases
    dump_file = workdir / f"{dbname}.sql.gz"
    before = rows_read(production, dbname)
    with RunMonitor(production, dbname) as monitor:
        started = time.monotonic()
        with stopwatch(phases, "dump"), dump_file.open("wb") as output:
            run_pipeline(
                [[installation.program("pg_dump"), dbname], ["gzip", "-6"]],
                environment=client_environment(production),
                output=output,
                what="pg_dump | gzip",
            )
        target = TemporaryCluster(installation, settings=POSTGRES_DEFAULTS)
        try:
            with stopwatch(phases, "cluster"):
                target.start()
            with stopwatch(phases, "restore"):
                with target.connect() as connection:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                psql: list[str | Path] = [installation.program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
                run_pipeline(
                    [["gzip", "-dc", dump_file], [*psql, "-d", dbname]],
                    environment=client_environment(target),
                    output=subprocess.DEVNULL,
                    what="gzip -dc | psql",
                )
            with stopwatch(phases, "count production"):
                production_counts = count_tables(production, dbname, list_tables(production, dbname))
            with stopwatch(phases, "count restored"):
                restored_counts = count_tables(target, dbname, list_tables(target, dbname))
        finally:
            with stopwatch(phases, "teardown"):
                target.stop()
        result.wall_seconds = round(time.monotonic() - started, 3)
    result.rows_read = rows_read(production, dbname) - before
    result.snapshot_seconds = round(monitor.snapshot_seconds, 2)
    result.longest_snapshot_seconds = round(monitor.longest_snapshot_seconds, 2)
    result.stored_bytes = dump_file.stat().st_size
    dump_file.unlink()
    differing = [table for table, count in production_counts.items() if restored_counts.get(table) != count]
    if differing:
        raise BenchError(f"plain pipeline: the copy's counts differ in {len(differing)} tables, e.g. {differing[0]}")
    result.notes["live_rows"] = sum(production_counts.values())
    return result


def run_floor(installation: Installation, production: TemporaryCluster, dbname: str, workdir: Path) -> PipelineResult:
    """Runs the floor: timed `pg_dump -Fc -Z0 > /dev/null`, then (untimed) a -Z0 archive and its pre-data
    section restored into a tuned cluster, then timed `pg_restore -j2` of the data and post-data sections.

    Returns its result (`notes["archive_bytes"]`: the -Z0 archive's size). Raises BenchError, psycopg.Error.
    """
    result = PipelineResult("floor")
    pg_dump, pg_restore = installation.program("pg_dump"), installation.program("pg_restore")
    source = client_environment(production)
    with stopwatch(result.phases, "dump"):
        run_pipeline(
            [[pg_dump, "-Fc", "-Z0", dbname]], environment=source, output=subprocess.DEVNULL, what="floor dump"
        )
    archive = workdir / f"{dbname}.floor.dump"
    try:
        run_pipeline(
            [[pg_dump, "-Fc", "-Z0", "-f", archive, dbname]],
            environment=source,
            output=subprocess.DEVNULL,
            what="floor archive",
        )
        result.notes["archive_bytes"] = archive.stat().st_size
        with TemporaryCluster(installation) as target:
            with target.connect() as connection:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            restore: list[str | Path] = [pg_restore, "-j", str(FLOOR_JOBS), "-d", dbname]
            for section, phase in (("pre-data", None), ("data", "restore data"), ("post-data", "post-data")):
                with contextlib.nullcontext() if phase is None else stopwatch(result.phases, phase):
                    run_pipeline(
                        [[*restore, f"--section={section}", archive]],
                        environment=client_environment(target),
                        output=subprocess.DEVNULL,
                        what=f"floor restore {section}",
                    )
    finally:
        archive.unlink(missing_ok=True)
    result.wall_seconds = round(sum(result.phases.values()), 3)
    return result


def run_verifier(
    program: Path, production: TemporaryCluster, dbname: str, workdir: Path, attempt: int
) -> PipelineResult:
    """Runs `verifier run` as a subprocess with its defaults against `dbname` on production, with a fresh
    repository. Returns its result: wall time, exit code, the report's timings, stored size, peak RSS,
    production's rows read and snapshot seconds. Raises BenchError (monitoring failed), psycopg.Error.
    """
    result = PipelineResult("verifier")
    directory = workdir / f"verifier-{dbname}-{attempt}"
    directory.mkdir()
    repository = directory / "repository"
    config = directory / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"host": production.host, "port": production.port, "dbname": dbname, "user": "postgres"},
                "repository": {"path": str(repository)},
                "checks": {"min_count": 1},
            }
        )
    )
    before = rows_read(production, dbname)
    try:
        with RunMonitor(production, dbname) as monitor, (directory / "output.txt").open("wb") as output:
            started = time.monotonic()
            process = subprocess.Popen(
                [str(program), "run", "--config", str(config)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=client_environment(),
            )
            monitor.watch(process.pid)
            try:
                result.exit_code = process.wait()
            finally:
                _stop(process)
            result.wall_seconds = round(time.monotonic() - started, 3)
        result.rows_read = rows_read(production, dbname) - before
        result.snapshot_seconds = round(monitor.snapshot_seconds, 2)
        result.longest_snapshot_seconds = round(monitor.longest_snapshot_seconds, 2)
        result.peak_rss_bytes = monitor.peak_rss_bytes
        report = _read_report(repository)
        result.phases = {str(name): float(seconds) for name, seconds in (report.get("timings") or {}).items()}
        result.stored_bytes = stored_bytes(repository) if repository.is_dir() else None
        problems = [f"{item.get('name')}: {item.get('summary')}" for item in report.get("results", [])
                    if item.get("status") != "OK"]  # fmt: skip
        if problems:
            result.notes["problems"] = problems
        if result.exit_code >= 2:
            output_lines = (directory / "output.txt").read_text(errors="replace").strip().splitlines()
            result.error = report.get("could_not_run") or "; ".join(problems) or (output_lines or ["no output"])[-1]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return result


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ends a verifier still running (we were interrupted) the way an operator would: SIGINT, so it
    removes its sandbox, then SIGKILL if it does not end."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=VERIFIER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_report(repository: Path) -> dict[str, Any]:
    """Returns the run's JSON report from `reports/` (empty when the run wrote none)."""
    reports = sorted((repository / "reports").glob("*.json")) if repository.is_dir() else []
    if not reports:
        return {}
    try:
        data = json.loads(reports[-1].read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"the verifier's report {reports[-1]} is unreadable: {error}") from None
    return data if isinstance(data, dict) else {}
