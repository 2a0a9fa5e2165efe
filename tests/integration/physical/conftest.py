"""Physical-backup fixtures: a production cluster (run as postgres) archiving its WAL with
`archive_command = 'pgbackrest … archive-push %p'` into a pgBackRest repository on local disk in a temp
directory (its own pgbackrest.conf, passed with --config: nothing in /etc), the stanza created, backups
taken as the cluster's account, and a writer that inserts and deletes rows in every transaction. The
repository can be on the off-site tests' S3 server instead, over TLS checked against its throwaway CA.
Under CI=true a missing pgBackRest fails instead of skipping (dev/install-pgbackrest installs it)."""

from __future__ import annotations

import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.integration.offsite.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, S3Server
from tests.integration.offsite.conftest import s3_server as s3_server  # the same session fixture, re-exported
from tests.support.requirements import need
from verifier import process
from verifier.config_physical import PhysicalConfig
from verifier.physical.engine import Engine, Inventory, PhysicalBackup, RecoveryTarget
from verifier.postgres import binaries
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.throwaway.cluster import TemporaryCluster

STANZA = "prod"
SCHEMA = """
CREATE TABLE t (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE INDEX t_payload ON t (payload);
CREATE TABLE u (id bigserial PRIMARY KEY, t_count bigint NOT NULL);
CREATE TABLE still (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO t (payload) SELECT 'row ' || g FROM generate_series(1, 5000) g;
INSERT INTO still SELECT g, 'name ' || g FROM generate_series(1, 300) g;
"""


