"""The instant a physical backup is restored to, taken on production, and the wait for its WAL.

**exact** (`wal_level = logical`): a temporary logical replication slot created on a `replication=database`
connection exports a snapshot that is, by construction, the database as of the slot's `consistent_point`
LSN (logical replication's initial table copy relies on it). Recovery to that LSN (exclusive: everything
before it) gives the same database; evidence read in the snapshot must equal the restored copy's exactly.
The slot is temporary: gone with its session, it holds no WAL after the proof. Its snapshot stays valid while
the replication session runs no other command, so the session is held open for the `with` block.

**restore-point** (`wal_level = replica`): no snapshot at an LSN exists. A `REPEATABLE READ` snapshot is
exported, then `pg_create_restore_point(name)` marks the WAL; a transaction committed in between is in one
and not the other, so the comparison is not exact (the instant says why).

**latest**: recovery to the end of the archive; a snapshot is exported as for a restore point, not exact.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from verifier.errors import VerifierError, one_line
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import ConnectionParams

SLOT_PREFIX = "pgbv_instant_"
ARCHIVE_POLL_SECONDS = 0.2


class InstantUnavailable(VerifierError):
    """The instant cannot be taken on production (its settings, the role, the slots); the message says
    what to change."""


class ArchiveLagging(VerifierError):
    """The WAL segment holding the instant was not archived in time; the message names it."""


@dataclass(frozen=True)
class Instant:
    """A point in production's WAL that a physical backup is restored to.

    `lsn`: recovery stops before it (target exclusive); `segment`: the WAL file holding it; `snapshot_id`:
    the exported snapshot evidence is read in (`SET TRANSACTION SNAPSHOT`), None when there is none;
    `exact`: the snapshot is, by construction, the database at `lsn` (else `not_exact_because` says why);
    `restore_point`: the name recovery targets for `how == "restore-point"`.
    """

    how: str  # exact | restore-point | latest
    lsn: str
    segment: str
    timeline: int
    snapshot_id: str | None
    exact: bool
    not_exact_because: str
    restore_point: str | None
    wal_segment_bytes: int
    prepared_transactions: int  # production's max_prepared_transactions: recovery replays its PREPAREs
    superuser: str  # the bootstrap superuser (OID 10): whom the restored copy is entered as
    server_version_num: int
    taken_at: datetime

    @property
    def major(self) -> int:
        """Returns production's major version (15 for 150010)."""
        return self.server_version_num // 10000

    def describe(self) -> str:
        """Returns e.g. 'LSN 0/41203C0 (exact)' or 'restore point pgbv_… at LSN 0/5000090 (not exact: …)'."""
        where = f"restore point {self.restore_point} at LSN {self.lsn}" if self.restore_point else f"LSN {self.lsn}"
        return f"{where} ({'exact' if self.exact else 'not exact: ' + self.not_exact_because})"


_FACTS_SQL = """
SELECT current_setting('wal_level'), current_setting('server_version_num')::int,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
       (SELECT rolname FROM pg_roles WHERE oid = 10),
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
       (SELECT timeline_id FROM pg_control_checkpoint()),
       current_setting('max_prepared_transactions')::int
"""


@dataclass(frozen=True)
class _Facts:
    wal_level: str
    version_num: int
    segment_bytes: int
    superuser: str
    may_replicate: bool
    timeline: int
    prepared_transactions: int


def _facts(connection: Connection) -> _Facts:
    row = connection.execute(_FACTS_SQL).fetchone()
    assert row is not None
    wal_level, version, segment_bytes, superuser, may_replicate, timeline, prepared = row
    return _Facts(
        str(wal_level),
        int(version),  # type: ignore[call-overload]
        int(segment_bytes),  # type: ignore[call-overload]
        str(superuser),
        bool(may_replicate),
        int(timeline),  # type: ignore[call-overload]
        int(prepared),  # type: ignore[call-overload]
    )


def _segment(connection: Connection, lsn: str) -> str:
    row = connection.execute("SELECT pg_walfile_name(%s::pg_lsn)", (lsn,)).fetchone()
    assert row is not None
    return str(row[0])


