"""Content checksums: an order-independent fingerprint of each table's rows, computed server-side in
one scan together with the row count.

Each row's record text form (its columns in name order, so a restore that reorders inherited columns
still matches) is hashed with PostgreSQL's own 64-bit `hashtextextended` (2.7x cheaper than md5, and
available on FIPS servers); the hashes are summed mod 2^64. Backups made before recorded md5 (the
first 64 bits of md5): they are recomputed the way they were taken. The hash finds accidental damage,
not a forger: the dump's sha256 in the manifest guards against that. A sum, never
XOR: two identical rows in a table without a key would cancel out under XOR. The text form depends
on session settings, so both sides pin them (`PINNED_SETTINGS`) inside their transaction, and the
search_path to production's own (recorded with each checksum): regclass values print alike on both
sides, and an index over a SQL function naming a table without its schema plans as it does for the
application (with only pg_catalog, planning the scan fails while the function is inlined).

`sample` hashes only the rows whose primary key falls into a hash bucket both sides agree on; a
table without a primary key is hashed whole. The count always covers every row.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from verifier.config import VerifyConfig
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage, identifier, note, quoted, tables_with_rows
from verifier.postgres.evidence.kind import Kind, RestoredCopy, named_first_in_a_problem
from verifier.postgres.evidence.section import Section
from verifier.progress import Meter


class TableChecksum(BaseModel):
    """A table's content checksum in the dump's snapshot: how it was hashed (`full`, `sample` by the
    primary key `key`, or `whole`), all its rows, the rows hashed, the sum of their 64-bit hashes
    mod 2^64 (hex), and the seconds the scan took on production."""

    schema_name: str = Field(alias="schema")
    table: str
    mode: Literal["full", "sample", "whole"]
    key: list[str] = Field(default_factory=list)
    sample_percent: float = 100.0
    bucket: Literal["modulo", "md5"] = "md5"  # sample: the key modulo 10000 (one integer column) or md5 of it
    search_path: str | None = None  # production's, set on both sides; None: pg_catalog (older manifests)
    row_hash: Literal["md5", "hashtext"] = "md5"  # each row's hash: hashtextextended from 0.2; md5 in older manifests
    rows: int
    hashed_rows: int
    checksum: str
    seconds: float

    model_config = ConfigDict(populate_by_name=True)


logger = logging.getLogger(__name__)
NAME = "contents"

Mode = Literal["full", "sample", "whole"]  # whole: sample asked, no primary key, so every row hashed
RowHash = Literal["md5", "hashtext"]
SAMPLE_BUCKETS = 65536

# Every setting that changes a value's text form, pinned identically on production and in the sandbox.
# the schemas the session's search_path resolves to ("$user" included): the sandbox connects as another user
_SEARCH_PATH_SQL = "SELECT string_agg(quote_ident(schema), ', ') FROM unnest(current_schemas(false)) AS schema"
LEGACY_SEARCH_PATH = "pg_catalog"  # what checksums were taken with before the search_path was recorded
PINNED_SETTINGS: dict[str, str] = {
    "extra_float_digits": "3",  # PostgreSQL 12+: shortest exact form; same digits on both sides
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "bytea_output": "hex",  # not client_encoding: the hash is of the server's text (connection.every_byte_readable)
    "lc_monetary": "C",  # money's text form follows the locale
}

_PRIMARY_KEYS_SQL = """
SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY k.ordinality),
       count(*) = 1 AND bool_and(a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary
GROUP BY n.nspname, c.relname
"""

# every table's columns in one catalog query (not one per table: a multi-tenant database has thousands)
_COLUMNS_SQL = """
SELECT n.nspname::text, c.relname::text, array_agg(a.attname::text ORDER BY a.attname COLLATE "C")
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY n.nspname, c.relname
"""


@dataclass(frozen=True)
class TableSpec:
    """How one table is hashed: `full`, `sample` by its primary key `key`, or `whole`. A sample's
    bucket is the key modulo 10000 for one integer column (cheap), else from md5 of the key."""

    mode: Mode
    key: tuple[str, ...] = ()
    sample_percent: float = 100.0
    bucket: Literal["modulo", "md5"] = "md5"
    row_hash: RowHash = "hashtext"


@dataclass(frozen=True)
class TableContent:
    """One table's rows (all of them), the rows hashed, their checksum (16 hex digits), and the
    seconds the scan took."""

    spec: TableSpec
    rows: int
    hashed_rows: int
    checksum: str
    seconds: float


SECTION: Section[list[TableChecksum]] = Section(NAME, list[TableChecksum])  # absent: verify.content off


def count_in_snapshot(
    session: catalog.Connection,
    tables: list[catalog.TableName],
    connect: catalog.Connector,
    verify: VerifyConfig,
    *,
    jobs: int,
    snapshot_id: str,
    lock_timeout_seconds: float,
    meter: Meter | None,
) -> tuple[dict[catalog.TableName, int], list[TableChecksum] | None]:
    """Returns every table's row count and, unless `verify.content` is off, its checksum, in one scan
    per table on `session` (inside the snapshot) and connections joining `snapshot_id`.

    Raises CountFailed naming the table, or psycopg.Error."""
    mode = choose_mode(session, verify)
    if mode is None:
        counted = catalog.count_rows(
            tables,
            connect,
            jobs=jobs,
            snapshot_id=snapshot_id,
            first=session,
            lock_timeout_seconds=lock_timeout_seconds,
            meter=meter,
        )
        return counted, None
    row = session.execute(_SEARCH_PATH_SQL).fetchone()
    search_path = str(row[0]) if row and row[0] else LEGACY_SEARCH_PATH
    measured = fingerprint_tables(
        plan(session, tables, mode, verify.content_sample_percent),
        connect,
        jobs=jobs,
        snapshot_id=snapshot_id,
        first=session,
        lock_timeout_seconds=lock_timeout_seconds,
        meter=meter,
        search_path=search_path,
    )
    counts = {table: content.rows for table, content in measured.items()}
    return counts, [_to_manifest(table, content, search_path) for table, content in sorted(measured.items())]


def choose_mode(connection: catalog.Connection, verify: VerifyConfig) -> Literal["full", "sample"] | None:
    """Returns `verify.content` (None for off); unset: full below `content_full_below_gb`, else sample.
    Raises psycopg.Error."""
    if verify.content is not None:
        return None if verify.content == "off" else verify.content
    row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    size = int(row[0]) if row else 0  # type: ignore[call-overload]
    return "full" if size < verify.content_full_below_gb * 1e9 else "sample"


def recompute(
    expected: list[TableChecksum], connect: catalog.Connector, *, jobs: int, meter: Meter | None = None
) -> dict[catalog.TableName, TableContent]:
    """Returns the checksums of the restored tables that `expected` names, each hashed as it was on
    production (tables missing after the restore are left out). Raises CountFailed or psycopg.Error."""
    with connect() as connection:
        present = set(catalog.list_tables(connection))
    specs = {
        (entry.schema_name, entry.table): TableSpec(
            entry.mode, tuple(entry.key), entry.sample_percent, entry.bucket, entry.row_hash
        )
        for entry in expected
        if (entry.schema_name, entry.table) in present
    }
    search_path = next((entry.search_path for entry in expected if entry.search_path), LEGACY_SEARCH_PATH)
    return fingerprint_tables(specs, connect, jobs=jobs, meter=meter, search_path=search_path)


def differences(expected: list[TableChecksum], restored: dict[catalog.TableName, TableContent]) -> list[str]:
    """Returns one line per table whose restored contents differ from the snapshot's. Pure."""
    lines = []
    for entry in expected:
        name = catalog.quote_name(entry.schema_name, entry.table)
        got = restored.get((entry.schema_name, entry.table))
        if got is None:
            continue  # missing after the restore: the row counts say so
        sampled = f" ({got.spec.sample_percent:g}% sample by primary key)" if entry.mode == "sample" else ""
        if got.hashed_rows != entry.hashed_rows or got.checksum != entry.checksum:
            lines.append(f"{name}: restored contents differ from the snapshot{sampled}")
    return lines


def _to_manifest(table: catalog.TableName, content: TableContent, search_path: str) -> TableChecksum:
    return TableChecksum(
        schema=table[0],
        table=table[1],
        mode=content.spec.mode,
        key=list(content.spec.key),
        sample_percent=content.spec.sample_percent,
        bucket=content.spec.bucket,
        row_hash=content.spec.row_hash,
        search_path=search_path,
        rows=content.rows,
        hashed_rows=content.hashed_rows,
        checksum=content.checksum,
        seconds=content.seconds,
    )


def pin_settings(connection: catalog.Connection, search_path: str) -> None:
    """Pins the text-form settings and `search_path` for the rest of the connection's transaction.
    Raises psycopg.Error."""
    for name, value in (*PINNED_SETTINGS.items(), ("search_path", search_path)):
        connection.execute("SELECT set_config(%s, %s, true)", (name, value))


def plan(
    connection: catalog.Connection, tables: list[catalog.TableName], mode: Literal["full", "sample"], percent: float
) -> dict[catalog.TableName, TableSpec]:
    """Returns how each table is hashed under `mode`. Raises psycopg.Error."""
    if mode == "full":
        return dict.fromkeys(tables, TableSpec("full"))
    keys = {
        (str(schema), str(table)): (tuple(str(column) for column in columns), bool(integer))  # type: ignore[attr-defined]
        for schema, table, columns, integer in connection.execute(_PRIMARY_KEYS_SQL).fetchall()
    }
    return {
        table: TableSpec("sample", keys[table][0], percent, "modulo" if keys[table][1] else "md5")
        if table in keys
        else TableSpec("whole")
        for table in tables
    }


def fingerprint_tables(
    specs: dict[catalog.TableName, TableSpec],
    connect: catalog.Connector,
    *,
    jobs: int = 1,
    snapshot_id: str | None = None,
    first: catalog.Connection | None = None,
    lock_timeout_seconds: float | None = None,
    meter: Meter | None = None,
    search_path: str = LEGACY_SEARCH_PATH,
) -> dict[catalog.TableName, TableContent]:
    """Returns each table's count and checksum, measured as `catalog.count_rows` counts (in one
    snapshot, on up to `jobs` connections, `first` included), with `search_path` set. Raises
    CountFailed naming the table."""

    with contextlib.nullcontext(first) if first is not None else connect() as connection:
        columns = {
            (str(schema), str(table)): [str(name) for name in names]  # type: ignore[attr-defined]
            for schema, table, names in connection.execute(_COLUMNS_SQL).fetchall()
        }

    def measure(connection: catalog.Connection, schema: str, table: str) -> TableContent:
        spec = specs[(schema, table)]
        started = time.monotonic()
        # a table without columns (`CREATE TABLE heartbeat ()`) has no row in _COLUMNS_SQL: ROW() hashes its rows
        row = connection.execute(_statement(schema, table, columns.get((schema, table), []), spec)).fetchone()
        assert row is not None
        rows, hashed, total = (int(value or 0) for value in row)  # type: ignore[call-overload]
        checksum = f"{total % 2**64:016x}"
        return TableContent(spec, rows, hashed, checksum, round(time.monotonic() - started, 3))

    return catalog.measure_tables(
        list(specs),
        connect,
        measure,
        jobs=jobs,
        snapshot_id=snapshot_id,
        first=first,
        lock_timeout_seconds=lock_timeout_seconds,
        meter=meter,
        prepare=lambda connection: pin_settings(connection, search_path),
    )


def _statement(schema: str, table: str, columns: list[str], spec: TableSpec) -> sql.Composed:
    """Returns SELECT (all rows, rows hashed, sum of the rows' 64-bit hashes as numeric)."""
    relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    row_hash = _hash64(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(column)) for column in columns), spec.row_hash
    )
    if spec.mode != "sample":
        return sql.SQL("SELECT count(*), count(*), sum({}) FROM ONLY {} AS t").format(row_hash, relation)
    if spec.bucket == "modulo":
        bucket = sql.SQL("abs(t.{} % 10000) < {}").format(
            sql.Identifier(spec.key[0]), sql.Literal(int(10000 * spec.sample_percent / 100))
        )
    else:
        key_text = sql.SQL("ROW({})::text").format(
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(column)) for column in spec.key)
        )
        bucket = sql.SQL("('x' || left(md5({}), 4))::bit(16)::int < {}").format(
            key_text, sql.Literal(int(SAMPLE_BUCKETS * spec.sample_percent / 100))
        )
    return sql.SQL("SELECT count(*), count(*) FILTER (WHERE {bucket}), sum({hash}) FILTER (WHERE {bucket}) ").format(
        bucket=bucket, hash=row_hash
    ) + sql.SQL("FROM ONLY {} AS t").format(relation)