@dataclass
class PhysicalProduction:
    """Production with its pgBackRest repository: `physical` is the agent's config section for it."""

    cluster: TemporaryCluster
    directory: Path
    physical: PhysicalConfig
    writes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def params(self) -> ConnectionParams:
        return ConnectionParams(dbname="postgres", host=self.cluster.host, port=self.cluster.port, user="postgres")

    @property
    def repository(self) -> Path:
        return self.directory / "repo"

    def pgbackrest(self, command: str, *options: str) -> str:
        """Runs pgBackRest as the cluster's account (as archive_command does). Returns its stdout."""
        argv = ["pgbackrest", f"--config={self.physical.config}", f"--stanza={STANZA}", *options, command]
        completed = process.run(argv, user=self.cluster.user, timeout=300)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    def backup(self, kind: str) -> None:
        self.pgbackrest("backup", f"--type={kind}", "--log-level-console=off")

    def execute(self, statement: str) -> list[tuple[object, ...]]:
        with self.cluster.connect() as connection:
            cursor = connection.execute(statement)  # type: ignore[call-overload]
            return cursor.fetchall() if cursor.description else []

    def write_continuously(self) -> threading.Thread:
        """Starts a thread inserting and deleting rows in every transaction until `stop_writing`."""

        def write() -> None:
            with self.cluster.connect(autocommit=False) as connection:
                while not self._stop.is_set():
                    with connection.transaction():
                        connection.execute(
                            "INSERT INTO t (payload) SELECT md5(random()::text) FROM generate_series(1, 5)"
                        )
                        connection.execute("DELETE FROM t WHERE id = (SELECT min(id) FROM t)")
                        connection.execute("INSERT INTO u (t_count) SELECT count(*) FROM t")
                    self.writes += 1

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        return thread

    def stop_writing(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(timeout=30)


def s3_repository(server: S3Server, directory: Path) -> str:
    """Returns pgbackrest.conf's repository lines for a new bucket of `server`, over TLS verified against
    the server's throwaway CA, copied into `directory` where archive_command (as postgres) can read it
    (pgBackRest's default is to verify; it is said here for the reader)."""
    assert server.ca_file is not None
    ca_file = directory / "s3-ca.crt"
    shutil.copyfile(server.ca_file, ca_file)
    ca_file.chmod(0o644)
    bucket = server.new_bucket()
    return (
        f"repo1-type=s3\nrepo1-path=/pgbackrest\nrepo1-s3-bucket={bucket}\nrepo1-s3-endpoint=127.0.0.1\n"
        f"repo1-storage-port={server.https_port}\nrepo1-s3-uri-style=path\nrepo1-s3-region=us-east-1\n"
        f"repo1-s3-key={S3_ACCESS_KEY}\nrepo1-s3-key-secret={S3_SECRET_KEY}\n"
        f"repo1-storage-verify-tls=y\nrepo1-storage-ca-file={ca_file}\n"
    )


def _production(
    installation: binaries.Installation, wal_level: str, s3: S3Server | None = None
) -> Iterator[PhysicalProduction]:
    """Yields production archiving into a pgBackRest repository on local disk, or on `s3` (a new bucket)."""
    need(shutil.which("pgbackrest") is not None, "pgBackRest (dev/install-pgbackrest)")
    directory = Path(tempfile.mkdtemp(prefix="pgbv-pgbackrest-"))
    directory.chmod(0o755)
    config = directory / "pgbackrest.conf"
    try:
        cluster = TemporaryCluster(
            installation,
            tcp=True,
            settings={
                "wal_level": wal_level,
                "archive_mode": "on",
                "archive_command": f"'pgbackrest --config={config} --stanza={STANZA} archive-push %p'",
                "max_wal_senders": "10",
                "max_replication_slots": "10",
                "full_page_writes": "on",
                "max_prepared_transactions": "3",
            },
        )
        assert cluster.user is not None, "the tests run as root: production runs as postgres"
        for name in ("repo", "log", "lock", "spool"):
            (directory / name).mkdir(mode=0o750)
            shutil.chown(directory / name, cluster.user.uid, cluster.user.gid)
        with cluster:
            config.write_text(
                "[global]\n"
                + (s3_repository(s3, directory) if s3 else f"repo1-path={directory / 'repo'}\n")
                + f"log-path={directory / 'log'}\nlock-path={directory / 'lock'}\n"
                f"spool-path={directory / 'spool'}\nlog-level-file=off\nstart-fast=y\nrepo1-retention-full=9\n"
                "compress-type=none\n"  # a damaged file then shows as pgBackRest's checksum mismatch
                f"[{STANZA}]\npg1-path={cluster.data_dir}\npg1-socket-path={cluster.socket_dir}\n"
                f"pg1-port={cluster.port}\npg1-user=postgres\n"
            )
            if s3 is None:
                config.chmod(0o644)
            else:  # it holds the S3 secret key: archive_command (as postgres) and the agent (root) read it
                shutil.chown(config, cluster.user.uid, cluster.user.gid)
                config.chmod(0o600)
            production = PhysicalProduction(cluster, directory, PhysicalConfig(stanza=STANZA, config=config))
            production.execute(SCHEMA)
            production.pgbackrest("stanza-create", "--log-level-console=off")
            yield production
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def logical_production(postgres_installation: binaries.Installation) -> Iterator[PhysicalProduction]:
    """Production with wal_level = logical (the exact instant), archiving into its own pgBackRest repository."""
    yield from _production(postgres_installation, "logical")


@pytest.fixture
def s3_production(postgres_installation: binaries.Installation, s3_server: S3Server) -> Iterator[PhysicalProduction]:
    """Production with wal_level = logical archiving into a pgBackRest repository on S3 over TLS."""
    yield from _production(postgres_installation, "logical", s3_server)


@pytest.fixture
def replica_production(postgres_installation: binaries.Installation) -> Iterator[PhysicalProduction]:
    """Production with wal_level = replica (a restore point, not exact)."""
    yield from _production(postgres_installation, "replica")


def content_sums(connect: psycopg.Connection[tuple[object, ...]], snapshot_id: str | None = None) -> dict[str, int]:
    """Returns sum(hashtextextended(row::text, 0)) of every test table, in `snapshot_id` when given."""
    sums = {}
    connect.execute("SET TimeZone = 'UTC'")
    connect.execute("SET DateStyle = 'ISO, YMD'")
    with connect.transaction():
        if snapshot_id is not None:
            connect.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            connect.execute(psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}").format(psycopg.sql.Literal(snapshot_id)))
        for table in ("t", "u", "still"):
            statement = psycopg.sql.SQL("SELECT coalesce(sum(hashtextextended(x::text, 0)), 0) FROM {} x")
            row = connect.execute(statement.format(psycopg.sql.Identifier(table))).fetchone()
            sums[table] = int(row[0]) if row else 0  # type: ignore[call-overload]
    return sums


PAGE = 8192  # PostgreSQL's block size


class DamagingEngine:
    """pgBackRest, then one B-tree leaf page of the restored copy damaged before the server starts (as a
    torn write or a bad disk would): its first two keys swapped."""

    name = "pgBackRest with a damaged index page"

    def __init__(self, engine: Engine, relation: str) -> None:
        self.engine = engine
        self.relation = relation

    def inventory(self) -> Inventory:
        return self.engine.inventory()

    def restore(self, backup: PhysicalBackup, target: RecoveryTarget, data_dir: Path) -> None:
        self.engine.restore(backup, target, data_dir)
        swap_first_two_keys(data_dir / self.relation, block=1)

    def fetch_wal(self, segment: str, destination: Path) -> bool:
        return self.engine.fetch_wal(segment, destination)


def swap_first_two_keys(path: Path, block: int) -> None:
    """Swaps the 4-byte keys of the first two items of a B-tree leaf page (the rightmost leaf: no high key)."""
    with path.open("r+b") as file:
        file.seek(block * PAGE)
        page = bytearray(file.read(PAGE))
        offsets = []
        for item in (0, 1):
            (line_pointer,) = struct.unpack_from("<I", page, 24 + 4 * item)
            offsets.append((line_pointer & 0x7FFF) + 8)  # the key follows the 8-byte index tuple header
        first, second = bytes(page[offsets[0] : offsets[0] + 4]), bytes(page[offsets[1] : offsets[1] + 4])
        page[offsets[0] : offsets[0] + 4], page[offsets[1] : offsets[1] + 4] = second, first
        file.seek(block * PAGE)
        file.write(page)