@contextlib.contextmanager
def exact_instant(params: ConnectionParams, wait_seconds: float = 300.0) -> Iterator[Instant]:
    """Yields the exact instant: a temporary logical slot's consistent point and exported snapshot, held
    while the `with` block reads evidence in the snapshot; the slot's session ends on exit. The slot is
    consistent only once every transaction running when it began has ended (a prepared one included):
    after `wait_seconds` the attempt is cancelled and those transactions are named.

    Raises InstantUnavailable (wal_level not logical, a role without REPLICATION, no free slot, a server
    that refuses the slot, transactions still open), SourceUnreachable.
    """
    with params.connect() as connection:
        facts = _facts(connection)
        if facts.wal_level != "logical":
            raise InstantUnavailable(
                f"an exact instant needs wal_level = logical on production (it is {facts.wal_level}): "
                f"set it (a restart) or use physical.target: restore-point"
            )
        if not facts.may_replicate:
            raise InstantUnavailable(
                f"an exact instant needs the REPLICATION attribute: ALTER ROLE {params.user or 'the agent'} REPLICATION"
            )
        name = SLOT_PREFIX + secrets.token_hex(6)
        try:
            replication = psycopg.connect(**params.psycopg_kwargs(), replication="database", autocommit=True)  # type: ignore[arg-type]
        except psycopg.OperationalError as error:
            raise InstantUnavailable(
                f"a replication connection to {params.label} was refused: {one_line(error)}"
            ) from None
        with replication:
            waited = threading.Event()  # set before the cancel is sent: the statement may fail before it returns

            def give_up() -> None:
                waited.set()
                replication.cancel_safe()

            cancel = threading.Timer(wait_seconds, give_up)
            cancel.start()
            try:
                consistent_point, snapshot_id = _create_slot(replication, name, facts.version_num)
            except InstantUnavailable:
                if not waited.is_set():
                    raise
                raise InstantUnavailable(
                    f"the exact instant waited {wait_seconds:.0f}s for transactions open when it began to end: "
                    f"{_open_transactions(connection)}; end them or raise physical.instant_wait"
                ) from None
            finally:
                cancel.cancel()
            yield Instant(
                how="exact",
                lsn=consistent_point,
                segment=_segment(connection, consistent_point),
                timeline=facts.timeline,
                snapshot_id=snapshot_id,
                exact=True,
                not_exact_because="",
                restore_point=None,
                wal_segment_bytes=facts.segment_bytes,
                prepared_transactions=facts.prepared_transactions,
                superuser=facts.superuser,
                server_version_num=facts.version_num,
                taken_at=datetime.now(UTC),
            )


class SlotInstants:
    """Exact instants taken one at a time for a logical dump that runs in the slot's snapshot (see
    `dump_locks.import_locked_instant`): `take` ends the previous slot's session and creates a new slot;
    `close` (or leaving the `with` block) ends the last one. `last` is the last instant taken, kept after
    its slot is gone: the physical proof restores to its LSN later.

    A slot's snapshot is importable only while its replication session is open and idle, so the owner
    closes it once pg_dump and every reading session are done."""

    def __init__(self, wait_seconds: float = 300.0) -> None:
        self.wait_seconds = wait_seconds
        self.last: Instant | None = None
        self._held = contextlib.ExitStack()

    def take(self, params: ConnectionParams) -> Instant:
        """Ends the previous slot's session, creates a new slot on `params`' server and returns its instant
        (held until the next `take` or `close`). Raises InstantUnavailable, SourceUnreachable."""
        self.close()
        self.last = self._held.enter_context(exact_instant(params, self.wait_seconds))
        return self.last

    def close(self) -> None:
        """Ends the slot's session (the slot, temporary, goes with it); `last` stays."""
        self._held.close()

    def __enter__(self) -> SlotInstants:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_OPEN_SQL = """
SELECT 'prepared transaction ' || quote_literal(gid) || ' (since ' || to_char(prepared, 'HH24:MI:SS') || ')'
FROM pg_prepared_xacts
UNION ALL
SELECT 'pid ' || pid || ' (' || coalesce(usename, '?') || ', open since ' || to_char(xact_start, 'HH24:MI:SS') || ')'
FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
"""


def _open_transactions(connection: Connection) -> str:
    """Returns the transactions holding the instant back, named on one line (at most five)."""
    names = [str(name) for (name,) in connection.execute(_OPEN_SQL)]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(names[:5]) + more if names else "none left (they ended as it was cancelled)"


