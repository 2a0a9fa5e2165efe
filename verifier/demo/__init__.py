"""`verifier demo`: the whole proof loop against a realistic database that keeps changing.

It starts a local "production" cluster (the same temporary-cluster module as the sandbox), loads
a 27-table SaaS schema with sample data, keeps a writer inserting rows while the dump runs, then
runs the nightly pipeline into a temporary repository. The restored copy must match the dump's
snapshot exactly even though production moved on.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg

from verifier.config import (
    ChecksConfig,
    Config,
    DumpConfig,
    PostgresConfig,
    RepositoryConfig,
    SourceConfig,
    VerifyConfig,
)
from verifier.pipeline import commands as steps
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import SUPERUSER, TemporaryCluster
from verifier.progress import Meter, Step
from verifier.report import Command, Report

DATABASE = "eatfit24"
DUMP_STEP = "snapshot and dump"


class Writer(threading.Thread):
    """Inserts a meal, its items, a water log and an audit row per transaction until stopped."""

    def __init__(self, connection_kwargs: dict[str, str | int]) -> None:
        super().__init__(name="demo-writer", daemon=True)
        self.connection_kwargs = connection_kwargs
        self.stop_event = threading.Event()
        self.transactions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(**self.connection_kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
                while not self.stop_event.is_set():
                    with connection.transaction():
                        connection.execute(
                            "WITH meal AS (INSERT INTO meals (user_id, kind, eaten_at) "
                            "VALUES (1 + (random() * 2999)::int, 'snack', now()) RETURNING id) "
                            "INSERT INTO meal_items (meal_id, food_id, grams) "
                            "SELECT id, 1 + (random() * 899)::int, 100 "
                            "FROM meal, generate_series(1, 2)"
                        )
                        connection.execute(
                            "INSERT INTO water_logs (user_id, ml) VALUES (1 + (random() * 2999)::int, 200)"
                        )
                        connection.execute("INSERT INTO audit_log (user_id, action) VALUES (1, 'meal.create')")
                    self.transactions += 1
        except BaseException as error:  # reported by the demo, never silently lost
            self.error = error

    def stop(self) -> int:
        """Stops the writer and returns how many transactions it committed."""
        self.stop_event.set()
        self.join(timeout=30)
        return self.transactions


@contextmanager
def production_database(run_as: str | None) -> Iterator[TemporaryCluster]:
    """Yields a started cluster holding the sample database; removes it on exit. Raises BinaryMissing."""
    installation = binaries.choose(("initdb", "postgres", "pg_dump", "pg_restore", "psql"), purpose="the demo")
    with TemporaryCluster(installation, run_as=run_as) as cluster:
        with cluster.connect() as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        with cluster.connect(DATABASE) as connection:
            connection.execute(resources.files("verifier.demo").joinpath("schema.sql").read_text())
        yield cluster


def demo_config(cluster: TemporaryCluster, repository: Path, dump_format: str) -> Config:
    """Returns the config the demo runs with: production is the demo cluster, one backup is enough,
    the default drift settings (production moving on is information, never the verdict), and the sandbox runs
    as the product's own sandbox account (as root: `verifier doctor --fix` or install.sh creates it)."""
    return Config(
        source=SourceConfig(host=cluster.host, port=cluster.port, dbname=DATABASE, user=SUPERUSER),
        repository=RepositoryConfig(path=repository),
        dump=DumpConfig(format=dump_format),  # type: ignore[arg-type]
        verify=VerifyConfig(),
        checks=ChecksConfig(min_count=1),
        postgres=PostgresConfig(),
    )


def run_demo(*, keep: bool, dump_format: str, run_as: str, step: Step, announce: Callable[[str], None]) -> Report:
    """Runs the whole proof loop against a changing sample database. Returns the report.

    Removes every cluster and the temporary repository unless `keep` (then the repository stays).
    Raises BinaryMissing / SandboxError when PostgreSQL cannot be started here.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pg-backup-verifier-demo-"))
    try:
        announce("starting the demo's production database (27 tables, sample data)")
        with production_database(run_as) as cluster:
            writer = Writer(cluster.connection_kwargs(DATABASE))
            writer.start()
            during_dump = {"transactions": 0}

            def observe(name: str) -> Meter | None:
                if name != DUMP_STEP and writer.is_alive():
                    during_dump["transactions"] = writer.stop()
                return step(name)

            (workdir / "repository").mkdir(mode=0o700)  # the demo's own: `run`'s "created the repository" is for typos
            config = demo_config(cluster, workdir / "repository", dump_format)
            try:
                report = steps.run(config, step=observe, command=Command.DEMO)
            finally:
                writer.stop()
            if writer.error is not None:
                announce(f"the writer stopped with an error: {writer.error}")
            announce(
                f"the writer committed {during_dump['transactions']} transactions while the snapshot was "
                "counted and the dump ran: production moved on, the backup must still match its snapshot"
            )
    finally:
        if keep:
            announce(f"kept the repository: {workdir / 'repository'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report
