"""Speed of the proof loop against the plain pipeline it replaces, measured in the same run.

Baseline: `pg_dump | gzip > file` then `gzip -dc file | psql` into a fresh database (what the cron
script and the manual restore do; no counting, no checking). Ours: `verifier run` (snapshot + row
counts + pg_dump --snapshot, checksums, temporary cluster, pg_restore -j, counts, fingerprint,
checks) for the custom and plain formats. Prints seconds and the ratio ours / baseline.

    .venv/bin/python benchmarks/bench_pipeline.py --scale 10
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from verifier.config import Config
from verifier.pipeline import steps as pipeline
from verifier.postgres import binaries
from verifier.postgres.cluster import TemporaryCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale (10 ≈ 1M rows, 150 MB)")
    parser.add_argument("--jobs", type=int, default=2)
    arguments = parser.parse_args()
    installation = binaries.choose(("initdb", "postgres", "pg_dump", "pg_restore", "psql", "pgbench"), purpose="bench")
    workdir = Path(tempfile.mkdtemp(prefix="pgbv-bench-"))
    try:
        with TemporaryCluster(installation, tcp=True) as production, TemporaryCluster(installation) as target:
            with production.connect() as connection:
                connection.execute("CREATE DATABASE bench")
            environment = {"PGHOST": production.host, "PGPORT": str(production.port), "PGUSER": "postgres"}
            subprocess.run(
                [installation.program("pgbench"), "-i", "-q", "-s", str(arguments.scale), "bench"],
                env=environment,
                check=True,
                capture_output=True,
            )
            with production.connect("bench") as connection:
                size = connection.execute("SELECT pg_database_size('bench')").fetchone()[0]  # type: ignore[index]
            print(f"database: pgbench scale {arguments.scale}, {size / 1e6:.0f} MB")
            baseline = plain_pipeline(installation, environment, target, workdir)
            print(f"baseline pg_dump | gzip + gunzip | psql: {baseline:.1f}s")
            for dump_format in ("custom", "plain"):
                config = Config.model_validate(
                    {
                        "source": {
                            "host": production.host,
                            "port": production.port,
                            "dbname": "bench",
                            "user": "postgres",
                        },
                        "repository": {"path": str(workdir / f"repo-{dump_format}")},
                        "dump": {"format": dump_format, "jobs": arguments.jobs},
                        "verify": {"jobs": arguments.jobs},
                        "checks": {"min_count": 1},
                    }
                )
                started = time.monotonic()
                report = pipeline.run(config)
                ours = time.monotonic() - started
                detail = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.timings.items())
                print(
                    f"verifier run ({dump_format}): {ours:.1f}s = {ours / baseline:.2f}x baseline "
                    f"[{detail}] exit {report.exit_code}"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def plain_pipeline(
    installation: binaries.Installation, environment: dict[str, str], target: TemporaryCluster, workdir: Path
) -> float:
    """Returns the seconds of `pg_dump | gzip > f` plus `gzip -dc f | psql` into a new database."""
    dump_file = workdir / "baseline.sql.gz"
    started = time.monotonic()
    with dump_file.open("wb") as output:
        dump = subprocess.Popen([installation.program("pg_dump"), "bench"], env=environment, stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-6"], stdin=dump.stdout, stdout=output, check=True)
        assert dump.stdout is not None
        dump.stdout.close()
        assert dump.wait() == 0
    with target.connect() as connection:
        connection.execute("CREATE DATABASE restored_baseline")
    unzip = subprocess.Popen(["gzip", "-dc", str(dump_file)], stdout=subprocess.PIPE)
    subprocess.run(
        [
            installation.program("psql"),
            "-q",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            target.host,
            "-p",
            str(target.port),
            "-U",
            "postgres",
            "restored_baseline",
        ],
        stdin=unzip.stdout,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    assert unzip.wait() == 0
    return time.monotonic() - started


if __name__ == "__main__":
    main()
