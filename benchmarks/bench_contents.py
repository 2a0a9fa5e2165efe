"""Cost of the content checksums on a pgbench database: seconds per GB for a count alone, a count with
the full checksum, and a count with the sampled checksum, on production (in one snapshot) and on a
restored copy in a second cluster (the sandbox side). Prints one line per table and the totals.

    .venv/bin/python benchmarks/bench_contents.py --scale 10
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Callable

from verifier.postgres import binaries, catalog
from verifier.postgres.evidence import contents
from verifier.postgres.throwaway.cluster import TemporaryCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale (10 ≈ 1M rows, 150 MB)")
    parser.add_argument("--percent", type=float, default=5.0, help="sample share")
    arguments = parser.parse_args()
    installation = binaries.choose(("initdb", "postgres", "pg_dump", "pg_restore", "pgbench"), purpose="bench")
    with TemporaryCluster(installation, tcp=True) as production, TemporaryCluster(installation) as sandbox:
        for cluster in (production, sandbox):
            with cluster.connect() as connection:
                connection.execute("CREATE DATABASE bench")
        environment = {"PGHOST": production.host, "PGPORT": str(production.port), "PGUSER": "postgres"}
        subprocess.run(
            [installation.program("pgbench"), "-i", "-q", "-s", str(arguments.scale), "bench"],
            env=environment,
            check=True,
            capture_output=True,
        )
        dump = subprocess.run(
            [installation.program("pg_dump"), "--format=custom", "bench"],
            env=environment,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            [installation.program("pg_restore"), "--no-owner", "-d", "bench", *_socket(sandbox)],
            input=dump,
            check=True,
            capture_output=True,
        )
        for side, cluster in (("production", production), ("sandbox", sandbox)):
            _measure(side, lambda cluster=cluster: cluster.connect("bench"), arguments.percent)  # type: ignore[misc]


def _measure(side: str, connect: Callable[[], catalog.Connection], percent: float) -> None:
    with connect() as connection:
        connection.execute("VACUUM ANALYZE")
        size = int(connection.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index, arg-type]
        tables = catalog.list_tables(connection)
        full = contents.plan(connection, tables, "full", 100)
        sample = contents.plan(connection, tables, "sample", percent)
    gigabytes = size / 1e9
    for _ in range(2):  # the first pass warms the cache; the second is reported
        started = time.monotonic()
        catalog.count_rows(tables, connect)
        count_seconds = time.monotonic() - started
        started = time.monotonic()
        full_result = contents.fingerprint_tables(full, connect)
        full_seconds = time.monotonic() - started
        started = time.monotonic()
        sample_result = contents.fingerprint_tables(sample, connect)
        sample_seconds = time.monotonic() - started
    print(f"{side}: {size / 1e6:.0f} MB, {len(tables)} tables")
    for table in tables:
        print(
            f"  {catalog.quote_name(*table)}: {full_result[table].rows:,} rows, "
            f"full {full_result[table].seconds:.2f}s, "
            f"sample ({sample_result[table].spec.mode}, {sample_result[table].hashed_rows:,} hashed) "
            f"{sample_result[table].seconds:.2f}s"
        )
    print(
        f"  count only {count_seconds:.2f}s ({count_seconds / gigabytes:.1f} s/GB); count+full checksum "
        f"{full_seconds:.2f}s ({full_seconds / gigabytes:.1f} s/GB); count+{percent:g}% sample "
        f"{sample_seconds:.2f}s ({sample_seconds / gigabytes:.1f} s/GB)"
    )


def _socket(cluster: TemporaryCluster) -> list[str]:
    return ["-h", str(cluster.host), "-p", str(cluster.port), "-U", "postgres"]


if __name__ == "__main__":
    main()
