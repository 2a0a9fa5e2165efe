"""Evidence: what belongs to the database itself rather than to its schemas.

`ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` settings, the database's privileges
(`GRANT/REVOKE CONNECT, CREATE, TEMPORARY ON DATABASE`), its comment and owner, its publications and
its subscriptions. pg_dump without `--create` leaves the first four out of a plain dump and pg_restore
without `--create` does not restore them from an archive: an application restored from such a backup
starts with another search_path, no statement timeout, and other roles able to connect.

One unit with the protocol every kind of evidence follows: `read` (in the dump's snapshot, and in a
restored copy), `compare` → findings per check, `damage` (the self-test), plus `settle`, which
clears the restored copy's settings once read so that production's timeouts do not govern the proof's
own sessions. How the properties travel in a backup is `database_sql`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import cast

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage
from verifier.postgres.evidence.section import Section


class Publication(BaseModel):
    """A publication in the dump's snapshot: what it publishes (every table, or these tables and
    schemas' tables) and which changes."""

    name: str
    all_tables: bool = False
    actions: str = ""  # e.g. "insert, update, delete, truncate"
    via_root: bool = False
    tables: list[str] = Field(default_factory=list)  # qualified, quoted where needed
    schemas: list[str] = Field(default_factory=list)


class DatabaseProperties(BaseModel):
    """What belongs to the database itself rather than to its schemas, read in the dump's snapshot:
    `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` settings (each "name=value" as
    pg_db_role_setting holds it), the database's privileges ("grantee:PRIVILEGE", "*" when grantable,
    "PUBLIC" for everyone; the default ones included), its comment and owner, its publications, and
    its subscriptions' names (None when the role may not read them)."""

    owner: str
    settings: list[str] = Field(default_factory=list)
    role_settings: dict[str, list[str]] = Field(default_factory=dict)
    grants: list[str] = Field(default_factory=list)
    default_grants: bool = True  # never granted nor revoked: pg_dump writes no GRANT/REVOKE
    comment: str | None = None
    publications: list[Publication] = Field(default_factory=list)
    subscriptions: list[str] | None = Field(default_factory=list)


DATABASE_PROPERTIES = "database_properties"  # the checks the findings are keyed by
REPLICATION = "replication"
SUBSCRIPTIONS_NOT_DUMPED = "subscriptions not dumped because current user is not a superuser"  # pg_dump's words
OWNER_ALIAS = "the owner"  # grants to the owner compare alike whoever owns the restored copy

_DATABASE_SQL = """
SELECT pg_catalog.pg_get_userbyid(d.datdba), d.datacl IS NULL, pg_catalog.shobj_description(d.oid, 'pg_database'),
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END
                    || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
             FROM pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a ORDER BY 1)
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
"""
_SETTINGS_SQL = """
SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, s.setconfig
FROM pg_catalog.pg_db_role_setting s
WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
ORDER BY 1 NULLS FIRST
"""
_PUBLICATIONS_SQL = """
SELECT p.pubname, p.puballtables,
       pg_catalog.concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                            CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END),
       {via_root},
       ARRAY(SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
             FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_class c ON c.oid = r.prrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE r.prpubid = p.oid ORDER BY 1),
       {schemas}
FROM pg_catalog.pg_publication p ORDER BY 1
"""
_PUBLICATION_SCHEMAS = """ARRAY(SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_publication_namespace s
             JOIN pg_catalog.pg_namespace n ON n.oid = s.pnnspid WHERE s.pnpubid = p.oid ORDER BY 1)"""
_SUBSCRIPTIONS_SQL = """
SELECT s.subname FROM pg_catalog.pg_subscription s
WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
ORDER BY 1
"""


@dataclass
class Findings:
    """What comparing the properties found, per check: lines that fail the verdict, named WARNINGs
    (the backup lacks something by pg_dump's own rule), notes, and how many were compared."""

    problems: dict[str, list[str]] = field(default_factory=lambda: {DATABASE_PROPERTIES: [], REPLICATION: []})
    warnings: dict[str, list[str]] = field(default_factory=lambda: {DATABASE_PROPERTIES: [], REPLICATION: []})
    notes: dict[str, list[str]] = field(default_factory=lambda: {DATABASE_PROPERTIES: [], REPLICATION: []})
    compared: dict[str, int] = field(default_factory=dict)


SECTION: Section[DatabaseProperties] = Section("database", DatabaseProperties)


def read(connection: catalog.Connection) -> DatabaseProperties:
    """Returns the connected database's properties, as the connection's transaction sees them (on
    production: in the dump's snapshot; the shared catalogs as they are now). Raises psycopg.Error when
    a catalog every role may read cannot be read."""
    row = connection.execute(_DATABASE_SQL).fetchone()
    assert row is not None
    owner, default_grants, comment, grants = row
    settings: list[str] = []
    role_settings: dict[str, list[str]] = {}
    for role, entries in connection.execute(_SETTINGS_SQL).fetchall():
        if role is None:
            settings = _texts(entries)
        else:
            role_settings[str(role)] = _texts(entries)
    return DatabaseProperties(
        owner=str(owner),
        settings=settings,
        role_settings=role_settings,
        grants=_texts(grants),
        default_grants=bool(default_grants),
        comment=None if comment is None else str(comment),
        publications=_read_publications(connection),
        subscriptions=_read_subscriptions(connection),
    )