def _hash64(values: sql.Composable, row_hash: RowHash) -> sql.Composed:
    """Returns the expression: the 64-bit hash of ROW(values)'s text form, as a bigint."""
    if row_hash == "md5":  # backups taken before hashtext: the first 64 bits of md5
        return sql.SQL("('x' || left(md5(ROW({})::text), 16))::bit(64)::bigint").format(values)
    return sql.SQL("hashtextextended(ROW({})::text, 0)").format(values)


def prove_contents(copy: RestoredCopy) -> None:
    """Compares the restored copy's contents with the manifest's checksums, recording the findings; the rows
    of the tables it hashed go to `copy.counts` (one scan gives both), so that only the others still need
    counting. Raises CountFailed or psycopg.Error."""
    manifest, verification = copy.manifest, copy.verification
    snapshot = SECTION.of(manifest)
    if snapshot is None:
        reason = "no checksums in the manifest (verify.content off, or an older agent)"
        verification.findings_of(NAME).not_compared = "no manifest" if manifest is None else reason
    else:
        started = time.monotonic()
        restored = recompute(snapshot, copy.connect, jobs=copy.jobs, meter=copy.meter)
        found = verification.findings_of(NAME)
        found.problems = differences(snapshot, restored)
        found.compared = len(restored)
        found.measures["modes"] = "/".join(sorted({entry.mode for entry in snapshot}))
        found.measures["restored_seconds"] = round(time.monotonic() - started, 3)
        found.measures["production_seconds"] = round(sum(entry.seconds for entry in snapshot), 3)
        copy.counts.update({table: content.rows for table, content in restored.items()})
        logger.info(
            "contents: %d table(s) hashed in %.1fs, %d differ",
            len(restored),
            found.measures["restored_seconds"],
            len(found.problems),
        )


