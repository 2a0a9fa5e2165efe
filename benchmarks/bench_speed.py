"""Issue 13's benchmark: the nightly proof against the plain pipeline and against the floor, side by side
in one run on the same generated databases, with the issue's targets marked met or MISSED.

For each database (pgbench at each --scale plus a wide jsonb/text, a bytea and a many-index table; then
a database of --many-tables small tables in 100 schemas, each with a serial primary key: a sequence
and an index beside every table), in a temporary "production" cluster:
  plain     pg_dump | gzip -6, a cluster with PostgreSQL's defaults, gzip -dc | psql, count(*) of every
            table on production and on the copy, the cluster removed
  verifier  `verifier run` (a subprocess, its defaults), twice: the faster run is kept
  floor     pg_dump -Fc -Z0 > /dev/null + pg_restore -j2 of the data and post-data sections into a
            tuned cluster
Order per database: verifier, plain, floor, verifier (the first run warms the caches for all); with
--quick: plain, floor, verifier (once). Prints an 80-column table per database; --json writes
everything. Exit code: 0 every target met, 1 a target missed, 2 a pipeline failed, 3 could not run.
Run as root, from the repository root:

    .venv/bin/python benchmarks/bench_speed.py --quick          # scale 1 + 500 tables: a smoke test
    .venv/bin/python benchmarks/bench_speed.py --scales 10,50,100 --many-tables 10000 --json speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import psycopg
from _speed_data import create_bench, create_many, database_bytes, table_bytes
from _speed_measure import BenchError, list_tables, remove_leftovers
from _speed_pipelines import run_floor, run_plain, run_verifier
from _speed_results import DatabaseResult, PipelineResult, format_database, format_machine

from verifier.errors import VerifierError
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster

DEFAULT_SCALES = (10, 50, 100)
DEFAULT_MANY_TABLES = 10_000
# a fair production is an ordinary one where it matters to the measurement (JIT for counting, connection
# slots); max_locks_per_transaction is raised as every server with 10,000 tables must: pg_dump locks each
# table and reads each sequence in one transaction, the snapshot's holder locks each table too, and 64 x 112
# slots cannot hold that (durability settings do not matter here); 1024 as in the field report (issue 21)
PRODUCTION_SETTINGS = {"jit": "on", "max_connections": "100", "autovacuum": "on", "max_locks_per_transaction": "1024"}


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark. Returns the exit code (see the module's docstring)."""
    arguments = _parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM ends the run through the same cleanup as Ctrl-C
    try:
        installation = binaries.choose(
            ("initdb", "postgres", "pg_dump", "pg_restore", "psql", "pgbench"), purpose="the benchmark"
        )
        program = _verifier_program()
    except (VerifierError, BenchError) as error:
        print(f"bench_speed: {error}", file=sys.stderr)
        return 3
    print(format_machine(_machine(installation)), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="pgbv-bench-"))
    workdir.chmod(0o755)  # the clusters' unprivileged user must traverse it
    tempfile.tempdir = str(workdir)  # every cluster of ours lives inside: the last cleanup finds them all
    results: list[DatabaseResult] = []
    try:
        for scale in arguments.scales:
            results.append(_bench_database(installation, program, workdir, arguments.quick, scale=scale))
        if arguments.many_tables:
            many = arguments.many_tables
            results.append(_bench_database(installation, program, workdir, arguments.quick, tables=many))
    except KeyboardInterrupt:
        print("bench_speed: interrupted; clusters and temporary files removed", file=sys.stderr)
        return 130
    except (VerifierError, BenchError, psycopg.Error, OSError) as error:
        print(f"bench_speed: could not run: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 3
    finally:
        remove_leftovers(workdir)
    if arguments.json:
        order = "plain, floor, verifier" if arguments.quick else "verifier, plain, floor, verifier (faster kept)"
        data = {"machine": _machine(installation), "order": order, "databases": [item.to_dict() for item in results]}
        arguments.json.write_text(json.dumps(data, indent=2) + "\n")
    return _exit_code(results)


def _bench_database(
    installation: binaries.Installation,
    program: Path,
    workdir: Path,
    quick: bool,
    *,
    scale: int | None = None,
    tables: int = 0,
) -> DatabaseResult:
    """Generates one database in a new production cluster and runs the pipelines on it (`quick`: the
    verifier once, last); prints its table. Returns the result. Raises BenchError, psycopg.Error,
    VerifierError (a cluster did not start)."""
    dbname = "bench" if scale is not None else "many"
    with TemporaryCluster(installation, tcp=True, settings=PRODUCTION_SETTINGS) as production:
        started = time.monotonic()
        if scale is not None:
            _progress(f"{dbname}: generating pgbench scale {scale} and the extra tables")
            create_bench(installation.program("pgbench"), production, scale)
            description = f"pgbench scale {scale} + documents (jsonb, text), attachments (bytea), events (7 indexes)"
        else:
            _progress(f"{dbname}: generating {tables:,} tables in 100 schemas")
            create_many(production, tables)
            description = f"{tables:,} small tables in {min(tables, 100)} schemas"
        _progress(f"{dbname}: generated in {time.monotonic() - started:.0f} s")
        result = DatabaseResult(
            name=dbname,
            description=description,
            scale=scale,
            tables=len(list_tables(production, dbname)),
            size_bytes=database_bytes(production, dbname),
            table_bytes=table_bytes(production, dbname) if scale is not None else {},
        )
        runs: list[tuple[str, Callable[[], PipelineResult]]] = [
            ("verifier", lambda: run_verifier(program, production, dbname, workdir, 1)),
            ("plain", lambda: run_plain(installation, production, dbname, workdir)),
            ("floor", lambda: run_floor(installation, production, dbname, workdir)),
            ("verifier", lambda: run_verifier(program, production, dbname, workdir, 2)),
        ]
        runs = runs[1:] if quick else runs
        for name, run in runs:
            outcome = _measured(run, name)
            if name == "verifier":
                result.verifier_runs.append(outcome)
            elif name == "plain":
                result.plain = outcome
                result.live_rows = outcome.notes.get("live_rows")
            else:
                result.floor = outcome
    finished = [run for run in result.verifier_runs if run.ok]
    result.verifier = min(finished, key=lambda run: run.wall_seconds or 0) if finished else result.verifier_runs[0]
    print("\n" + format_database(result), flush=True)
    return result


def _measured(run: Callable[[], PipelineResult], name: str) -> PipelineResult:
    """Returns what `run` measured, or a result carrying the one-line error it failed with."""
    _progress(f"  {name}…")
    try:
        outcome = run()
    except (BenchError, VerifierError, psycopg.Error) as error:
        return PipelineResult(name, error=str(error).strip().splitlines()[0] if str(error).strip() else repr(error))
    _progress(f"  {name}: {outcome.wall_seconds} s" + (f", exit code {outcome.exit_code}" if outcome.exit_code else ""))
    return outcome


def _exit_code(results: list[DatabaseResult]) -> int:
    pipelines = [pipeline for result in results for pipeline in (result.plain, result.floor, *result.verifier_runs)]
    if any(pipeline is None or not pipeline.ok for pipeline in pipelines):
        return 2
    return 1 if any(target.met is False for result in results for target in result.targets()) else 0


def _machine(installation: binaries.Installation) -> dict[str, str]:
    """Returns the CPU model, cores, memory, load, PostgreSQL version and kernel of this host."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")), 0)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{total_kib / 1024 / 1024:.1f} GiB",
        "load": f"{load} (at start; the machine may be shared)",
        "postgresql": f"{installation.version} ({installation.bin_dir})",
        "system": f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
    }


def _verifier_program() -> Path:
    """Returns the `verifier` console script beside this Python (the venv's). Raises BenchError."""
    beside = Path(sys.executable).parent / "verifier"
    found = beside if beside.exists() else Path(shutil.which("verifier") or "")
    if not found.name:
        raise BenchError("the verifier command is not installed: run ./install.sh --dev, then .venv/bin/python")
    return found


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=_scales, default=DEFAULT_SCALES, help="pgbench scales (default 10,50,100)")
    parser.add_argument(
        "--many-tables", type=int, default=DEFAULT_MANY_TABLES, metavar="N", help="tables of `many` (0: skip it)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: scale 1 and 500 tables")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every measurement as JSON")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.scales, arguments.many_tables = (1,), 500
    if arguments.many_tables < 0:
        parser.error("--many-tables: expected 0 or more")
    return arguments


def _scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected scales such as 10,50,100, got {text!r}") from None
    if any(scale < 1 for scale in scales):
        raise argparse.ArgumentTypeError("every scale must be at least 1")
    return scales


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _interrupt(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
