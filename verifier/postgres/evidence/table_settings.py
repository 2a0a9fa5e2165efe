"""The tables' own settings as a kind of evidence: what `ALTER TABLE` sets beside the columns and that the
schema's fingerprint does not hold — storage parameters (`fillfactor`, per-table autovacuum, the TOAST
table's), the replica identity (logical replication and its subscribers need it after a restore), the index
a table is clustered on, and each column's statistics target, storage and compression. pg_dump writes them
as separate statements after the tables; a restore that skips or loses one restores the data but not the
behaviour production had (autovacuum off again on a hot table, UPDATEs refused by a publication).

Read in the snapshot (the catalog as the snapshot sees it), read in the restored copy, compared key by key;
a backup without a manifest is compared with production now (a WARNING at most); an older agent's
manifest has no section: not compared. The self-test sets a fillfactor the snapshot did not have.
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage, identifier, note, quoted, tables_with_rows
from verifier.postgres.evidence.definitions import NOT_EXTENSION_MEMBER, USER_SCHEMA
from verifier.postgres.evidence.kind import (
    OLDER_AGENT,
    Kind,
    ProductionSnapshot,
    RestoredCopy,
    named_first_in_a_problem,
)
from verifier.postgres.evidence.section import Section

NAME = "table_settings"
SECTION: Section[dict[str, str]] = Section(NAME, dict[str, str])  # "table app.t" → its settings, one line

_OPTIONS = "array_to_string(ARRAY(SELECT o FROM unnest({}) o ORDER BY o), ', ')"
_STORAGE = "CASE {} WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external' WHEN 'm' THEN 'main' ELSE 'extended' END"
_COMPRESSION = "CASE a.attcompression WHEN 'p' THEN 'compression pglz' WHEN 'l' THEN 'compression lz4' END"
_SETTINGS_SQL = """
SELECT CASE c.relkind WHEN 'm' THEN 'materialized view ' ELSE 'table ' END
       || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       concat_ws('; ',
         CASE WHEN c.reloptions IS NOT NULL THEN 'with (' || {options} || ')' END,
         (SELECT 'toast with (' || {toast_options} || ')' FROM pg_class t
           WHERE t.oid = c.reltoastrelid AND t.reloptions IS NOT NULL),
         CASE c.relreplident WHEN 'n' THEN 'replica identity nothing' WHEN 'f' THEN 'replica identity full'
              WHEN 'i' THEN 'replica identity using index ' ||
                   (SELECT quote_ident(i.relname) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                     WHERE x.indrelid = c.oid AND x.indisreplident) END,
         (SELECT 'clustered on ' || quote_ident(i.relname) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = c.oid AND x.indisclustered),
         (SELECT string_agg(concat_ws(' ', 'column ' || quote_ident(a.attname),
                   'statistics ' || NULLIF(a.attstattarget, -1),
                   CASE WHEN a.attstorage <> ty.typstorage THEN 'storage ' || {storage} END,
                   {compression}), ', ' ORDER BY a.attnum)
            FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             AND (NULLIF(a.attstattarget, -1) IS NOT NULL OR a.attstorage <> ty.typstorage
                  OR {compression} IS NOT NULL)))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't' AND {user_schema} AND {not_extension_member}
ORDER BY 1
"""


def read(connection: catalog.Connection) -> dict[str, str]:
    """Returns every user table's and materialized view's own settings (those that have any), as the
    connection's transaction sees the catalog. Raises psycopg.Error."""
    compression = _COMPRESSION if connection.info.server_version >= 140000 else "NULL"  # SET COMPRESSION: 14
    query = _SETTINGS_SQL.format(
        options=_OPTIONS.format("c.reloptions"),
        toast_options=_OPTIONS.format("t.reloptions"),
        storage=_STORAGE.format("a.attstorage"),
        compression=compression,
        user_schema=USER_SCHEMA.format(nsp="n.nspname"),
        not_extension_member=NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid"),
    )
    rows = connection.execute(query).fetchall()
    return {str(key): str(settings) for key, settings in rows if settings}


def differences(expected: dict[str, str], restored: dict[str, str]) -> list[str]:
    """Returns one line per relation whose settings differ between `expected` and `restored`. Pure."""
    lines = []
    for key in sorted(expected.keys() | restored.keys()):
        before, after = expected.get(key), restored.get(key)
        if before != after:
            lines.append(f"{key}: restored with {_shown(after)}, expected {_shown(before)}")
    return lines


def _shown(settings: str | None) -> str:
    return "no settings of its own" if settings is None else f"'{settings}'"


def read_in_snapshot(snapshot: ProductionSnapshot) -> None:
    """Reads production's table settings in the snapshot, into the manifest's `table_settings`.
    Raises psycopg.Error."""
    snapshot.sections[NAME] = read(snapshot.session)


def prove(copy: RestoredCopy) -> None:
    """Compares the restored copy's table settings with the snapshot's (an older agent's manifest: not
    compared) or, without a manifest, with production's now (not the verdict), recording the findings.
    Raises psycopg.Error (the restored copy)."""
    found = copy.verification.findings_of(NAME)
    if copy.manifest is not None:
        expected = SECTION.of(copy.manifest)
        if expected is None:
            found.not_compared = OLDER_AGENT
            return
    else:
        expected = copy.read_production(read)
        if expected is None:
            found.not_compared = "production's table settings could not be read"
            return
        found.verdict = False  # against production now, not a snapshot: a WARNING, not the verdict
    with copy.connect() as connection:
        restored = read(connection)
    found.problems = differences(expected, restored)
    found.compared = len(expected.keys() | restored.keys())


def set_a_fillfactor(
    connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]
) -> None:
    """The self-test's damage to table settings: gives a table with rows a fillfactor of 37."""
    damage = None
    for table in tables_with_rows(connection, manifest):
        statement = sql.SQL("ALTER TABLE {} SET (fillfactor = 37)").format(identifier(table))
        with contextlib.suppress(psycopg.Error):
            connection.execute(statement)
            damage = Damage(f"set fillfactor 37 on {quoted(table)}", NAME, f"table {quoted(table)}")
            break
    note(done, skipped, damage, "set a fillfactor: no table with rows that may be altered")


KIND = Kind(
    NAME,
    checks=(NAME,),
    caught=named_first_in_a_problem,
    damages=(set_a_fillfactor,),
    read_snapshot=read_in_snapshot,
    prove=prove,
)