def change_a_value(connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]) -> None:
    """The self-test's damage to contents: changes one value of a table hashed in full (not the one a row
    was deleted from), which row counts cannot see."""
    deleted = next((damage.evidence for damage in done if damage.check == "row_counts"), None)
    full = {(entry.schema_name, entry.table) for entry in SECTION.of(manifest) or [] if entry.mode != "sample"}
    candidates = [
        table for table in tables_with_rows(connection, manifest) if table in full and quoted(table) != deleted
    ]
    changed = _change_a_value(connection, candidates)
    note(done, skipped, changed, "change one value: no other table hashed in full with a changeable column")


_CHANGEABLE_COLUMNS_SQL = """
SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND t.typname IN ('text', 'varchar', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'bool')
ORDER BY a.attnum
"""


def _change_a_value(connection: catalog.Connection, tables: list[catalog.TableName]) -> Damage | None:
    for table in tables:
        relation = identifier(table)
        columns = connection.execute(_CHANGEABLE_COLUMNS_SQL, (relation.as_string(connection),)).fetchall()
        for column_name, type_name in columns:
            column = sql.Identifier(str(column_name))
            changed = {"text": "{column} || '~'", "varchar": "{column} || '~'", "bool": "NOT {column}"}.get(
                str(type_name), "{column} + 1"
            )
            statement = sql.SQL(
                "UPDATE ONLY {table} SET {column} = " + changed + " WHERE ctid = "
                "(SELECT ctid FROM ONLY {table} WHERE {column} IS NOT NULL LIMIT 1)"
            ).format(table=relation, column=column)
            with contextlib.suppress(psycopg.Error):  # a unique index, a length limit, identity: the next one
                if connection.execute(statement).rowcount == 1:
                    return Damage(f"changed {quoted(table)}.{column_name} in one row", "contents", quoted(table))
    return None


KIND = Kind(NAME, checks=(NAME,), caught=named_first_in_a_problem, damages=(change_a_value,), prove=prove_contents)
