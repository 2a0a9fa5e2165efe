"""Collation versions, and the indexes that depend on a collation.

A physical copy started on a host whose C library (or ICU) sorts differently keeps production's index
files, built in production's order: lookups then miss rows silently. PostgreSQL records the version a
collation had when it was created (`pg_collation.collversion`, `pg_database.datcollversion` for the
database's default) and reports the library's version now (`pg_collation_actual_version`,
`pg_database_collation_actual_version`, 15 and later). The versions production's host reports, compared
with the restored host's, say which collations changed under the copy; `indexes_on` names what they break.
"""

from __future__ import annotations

from verifier.names import quote_ident
from verifier.postgres.catalog import Connection

DATABASE_DEFAULT = "default"  # the database's own collation (pg_collation's "default" entry, OID 100)

_VERSIONS_SQL = """
SELECT n.nspname, c.collname, pg_collation_actual_version(c.oid)
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE c.collprovider IN ('c', 'i') AND c.oid <> 100
  AND c.collencoding IN (-1, pg_char_to_encoding(getdatabaseencoding()))
"""


def actual_versions(connection: Connection) -> dict[str, str | None]:
    """Returns the version this host's libraries give each collation of the connected database, by
    'schema.name', and the database's default collation under `DATABASE_DEFAULT` (None: unversioned).
    Raises psycopg.Error."""
    versions: dict[str, str | None] = {
        f"{schema}.{name}": None if version is None else str(version)
        for schema, name, version in connection.execute(_VERSIONS_SQL)
    }
    if connection.info.server_version >= 150000:
        row = connection.execute(
            "SELECT pg_database_collation_actual_version(oid) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        versions[DATABASE_DEFAULT] = None if row is None or row[0] is None else str(row[0])
    return versions


def changed(
    production: dict[str, str | None], restored: dict[str, str | None]
) -> dict[str, tuple[str | None, str | None]]:
    """Returns the collations whose version differs between production's host and the restored host:
    name -> (production's version, the restored host's). A collation only one side has is left out."""
    return {
        name: (version, restored[name])
        for name, version in production.items()
        if name in restored and restored[name] != version
    }


_INDEXES_SQL = """
SELECT DISTINCT n.nspname, i.relname, cn.nspname, coll.collname
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
JOIN LATERAL unnest(x.indcollation::oid[]) AS used(oid) ON used.oid <> 0
JOIN pg_collation coll ON coll.oid = used.oid JOIN pg_namespace cn ON cn.oid = coll.collnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 2
"""


def indexes_on(connection: Connection, collations: set[str]) -> list[str]:
    """Returns 'schema.index (collation)' for every user index with a column in one of `collations`
    ('schema.name', or `DATABASE_DEFAULT` for columns that sort by the database's default). Raises psycopg.Error."""
    found = []
    for schema, index, collation_schema, collation in connection.execute(_INDEXES_SQL):
        name = DATABASE_DEFAULT if collation == "default" else f"{collation_schema}.{collation}"
        if name in collations:
            found.append(f"{quote_ident(str(schema))}.{quote_ident(str(index))} ({name})")
    return found
