"""One night of several databases (`source.databases: all`, one sandbox for the night) against the only
way before it: one `verifier run` per database, each with its own repository and its own sandbox.
Eight databases of `pgbench -i -s 5` by default; prints each way's seconds and their ratio.

    .venv/bin/python benchmarks/bench_several_databases.py --databases 8 --scale 5 --rounds 1
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from datetime import UTC
from pathlib import Path

from verifier.config import Config
from verifier.pipeline import commands
from verifier.pipeline.night import run_night
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=8, help="how many databases (default 8)")
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale of each (5 ≈ 500,000 rows, 75 MB)")
    parser.add_argument("--rounds", type=int, default=1, help="measure each way this many times, alternating")
    arguments = parser.parse_args()
    installation = binaries.choose(("initdb", "postgres", "pg_dump", "pg_restore", "pgbench"), purpose="bench")
    names = [f"bench_{index}" for index in range(1, arguments.databases + 1)]
    with TemporaryCluster(installation, tcp=True) as production, tempfile.TemporaryDirectory() as scratch:
        for name in names:
            with production.connect() as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            subprocess.run(
                [installation.program("pgbench"), "-i", "-q", "-s", str(arguments.scale), name],
                env={"PGHOST": production.host, "PGPORT": str(production.port), "PGUSER": "postgres"},
                check=True,
                capture_output=True,
            )
        print(f"{len(names)} databases of pgbench scale {arguments.scale}, PostgreSQL {installation.version}")
        together: list[float] = []
        apart: list[float] = []
        for round_number in range(arguments.rounds):
            root = Path(scratch) / f"round-{round_number}"
            started = time.monotonic()
            night = run_night(_config(production, root / "night", databases="all"))
            together.append(time.monotonic() - started)
            if night.exit_code != 0:
                raise SystemExit("the night did not pass:\n" + "\n".join(night.summary_lines(UTC)))
            started = time.monotonic()
            for name in names:
                report = commands.run(_config(production, root / "single" / name, dbname=name))
                if report.exit_code != 0:
                    raise SystemExit(f"{name}: the single run did not pass (exit {report.exit_code})")
            apart.append(time.monotonic() - started)
            print(
                f"round {round_number + 1}: one night {together[-1]:.1f} s (sandbox started {night.sandbox_starts}x), "
                f"{len(names)} single runs {apart[-1]:.1f} s"
            )
        best_together, best_apart = min(together), min(apart)
        print(
            f"best: one night {best_together:.1f} s, single runs {best_apart:.1f} s: "
            f"the night takes {best_together / best_apart:.2f} of the time "
            f"({best_apart - best_together:.1f} s saved, {(best_apart - best_together) / len(names):.2f} s a database)"
        )


def _config(production: TemporaryCluster, repository: Path, **source: object) -> Config:
    return Config.model_validate(
        {
            "source": {"host": production.host, "port": production.port, "user": "postgres", **source},
            "repository": {"path": str(repository)},
            "checks": {"min_count": 1},
        }
    )


if __name__ == "__main__":
    main()
