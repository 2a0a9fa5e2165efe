"""A physical backup restored into the local sandbox and recovered to a target, then promoted.

The restored data directory is production's, and so is its configuration: untrusted input. It is never
read: `postgresql.conf` and `postgresql.auto.conf` are replaced by the sandbox's own settings (archive_mode
off, no archive_command, no preloaded libraries, no SSL, no TCP: a unix socket in the sandbox's private
directory, its own port), `pg_hba.conf` by local-only trust, `pg_ident.conf` emptied; `include` lines,
`data_directory`, `hba_file` and production's `restore_command` go with them. Recovery reads only WAL that
the agent fetched from the archive into `pg_wal` before the server starts (its `restore_command` is `false`):
the server, run as the sandbox account in the network jail (`postgres/throwaway`, as the logical sandbox),
never reaches the backup repository. Hot standby is off, so the server accepts connections only once
recovery ended and it promoted; what recovery reached is then read back and checked.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from verifier.config import PostgresConfig, VerifyConfig
from verifier.errors import BinaryMissing, SandboxError, VerifierError, one_line
from verifier.physical.engine import Engine, PhysicalBackup, PhysicalError, RecoveryTarget
from verifier.physical.wal import lsn_value, segment_name, segment_number, segments_between
from verifier.postgres import binaries
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import DatabaseError
from verifier.postgres.recovery import RecoveryState, recovery_state
from verifier.postgres.throwaway.cluster import TemporaryCluster, remove_orphans
from verifier.sandbox.account import check_run_as
from verifier.sandbox.reach import require_reach
from verifier.units import mebibytes

SERVER_PROGRAMS = ("postgres", "pg_amcheck")
_STOPPED = re.compile(r'recovery stopping (?:before|after) WAL location \(LSN\) "([0-9A-F]+/[0-9A-F]+)"')
_STOPPED_AT_POINT = re.compile(r'recovery stopping at restore point "([^"]+)"')
_ENDED_EARLY = "recovery ended before configured recovery target was reached"


def sandbox_settings(target: RecoveryTarget, prepared_transactions: int = 0) -> dict[str, str]:
    """Returns the restored server's whole configuration beyond the throwaway cluster's own: recovery to
    `target` from the WAL in pg_wal only, then promotion; nothing of production's but room for as many
    prepared transactions as it allowed (recovery replays their PREPAREs)."""
    settings = {
        "wal_level": "replica",
        "hot_standby": "off",
        "archive_mode": "off",
        "archive_command": "''",
        "restore_command": "'false'",  # not found, always: recovery reads the segments fetched into pg_wal
        "recovery_target_timeline": "'current'",
        "shared_preload_libraries": "''",
        "ssl": "off",
        "max_replication_slots": "0",
        "max_prepared_transactions": str(prepared_transactions),
    }
    if target.kind == "lsn":
        settings |= {"recovery_target_lsn": f"'{target.value}'", "recovery_target_inclusive": "off"}
    elif target.kind == "name":
        settings["recovery_target_name"] = "'" + str(target.value).replace("'", "''") + "'"
    elif target.kind == "immediate":
        settings["recovery_target"] = "'immediate'"
    if target.kind != "latest":
        settings["recovery_target_action"] = "'promote'"
    return settings


def replace_configuration(data_dir: Path) -> None:
    """Replaces the restored configuration files (untrusted) with empty ones and local-only trust, and
    asks for targeted archive recovery (`recovery.signal`, never `standby.signal`)."""
    (data_dir / "postgresql.conf").write_text("# replaced by pg-backup-verifier: production's is not read\n")
    (data_dir / "postgresql.auto.conf").write_text("")
    (data_dir / "pg_hba.conf").write_text("local all all trust\n")
    (data_dir / "pg_ident.conf").write_text("")
    (data_dir / "standby.signal").unlink(missing_ok=True)
    (data_dir / "recovery.signal").write_text("")


def segments_needed(backup: PhysicalBackup, last: str, segment_bytes: int) -> list[str]:
    """Returns the WAL segments recovery of `backup` reads up to segment `last` (the target's), in order."""
    if segment_number(last, segment_bytes) < segment_number(backup.wal_stop, segment_bytes):
        last = backup.wal_stop
    return list(segments_between(backup.wal_start, last, segment_bytes))


def segment_start(segment: str, segment_bytes: int) -> str:
    """Returns the LSN where `segment` begins ('0/5000000')."""
    position = segment_number(segment, segment_bytes) * segment_bytes
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def fetch_wal(engine: Engine, backup: PhysicalBackup, last: str, segment_bytes: int, data_dir: Path) -> list[str]:
    """Copies the segments recovery needs (and the one after `last` when archived: a record can cross into
    it) into `data_dir/pg_wal`. Returns the segments copied.

    Raises PhysicalError naming the first segment the archive lacks and where recovery would stop.
    """
    wanted = segments_needed(backup, last, segment_bytes)
    for segment in wanted:
        if engine.fetch_wal(segment, data_dir / "pg_wal" / segment):
            continue
        if segment_number(segment, segment_bytes) <= segment_number(backup.wal_stop, segment_bytes):
            raise PhysicalError(
                f"WAL segment {segment} is missing from the archive: backup {backup.label} cannot even reach a "
                f"consistent state without it"
            )
        raise PhysicalError(
            f"WAL segment {segment} is missing from the archive: recovery of backup {backup.label} would stop "
            f"at LSN {segment_start(segment, segment_bytes)}, before its target (segments {wanted[0]}…{wanted[-1]} "
            f"needed)"
        )
    following = segment_name(
        int(last[:8], 16), (segment_number(last, segment_bytes) + 1) * segment_bytes, segment_bytes
    )
    if engine.fetch_wal(following, data_dir / "pg_wal" / following):
        wanted.append(following)
    return wanted


@dataclass
class RestoredCluster:
    """The restored, recovered and promoted copy in its sandbox: `connect(dbname)` enters it as production's
    bootstrap superuser. `restore_seconds` (pgBackRest's restore and the WAL fetch) and `recovery_seconds`
    (the server's start to its promotion) are measured; `stopped_at` is what recovery reported."""

    cluster: TemporaryCluster
    backup: PhysicalBackup
    target: RecoveryTarget
    segments: list[str]
    state: RecoveryState
    stopped_at: str
    restore_seconds: float
    recovery_seconds: float

    kind = "physical"

    def connect(self, dbname: str = "postgres") -> Connection:
        """Returns an autocommit connection to `dbname` in the restored copy. Raises DatabaseError."""
        return self.cluster.connect(dbname)

    @property
    def socket_dir(self) -> Path:
        """Returns the directory holding the restored server's unix socket."""
        return self.cluster.socket_dir

    def describe(self) -> str:
        """Returns e.g. 'backup 20261207-122737F restored to LSN 0/41203C0 (recovery stopped before 0/41203C0)'."""
        return f"backup {self.backup.label} restored to {self.target.describe()} ({self.stopped_at})"


@contextlib.contextmanager
def restored_cluster(
    engine: Engine,
    backup: PhysicalBackup,
    target: RecoveryTarget,
    *,
    last_segment: str,
    segment_bytes: int,
    superuser: str,
    major: int,
    verify: VerifyConfig,
    postgres: PostgresConfig,
    recovery_timeout: float,
    prepared_transactions: int = 0,
    at_least: str | None = None,
) -> Iterator[RestoredCluster]:
    """Yields `backup` restored, recovered to `target` (WAL up to segment `last_segment`) and promoted in a
    sandbox of PostgreSQL `major`, entered as `superuser`; removes it on exit, whatever happened. With
    `at_least` (an LSN), recovery must have replayed at least that far (`latest`: past the instant).

    Raises PhysicalError (a damaged backup file, a missing WAL segment, recovery short of its target),
    SandboxError, BinaryMissing, EngineFailed.
    """
    installation = binaries.choose(
        SERVER_PROGRAMS,
        configured_dir=postgres.bin_dir,
        minimum_major=major,
        prefer_major=major,
        purpose="the physical sandbox",
    )
    if installation.major != major:
        raise BinaryMissing(
            f"a physical backup of PostgreSQL {major} starts only on PostgreSQL {major}; found {installation.major} "
            f"({installation.bin_dir}). {binaries.how_to_install(SERVER_PROGRAMS, major)}"
        )
    check_run_as(verify.run_as, allow_privileged=verify.allow_privileged_run_as)
    fetched: list[str] = []
    timings: dict[str, float] = {}

    def populate(data_dir: Path) -> None:
        started = time.monotonic()
        engine.restore(backup, target, data_dir)
        fetched.extend(fetch_wal(engine, backup, last_segment, segment_bytes, data_dir))
        replace_configuration(data_dir)
        timings["restore"] = time.monotonic() - started

    cluster = TemporaryCluster(
        installation,
        run_as=verify.run_as,
        settings=sandbox_settings(target, prepared_transactions),
        base_dir=verify.temp_dir,
        isolated=not verify.allow_network,
        populate=populate,
        superuser=superuser,
        start_timeout=recovery_timeout,
    )
    require_reach(installation, verify.temp_dir, cluster.user)
    remove_orphans(verify.temp_dir)  # a sandbox whose agent was killed (SIGKILL, OOM): no finally ran
    free = shutil.disk_usage(verify.temp_dir or tempfile.gettempdir()).free
    if free < backup.size_bytes:
        raise SandboxError(
            f"the physical sandbox would run out of disk space: {mebibytes(free)} free in "
            f"{verify.temp_dir or tempfile.gettempdir()}, backup {backup.label} restores to "
            f"{mebibytes(backup.size_bytes)}; point verify.temp_dir at a larger disk"
        )
    started = time.monotonic()
    try:
        try:
            cluster.start()
        except SandboxError as error:
            raise _recovery_error(error, target, fetched) from None
        restore_seconds = timings.get("restore", 0.0)
        recovery_seconds = time.monotonic() - started - restore_seconds  # the server's start to its promotion
        restored = _checked(cluster, backup, target, fetched, restore_seconds, recovery_seconds)
        replayed = restored.state.replayed
        if at_least is not None and (replayed is None or lsn_value(replayed) < lsn_value(at_least)):
            raise PhysicalError(f"recovery to {target.describe()} ended at LSN {replayed}, before {at_least}")
        yield restored
    finally:
        cluster.stop()


def _recovery_error(error: SandboxError, target: RecoveryTarget, fetched: list[str]) -> VerifierError:
    """Returns the error for a restored server that did not come up: recovery short of its target named,
    with the WAL segments it had."""
    if _ENDED_EARLY in str(error):
        read = f"{fetched[0]}…{fetched[-1]}" if fetched else "none"
        return PhysicalError(
            f"recovery ended before its target, {target.describe()}: the archived WAL (segments {read}) "
            f"ends or breaks off first"
        )
    return error


def _checked(
    cluster: TemporaryCluster,
    backup: PhysicalBackup,
    target: RecoveryTarget,
    fetched: list[str],
    restore_seconds: float,
    recovery_seconds: float,
) -> RestoredCluster:
    """Returns the restored cluster once recovery is shown to have promoted at its target. Raises PhysicalError."""
    try:
        with cluster.connect() as connection:
            state = recovery_state(connection)
    except DatabaseError as error:
        raise PhysicalError(f"the restored cluster does not answer: {one_line(error)}") from None
    log = cluster.log_file.read_text(errors="replace")
    stopped = _STOPPED.findall(log)
    at_point = _STOPPED_AT_POINT.findall(log)
    if state.in_recovery:
        raise PhysicalError(f"the restored cluster is still in recovery after reaching {target.describe()}")
    if target.kind == "lsn":
        assert target.value is not None
        reached = (stopped and lsn_value(stopped[-1]) >= lsn_value(target.value)) or (
            state.replayed is not None and lsn_value(state.replayed) >= lsn_value(target.value)
        )
        if not reached:
            replayed = stopped[-1] if stopped else state.replayed
            raise PhysicalError(f"recovery ended at LSN {replayed}, before its target {target.describe()}")
        how = f"recovery stopped before {stopped[-1]}" if stopped else f"replayed to {state.replayed}"
    elif target.kind == "name":
        if target.value not in at_point:
            raise PhysicalError(f"recovery never reached {target.describe()} (replayed to {state.replayed})")
        how = f"recovery stopped at restore point {target.value}, LSN {state.replayed}"
    else:
        how = f"replayed to {state.replayed}"
    return RestoredCluster(cluster, backup, target, fetched, state, how, restore_seconds, recovery_seconds)
