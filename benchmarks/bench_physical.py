"""Cost of the physical proof on a pgbench database: a production cluster archiving into a pgBackRest
repository on local disk, a full backup, pgbench writing during the exact instant; then the instant's
counts, the restore to it (pgBackRest's restore and the WAL it needs), recovery to the LSN and promotion,
the same counts on the restored copy, and pg_amcheck (sample and full). The floor is pgBackRest's restore
plus recovery alone; the proof's other steps are printed beside it. Run as root (production runs as
postgres, the sandbox as pgbv-sandbox), with pgBackRest installed (dev/install-pgbackrest).

    .venv/bin/python benchmarks/bench_physical.py --scale 10
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from verifier import process
from verifier.config import PostgresConfig, VerifyConfig
from verifier.config_physical import PhysicalConfig
from verifier.physical.amcheck import run_amcheck
from verifier.physical.instant_proof import restore_to_instant, take_instant
from verifier.postgres import binaries, catalog
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.throwaway.cluster import TemporaryCluster

STANZA = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale (10 ≈ 1M rows, 150 MB)")
    arguments = parser.parse_args()
    installation = binaries.choose(("initdb", "postgres", "pgbench", "pg_amcheck"), purpose="bench")
    directory = Path(tempfile.mkdtemp(prefix="pgbv-bench-physical-"))
    directory.chmod(0o755)
    config = directory / "pgbackrest.conf"
    try:
        settings = {
            "wal_level": "logical",
            "archive_mode": "on",
            "archive_command": f"'pgbackrest --config={config} --stanza={STANZA} archive-push %p'",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "full_page_writes": "on",
        }
        with TemporaryCluster(installation, tcp=True, settings=settings) as production:
            assert production.user is not None, "run as root: production runs as postgres"
            for name in ("repo", "lock", "log"):
                (directory / name).mkdir(mode=0o750)
                shutil.chown(directory / name, production.user.uid, production.user.gid)
            config.write_text(
                f"[global]\nrepo1-path={directory / 'repo'}\nlock-path={directory / 'lock'}\n"
                f"log-path={directory / 'log'}\nlog-level-file=off\nstart-fast=y\nrepo1-retention-full=9\n"
                f"[{STANZA}]\npg1-path={production.data_dir}\npg1-socket-path={production.socket_dir}\n"
                f"pg1-port={production.port}\npg1-user=postgres\n"
            )
            config.chmod(0o644)
            environment = {"PGHOST": production.host, "PGPORT": str(production.port), "PGUSER": "postgres"}
            pgbench = str(installation.program("pgbench"))
            started = time.monotonic()
            process.run([pgbench, "-i", "-q", "-s", str(arguments.scale), "postgres"], environment=environment)
            print(f"pgbench -i -s {arguments.scale}: {time.monotonic() - started:.1f}s")
            for command in (["stanza-create"], ["backup", "--type=full"]):
                started = time.monotonic()
                argv = ["pgbackrest", f"--config={config}", f"--stanza={STANZA}", "--log-level-console=off", *command]
                completed = process.run(argv, user=production.user)
                if completed.returncode != 0:
                    raise SystemExit(f"pgbackrest {command[0]} failed: {completed.stderr.strip()}")
                print(f"pgbackrest {command[0]}: {time.monotonic() - started:.1f}s")
            writer = process.start([pgbench, "-c", "2", "-T", "600", "postgres"], environment=environment)
            try:
                time.sleep(10)  # WAL written after the backup, which recovery replays
                _prove(production, PhysicalConfig(stanza=STANZA, config=config))
            finally:
                writer.kill()
                writer.wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _prove(production: TemporaryCluster, physical: PhysicalConfig) -> None:
    params = ConnectionParams(dbname="postgres", host=production.host, port=production.port, user="postgres")
    with production.connect() as connection:
        tables = catalog.list_tables(connection)
    started = time.monotonic()
    with take_instant(physical, params) as instant:
        counts = catalog.count_rows(tables, production.connect, snapshot_id=instant.snapshot_id, jobs=2)
    read_seconds = time.monotonic() - started
    started = time.monotonic()
    with restore_to_instant(physical, VerifyConfig(), PostgresConfig(), params, instant) as restored:
        entered = time.monotonic() - started
        started = time.monotonic()
        restored_counts = catalog.count_rows(tables, restored.connect, jobs=2)
        counted = time.monotonic() - started
        sample = run_amcheck(restored, "sample")
        full = run_amcheck(restored, "full")
        with restored.connect() as connection:
            row = connection.execute("SELECT pg_database_size('postgres')").fetchone()
            size = int(row[0]) if row else 0  # type: ignore[call-overload]
    floor = restored.restore_seconds + restored.recovery_seconds
    assert sample is not None and full is not None
    print(f"database {size / 1e6:.0f} MB; {restored.describe()}; {len(restored.segments)} WAL segments")
    print(f"instant and counts in its snapshot: {read_seconds:.1f}s")
    print(f"archive wait + restore + recovery: {entered:.1f}s (restore {restored.restore_seconds:.1f}s, "
          f"recovery {restored.recovery_seconds:.1f}s: the floor {floor:.1f}s)")  # fmt: skip
    print(f"counts on the restored copy: {counted:.1f}s; equal: {restored_counts == counts}")
    print(f"pg_amcheck sample {sample.seconds:.1f}s, full {full.seconds:.1f}s; findings {len(full.findings)}")
    proof = read_seconds + entered + counted
    print(f"proof without amcheck {proof:.1f}s = {proof / floor:.2f} x the floor; with full amcheck "
          f"{(proof + full.seconds) / floor:.2f} x")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"failed: {error}") from None