def _create_slot(replication: Connection, name: str, version_num: int) -> tuple[str, str]:
    """Creates the temporary slot (simple query protocol: a walsender takes no extended query) and
    returns (consistent point, snapshot name). Raises InstantUnavailable."""
    options = "(SNAPSHOT 'export')" if version_num >= 150000 else "EXPORT_SNAPSHOT"
    result = replication.pgconn.exec_(f"CREATE_REPLICATION_SLOT {name} TEMPORARY LOGICAL pgoutput {options}".encode())
    if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        message = (result.error_message or b"").decode(errors="replace").strip()
        if "all replication slots are in use" in message:
            message += " (raise max_replication_slots)"
        raise InstantUnavailable(f"creating the instant's replication slot failed: {one_line(message)}")
    columns = [(result.fname(index) or b"").decode() for index in range(result.nfields)]
    values = {column: (result.get_value(0, index) or b"").decode() for index, column in enumerate(columns)}
    return values["consistent_point"], values["snapshot_name"]


@contextlib.contextmanager
def snapshot_instant(params: ConnectionParams, how: str) -> Iterator[Instant]:
    """Yields a not-exact instant: a `REPEATABLE READ` snapshot exported first, then (`how ==
    "restore-point"`) a named restore point created, or (`"latest"`) production's WAL position; the
    snapshot's transaction is held for the `with` block.

    Raises InstantUnavailable (no right to create a restore point), SourceUnreachable.
    """
    with params.connect() as snapshot_session, params.connect() as connection:
        facts = _facts(connection)
        snapshot_session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = snapshot_session.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot_id = str(row[0]) if row else None
        name = None
        try:
            if how == "restore-point":
                name = "pgbv_" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ_") + secrets.token_hex(3)
                row = connection.execute("SELECT pg_create_restore_point(%s)::text", (name,)).fetchone()
                because = (
                    "wal_level = replica has no snapshot at an LSN: a transaction committed between the snapshot "
                    "and the restore point is in one only"
                )
            else:
                row = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                because = "latest restores the end of the archive, which production has moved past"
        except psycopg.errors.InsufficientPrivilege as error:
            raise InstantUnavailable(f"creating a restore point on production: {one_line(error)}") from None
        assert row is not None
        lsn = str(row[0])
        yield Instant(
            how=how,
            lsn=lsn,
            segment=_segment(connection, lsn),
            timeline=facts.timeline,
            snapshot_id=snapshot_id,
            exact=False,
            not_exact_because=because,
            restore_point=name,
            wal_segment_bytes=facts.segment_bytes,
            prepared_transactions=facts.prepared_transactions,
            superuser=facts.superuser,
            server_version_num=facts.version_num,
            taken_at=datetime.now(UTC),
        )


def wait_until_archived(params: ConnectionParams, instant: Instant, timeout_seconds: float) -> float:
    """Switches production to a new WAL file when the instant's is still being written, and waits until
    the instant's segment is archived: its `.ready` gone from `archive_status` (a segment is marked
    `.ready` when it is complete, `.done` once `archive_command` succeeded).

    Returns the seconds waited. Raises ArchiveLagging naming the segment (and the archiver's last failure),
    SourceUnreachable.
    """
    started = time.monotonic()
    with params.connect() as connection:
        try:
            row = connection.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
            if row is not None and str(row[0]) <= instant.segment:
                connection.execute("SELECT pg_switch_wal()")
            status = _archive_status(connection, instant.segment)
        except psycopg.errors.InsufficientPrivilege as error:
            raise InstantUnavailable(
                f"waiting for the instant's WAL to be archived needs pg_switch_wal() and pg_ls_archive_statusdir(): "
                f"{one_line(error, first_line=True)} (GRANT pg_monitor, and EXECUTE on pg_switch_wal, to the agent)"
            ) from None
        while True:
            if instant.segment + ".ready" not in status:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_seconds:
                failed = connection.execute("SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver").fetchone()
                why = (
                    f"; archive_command last failed on {failed[0]} at {failed[1]:%H:%M:%S}"
                    if failed and failed[0]
                    else ""
                )
                raise ArchiveLagging(
                    f"WAL segment {instant.segment} holding the instant {instant.lsn} was not archived within "
                    f"{timeout_seconds:.0f}s{why}"
                )
            time.sleep(ARCHIVE_POLL_SECONDS)
            status = _archive_status(connection, segment=instant.segment)


def _archive_status(connection: Connection, segment: str) -> set[str]:
    """Returns the names in pg_wal/archive_status for `segment` ('….ready' until archived, then '….done')."""
    statement = "SELECT name FROM pg_ls_archive_statusdir() WHERE name LIKE %s"
    return {str(name) for (name,) in connection.execute(statement, (segment + ".%",))}