def compare(
    expected: DatabaseProperties,
    restored: DatabaseProperties,
    *,
    reference: str = "the snapshot",
    subscriptions_not_dumped: bool = False,
    privileged: bool = True,
) -> Findings:
    """Returns the findings of the restored copy's properties against `expected` (the snapshot's, or
    production's now). `subscriptions_not_dumped`: pg_dump said it left them out (not a superuser): each
    is a named WARNING, not a failed backup. Without `privileged` (the sandbox's role is no superuser)
    the owner and the per-role settings could not have been restored: their differences are notes.
    Pure."""
    findings = Findings()
    lines = findings.problems[DATABASE_PROPERTIES]
    unverifiable = findings.notes[DATABASE_PROPERTIES]
    lines += _compare_settings(
        "database setting {}", _settings(expected.settings), _settings(restored.settings), reference
    )
    role_lines = []
    for role in sorted(expected.role_settings.keys() | restored.role_settings.keys()):
        role_lines += _compare_settings(
            f"setting {{}} of role {_quote(role)} in the database",
            _settings(expected.role_settings.get(role, [])),
            _settings(restored.role_settings.get(role, [])),
            reference,
        )
    want, got = _grants(expected), _grants(restored)
    lines += [f"database privilege {grant} is missing after the restore" for grant in sorted(want - got)]
    lines += [
        f"database privilege {grant} is in the restored copy but not in {reference}" for grant in sorted(got - want)
    ]
    if expected.comment != restored.comment:
        if restored.comment is None:
            lines.append("the database's comment is missing after the restore")
        elif expected.comment is None:
            lines.append(f"the database has a comment after the restore but not in {reference}")
        else:
            lines.append(f"the database's comment differs from {reference}")
    owner_lines = []
    if expected.owner != restored.owner:
        owner_lines.append(
            f"the database's owner is {_quote(restored.owner)} after the restore, "
            f"{_quote(expected.owner)} in {reference}"
        )
    if privileged:
        lines += role_lines + owner_lines
    else:
        reason = " (not verifiable: the sandbox's role is not a superuser)"
        unverifiable += [line + reason for line in role_lines + owner_lines]
    findings.compared[DATABASE_PROPERTIES] = (
        len(expected.settings)
        + sum(len(entries) for entries in expected.role_settings.values())
        + len(expected.grants)
        + (expected.comment is not None)
        + 1
    )
    _compare_replication(expected, restored, reference, subscriptions_not_dumped, findings)
    return findings


def damage(connection: catalog.Connection, expected: DatabaseProperties) -> Damage:
    """Damages the restored copy's properties (never production's): resets its first database setting,
    or adds one when the snapshot had none. Returns the damage with the words the comparison must use.
    Raises psycopg.Error when the sandbox's role may not alter its own database."""
    database = sql.Identifier(_current_database(connection))
    if expected.settings:
        name = expected.settings[0].split("=", 1)[0]
        connection.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(database, sql.Identifier(name)))
        return Damage(f"reset database setting {name}", DATABASE_PROPERTIES, f"database setting {name} ")
    connection.execute(sql.SQL("ALTER DATABASE {} SET work_mem = '7777kB'").format(database))
    return Damage("added database setting work_mem", DATABASE_PROPERTIES, "database setting work_mem ")


def settle(connection: catalog.Connection, restored: DatabaseProperties) -> None:
    """Clears the restored copy's database and per-role settings once they have been read, so that
    production's statement_timeout, search_path or default_transaction_read_only do not govern the
    proof's own sessions. Never raises for a setting it may not clear (a server sandbox's role)."""
    free_session(connection)
    database = sql.Identifier(_current_database(connection))
    statements = [sql.SQL("ALTER DATABASE {} RESET ALL").format(database)]
    statements += [
        sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(sql.Identifier(role), database)
        for role in restored.role_settings
    ]
    for statement in statements:
        with contextlib.suppress(psycopg.Error), connection.transaction():
            connection.execute(statement)


def free_session(connection: catalog.Connection) -> None:
    """Frees a session opened under the restored copy's settings from those that could stop the proof (a
    statement timeout, read-only transactions). Raises psycopg.Error."""
    for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        connection.execute(sql.SQL("SET {} = 0").format(sql.Identifier(setting)))
    connection.execute("SET default_transaction_read_only = off")


