"""Large objects and materialized views: what row counts and table checksums never see.

Large objects: counted in `pg_largeobject_metadata` (readable by every role) and hashed with `lo_get`,
which needs SELECT on each object; `pg_largeobject` itself is for superusers only. An application role
that may not read an object gets it listed as unreadable instead of a failed dump.

Materialized views: pg_dump saves their query, not their rows, and pg_restore runs REFRESH. What the
restored view must hold is therefore what its query returns in the dump's snapshot, which may differ
from production's stored rows (refreshed at some earlier time).

Reads that may fail (an object over lo_get's 1 GB, a query the role may not run) run in a savepoint,
so that the snapshot's transaction survives them.
"""

from __future__ import annotations

import re
import time

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from verifier.errors import one_line
from verifier.postgres import catalog
from verifier.postgres.evidence import constraints
from verifier.postgres.evidence.section import Section


class LargeObjects(BaseModel):
    """The large objects in the dump's snapshot: how many, and a checksum of those the dumping role
    may read (sum mod 2^64 of a 64-bit md5 slice of each object's oid and contents' md5), with each
    object's hash when there are few enough to name a missing or changed one."""

    count: int
    hashed: int  # readable by the dumping role, so hashed
    checksum: str  # 16 hex digits
    unreadable: list[int] = Field(default_factory=list)  # oids the role may not read (the first 100)
    unreadable_count: int = 0
    hashes: dict[str, str] | None = None  # oid → 16 hex digits; None: too many to keep
    error: str | None = None  # why the contents could not be hashed (only `count` holds)
    seconds: float = 0.0


class MaterializedView(BaseModel):
    """A materialized view in the dump's snapshot: populated or not, and the rows its query returns
    there (what the restore's REFRESH must produce; None when it could not be counted, `note` says why).
    `volatile`: its query reads the clock or randomness, so a restored count may differ."""

    schema_name: str = Field(alias="schema")
    name: str
    populated: bool
    rows: int | None = None
    volatile: bool = False
    note: str = ""

    model_config = ConfigDict(populate_by_name=True)


class SnapshotObjects(BaseModel):
    """What the row counts do not see, read in the dump's snapshot: large objects, materialized views,
    and every constraint with whether it is validated (the key as the schema fingerprint names it)."""

    large_objects: LargeObjects
    materialized_views: list[MaterializedView] = Field(default_factory=list)
    constraints: dict[str, bool] = Field(default_factory=dict)
    seconds: float = 0.0


HASHES_KEPT = 10_000  # up to this many large objects, each one's hash is kept to name a missing one
UNREADABLE_LISTED = 100

# Whether the current role may read a large object (PostgreSQL 15 has no has_largeobject_privilege).
_READABLE = """(
    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
    OR pg_catalog.current_setting('lo_compat_privileges')::boolean
    OR pg_catalog.pg_has_role(m.lomowner, 'USAGE')
    OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(m.lomacl) a
               WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE'))))"""
_LARGE_OBJECTS_SQL = f"""
SELECT count(*), count(*) FILTER (WHERE NOT {_READABLE}),
       (array_agg(m.oid::bigint ORDER BY m.oid) FILTER (WHERE NOT {_READABLE}))[1:{UNREADABLE_LISTED}]
FROM pg_catalog.pg_largeobject_metadata m
"""
_OBJECT_HASH = "left(pg_catalog.md5(m.oid::text || ':' || pg_catalog.md5(pg_catalog.lo_get(m.oid))), 16)"
_HASHES_SQL = f"""
SELECT m.oid::bigint, {_OBJECT_HASH} FROM pg_catalog.pg_largeobject_metadata m
WHERE {_READABLE} AND NOT m.oid::bigint = ANY(%s) ORDER BY m.oid
"""
_CHECKSUM_SQL = f"""
SELECT count(*), sum(('x' || {_OBJECT_HASH})::bit(64)::bigint) FROM pg_catalog.pg_largeobject_metadata m
WHERE {_READABLE} AND NOT m.oid::bigint = ANY(%s)
"""

_MATERIALIZED_VIEWS_SQL = """
SELECT n.nspname, c.relname, c.relispopulated, pg_catalog.pg_get_viewdef(c.oid),
       EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r
               JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                    AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
               JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
               WHERE r.ev_class = c.oid AND p.provolatile <> 'i')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY 1, 2
"""
# Built-in functions are pinned (pg_depend does not record them): the clock and randomness by name.
_VOLATILE_TEXT = re.compile(
    r"\b(now|random|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|gen_random_uuid)\s*\(|"
    r"\b(CURRENT_DATE|CURRENT_TIME|CURRENT_TIMESTAMP|LOCALTIME|LOCALTIMESTAMP)\b",
    re.IGNORECASE,
)


SECTION: Section[SnapshotObjects] = Section("objects", SnapshotObjects)


def read_in_snapshot(connection: catalog.Connection) -> SnapshotObjects:
    """Returns the large objects, materialized views (each populated one's query counted) and
    constraints as the connection's transaction sees them (on production: inside the dump's
    snapshot). Raises psycopg.Error only when a catalog cannot be read."""
    started = time.monotonic()
    large = read_large_objects(connection, keep_hashes=None)
    views = []
    for schema, name, populated, definition, volatile_function in connection.execute(_MATERIALIZED_VIEWS_SQL):
        view = MaterializedView(
            schema=str(schema),
            name=str(name),
            populated=bool(populated),
            volatile=bool(volatile_function) or _VOLATILE_TEXT.search(str(definition)) is not None,
        )
        if view.populated:
            view.rows, view.note = _count_query(connection, str(definition))
        views.append(view)
    return SnapshotObjects(
        large_objects=large,
        materialized_views=views,
        constraints=constraints.read_constraints(connection),
        seconds=round(time.monotonic() - started, 3),
    )


def read_large_objects(
    connection: catalog.Connection, *, keep_hashes: bool | None, excluding: list[int] | None = None
) -> LargeObjects:
    """Returns the large objects' count and the checksum of those readable (minus `excluding`), with
    each one's hash when `keep_hashes` (None: when at most HASHES_KEPT). A failed hashing is recorded
    in `error`. Raises psycopg.Error when the catalog cannot be read."""
    started = time.monotonic()
    row = connection.execute(_LARGE_OBJECTS_SQL).fetchone()
    assert row is not None
    count, unreadable_count = int(row[0]), int(row[1])  # type: ignore[call-overload]
    unreadable = [int(oid) for oid in row[2] or []]  # type: ignore[attr-defined]
    skipped = excluding or []
    keep = keep_hashes if keep_hashes is not None else count - unreadable_count <= HASHES_KEPT
    hashes: dict[str, str] | None = None
    hashed, total, error = 0, 0, None
    try:
        with connection.transaction():  # a savepoint inside the snapshot's transaction
            if keep:
                rows = connection.execute(_HASHES_SQL, (skipped,)).fetchall()
                hashes = {str(oid): str(digest) for oid, digest in rows}
                hashed, total = len(hashes), sum(int(digest, 16) for digest in hashes.values())
            else:
                summed = connection.execute(_CHECKSUM_SQL, (skipped,)).fetchone()
                assert summed is not None
                hashed, total = int(summed[0]), int(summed[1] or 0)  # type: ignore[call-overload]
    except psycopg.Error as failure:
        error = one_line(failure)
    return LargeObjects(
        count=count,
        hashed=hashed,
        checksum=f"{total % 2**64:016x}",
        unreadable=unreadable,
        unreadable_count=unreadable_count,
        hashes=hashes,
        error=error,
        seconds=round(time.monotonic() - started, 3),
    )


def read_restored_views(connection: catalog.Connection) -> dict[str, MaterializedView]:
    """Returns the restored copy's materialized views by qualified name, each populated one counted.
    Raises psycopg.Error."""
    views = {}
    for schema, name, populated, _, _ in connection.execute(_MATERIALIZED_VIEWS_SQL).fetchall():
        view = MaterializedView(schema=str(schema), name=str(name), populated=bool(populated))
        if view.populated:
            statement = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(view.schema_name), sql.Identifier(view.name)
            )
            counted = connection.execute(statement).fetchone()
            view.rows = int(counted[0]) if counted else 0  # type: ignore[call-overload]
        views[catalog.quote_name(view.schema_name, view.name)] = view
    return views