def is_privileged(connection: catalog.Connection) -> bool:
    """Returns whether the connected role is a superuser (may restore owners and per-role settings)."""
    row = connection.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _compare_replication(
    expected: DatabaseProperties,
    restored: DatabaseProperties,
    reference: str,
    subscriptions_not_dumped: bool,
    findings: Findings,
) -> None:
    problems, warnings = findings.problems[REPLICATION], findings.warnings[REPLICATION]
    want = {publication.name: publication for publication in expected.publications}
    got = {publication.name: publication for publication in restored.publications}
    for name in sorted(want.keys() | got.keys()):
        quoted = _quote(name)
        if name not in got:
            problems.append(f"publication {quoted} is missing after the restore")
        elif name not in want:
            problems.append(f"publication {quoted} is in the restored copy but not in {reference}")
        elif want[name] != got[name]:
            problems.append(
                f"publication {quoted} publishes {_describe(got[name])} after the restore, "
                f"{_describe(want[name])} in {reference}"
            )
    not_dumped = "is not in the backup: pg_dump needs a superuser to dump subscriptions"
    restored_subscriptions = set(restored.subscriptions or [])
    if expected.subscriptions is None:
        if subscriptions_not_dumped:
            warnings.append(
                "subscriptions are not in the backup: pg_dump needs a superuser to dump them "
                "(and the agent's role may not read their names)"
            )
    else:
        for name in expected.subscriptions:
            if name in restored_subscriptions:
                continue
            quoted = _quote(name)
            if subscriptions_not_dumped:
                warnings.append(f"subscription {quoted} {not_dumped}")
            else:
                problems.append(f"subscription {quoted} is missing after the restore")
        problems += [
            f"subscription {_quote(name)} is in the restored copy but not in {reference}"
            for name in sorted(restored_subscriptions - set(expected.subscriptions))
        ]
    findings.compared[REPLICATION] = len(expected.publications) + len(expected.subscriptions or [])


def _compare_settings(noun: str, want: dict[str, str], got: dict[str, str], reference: str) -> list[str]:
    lines = []
    for name in sorted(want.keys() | got.keys()):
        what = noun.format(name)
        if name not in got:
            lines.append(f"{what} = {want[name]} is missing after the restore")
        elif name not in want:
            lines.append(f"{what} = {got[name]} is in the restored copy but not in {reference}")
        elif want[name] != got[name]:
            lines.append(f"{what} is {got[name]} after the restore, {want[name]} in {reference}")
    return lines


def _settings(entries: list[str]) -> dict[str, str]:
    return dict(entry.split("=", 1) if "=" in entry else (entry, "") for entry in entries)  # type: ignore[misc]


def _grants(properties: DatabaseProperties) -> set[str]:
    """Returns the privileges as "PRIVILEGE of GRANTEE" lines, the owner's named as the owner."""
    lines = set()
    for grant in properties.grants:
        grantee, privilege = grant.rsplit(":", 1)
        who = OWNER_ALIAS if grantee == properties.owner else ("PUBLIC" if grantee == "PUBLIC" else _quote(grantee))
        grantable = privilege.endswith("*")
        lines.add(f"{privilege.rstrip('*')} of {who}{' (with grant option)' if grantable else ''}")
    return lines


def _describe(publication: Publication) -> str:
    what = (
        "all tables"
        if publication.all_tables
        else ", ".join(publication.tables + [f"the tables in schema {schema}" for schema in publication.schemas])
        or "no table"
    )
    return f"{what} ({publication.actions or 'no changes'}{', via the partition root' if publication.via_root else ''})"


def _read_publications(connection: catalog.Connection) -> list[Publication]:
    version = connection.info.server_version
    query = _PUBLICATIONS_SQL.format(
        via_root="p.pubviaroot" if version >= 130000 else "false",
        schemas=_PUBLICATION_SCHEMAS if version >= 150000 else "'{}'::text[]",
    )
    return [
        Publication(
            name=str(name),
            all_tables=bool(all_tables),
            actions=str(actions),
            via_root=bool(via_root),
            tables=_texts(tables),
            schemas=_texts(schemas),
        )
        for name, all_tables, actions, via_root, tables, schemas in connection.execute(query).fetchall()
    ]


def _read_subscriptions(connection: catalog.Connection) -> list[str] | None:
    """Returns the database's subscriptions' names, or None when the role may not read them."""
    try:
        with connection.transaction():  # a savepoint inside the snapshot's transaction
            return [str(row[0]) for row in connection.execute(_SUBSCRIPTIONS_SQL).fetchall()]
    except psycopg.errors.InsufficientPrivilege:
        return None


def _texts(array: object) -> list[str]:
    """Returns a text[] column's elements (none for NULL), sorted."""
    return sorted(str(element) for element in cast(list[object], array or []))


def _quote(name: str) -> str:
    """Returns a role's or object's name as PostgreSQL would write it (plain names stay plain)."""
    plain = name.replace("_", "a").isalnum() and name.islower() and not name[:1].isdigit()
    return name if plain else sql.Identifier(name).as_string(None)


def _current_database(connection: catalog.Connection) -> str:
    row = connection.execute("SELECT pg_catalog.current_database()").fetchone()
    assert row is not None
    return str(row[0])