def compare_large_objects(expected: LargeObjects, restored: LargeObjects) -> tuple[list[str], list[str]]:
    """Returns (problems, notes): large objects missing, extra or changed after the restore; and what
    could not be compared. Pure."""
    problems: list[str] = []
    notes: list[str] = []
    if expected.unreadable_count:
        listed = ", ".join(str(oid) for oid in expected.unreadable[:10])
        more = f" and {expected.unreadable_count - 10:,} more" if expected.unreadable_count > 10 else ""
        notes.append(
            f"{expected.unreadable_count:,} large object(s) not readable by the dumping role, counted but not "
            f"hashed: {listed}{more}"
        )
    if expected.count != restored.count:
        problems.append(f"{restored.count:,} large objects restored, {expected.count:,} in the snapshot")
    if expected.error is not None or restored.error is not None:
        side = "in the snapshot" if expected.error is not None else "in the restored copy"
        notes.append(f"large objects' contents not compared: hashing failed {side}: {expected.error or restored.error}")
        return problems, notes
    if restored.unreadable_count:  # a server sandbox's role that is no superuser: a count, no contents
        notes.append(f"{restored.unreadable_count:,} restored large object(s) not readable by the sandbox's role")
    unread = {str(oid) for oid in restored.unreadable}
    if expected.hashes is not None and restored.hashes is not None:
        lines = [
            f"large object {oid} is missing after the restore"
            for oid in expected.hashes
            if oid not in restored.hashes and oid not in unread
        ]
        lines += [
            f"large object {oid} differs from the snapshot"
            for oid, digest in expected.hashes.items()
            if oid in restored.hashes and restored.hashes[oid] != digest
        ]
        if expected.unreadable_count == len(expected.unreadable):  # else the unlisted unreadable ones look extra
            lines += [
                f"large object {oid} was not in the snapshot" for oid in restored.hashes if oid not in expected.hashes
            ]
        problems += lines[:20] + ([f"… and {len(lines) - 20:,} more large objects"] if len(lines) > 20 else [])
    elif expected.unreadable_count > len(expected.unreadable) or restored.unreadable_count:
        notes.append("large objects' contents not compared: some could not be read on one side")
    elif (expected.hashed, expected.checksum) != (restored.hashed, restored.checksum):
        problems.append(f"the contents of the {expected.hashed:,} large objects differ from the snapshot")
    return problems, notes


def compare_views(
    expected: list[MaterializedView], restored: dict[str, MaterializedView]
) -> tuple[list[str], list[str]]:
    """Returns (problems, notes): views missing or unpopulated after the restore, or holding another
    number of rows than their query returned in the snapshot; and what is named but not the verdict. Pure."""
    problems: list[str] = []
    notes: list[str] = []
    for view in expected:
        name = catalog.quote_name(view.schema_name, view.name)
        got = restored.get(name)
        if got is None:
            problems.append(f"materialized view {name} is missing after the restore")
        elif not view.populated:
            notes.append(f"materialized view {name} was not populated in production")
        elif not got.populated:
            problems.append(f"materialized view {name} is not populated after the restore (it was in production)")
        elif view.rows is None:
            notes.append(f"materialized view {name}: rows not compared ({view.note})")
        elif got.rows != view.rows:
            line = f"materialized view {name} holds {got.rows:,} rows, its query returned {view.rows:,} in the snapshot"
            if view.volatile:
                notes.append(f"{line} (its query reads the clock or randomness: not the verdict)")
            else:
                problems.append(line)
    return problems, notes


def _count_query(connection: catalog.Connection, definition: str) -> tuple[int | None, str]:
    """Returns (rows the view's query returns, "") or (None, why not), in a savepoint."""
    query = sql.SQL("SELECT count(*) FROM ({}) AS q").format(sql.SQL(definition.strip().rstrip(";")))
    try:
        with connection.transaction():
            row = connection.execute(query).fetchone()
    except psycopg.Error as error:
        return None, f"its query failed in the snapshot: {one_line(error)}"
    return (int(row[0]) if row else 0), ""  # type: ignore[call-overload]


_OVER_FOREIGN_TABLES_SQL = """
SELECT v.relkind = 'm', n.nspname, v.relname, string_agg(DISTINCT s.srvname, ', ' ORDER BY s.srvname)
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
JOIN pg_catalog.pg_foreign_table t ON t.ftrelid = d.refobjid
JOIN pg_catalog.pg_foreign_server s ON s.oid = t.ftserver
GROUP BY 1, 2, 3 ORDER BY 2, 3
"""


def views_over_foreign_tables(connection: catalog.Connection) -> list[tuple[bool, str, str, str]]:
    """Returns (materialized?, schema, name, foreign servers) of each view or materialized view that reads
    a foreign table directly: what a sandbox without network cannot run. Raises psycopg.Error."""
    return [
        (bool(materialized), str(schema), str(name), str(servers))
        for materialized, schema, name, servers in connection.execute(_OVER_FOREIGN_TABLES_SQL).fetchall()
    ]


def find_materialized_view(connection: catalog.Connection, schema: str | None, name: str) -> tuple[str, str] | None:
    """Returns (schema, name) of the materialized view `name` (in `schema` when given; else the first by
    schema), or None. Raises psycopg.Error."""
    row = connection.execute(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'm' AND c.relname = %s AND (%s::text IS NULL OR n.nspname = %s) ORDER BY 1 LIMIT 1",
        (name, schema, schema),
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else None
