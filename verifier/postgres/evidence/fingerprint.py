"""The schema fingerprint: one hash per schema object (relations with their columns, constraints,
indexes, sequences, functions, triggers, types, schemas, extensions, policies), one hash over them all,
and the differences between two fingerprints, as the verdict and the report name them.

The definitions PostgreSQL prints from a parsed tree (CHECKs, defaults, indexes, view queries, domain
and policy expressions: definitions.py) are objects of their own, their text kept beside the hash, so
that one printed differently after a restore can be parsed again before it counts (reparse.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import psycopg

from verifier.postgres.catalog import Connection
from verifier.postgres.evidence.definitions import NOT_EXTENSION_MEMBER as _NOT_EXTENSION_MEMBER
from verifier.postgres.evidence.definitions import SQL_STANDARD_BODY, Definition, read_definitions
from verifier.postgres.evidence.definitions import USER_SCHEMA as _USER_SCHEMA

# Each query returns (key, canonical definition). Keys name the object for humans.
_SCHEMA_QUERIES: tuple[str, ...] = (
    # relations with their columns (in order, without attnum), kind, partitioning and inheritance;
    # defaults and view queries are definitions of their own (definitions.py)
    f"""
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END
           || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           concat_ws(E'\\n', c.relkind, c.relpersistence,
             pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid),
             (SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno)
                FROM pg_inherits i WHERE i.inhrelid = c.oid),
             'owner ' || pg_get_userbyid(c.relowner), 'acl ' || c.relacl::text,
             CASE WHEN c.relrowsecurity THEN 'row level security' END,
             CASE WHEN c.relforcerowsecurity THEN 'forced row level security' END,
             'comment ' || obj_description(c.oid, 'pg_class'),
             (SELECT string_agg(concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                       CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                       NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
                       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                            THEN 'COLLATE ' || a.attcollation::regcollation::text END,
                       'acl ' || a.attacl::text, 'comment ' || col_description(c.oid, a.attnum)),
                       E'\\n' ORDER BY a.attnum)
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relpersistence <> 't'
      AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # constraints without an expression (primary keys, foreign keys, uniques); checks and exclusions
    # are definitions
    f"""
    SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
           || '.' || quote_ident(k.conname), pg_get_constraintdef(k.oid)
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE k.contype NOT IN ('c', 'x') AND {_USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't'
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # sequences: definition, not position. From pg_sequence itself: the pg_sequences view computes
    # last_value, which takes a lock on every sequence (10,000 of them exhaust a sandbox's lock table,
    # and in the snapshot's transaction they would stay locked until the end); same text as the view's
    f"""
    SELECT 'sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           concat_ws(' ', s.seqtypid::regtype, s.seqstart, s.seqmin, s.seqmax, s.seqincrement, s.seqcycle,
             'owner ' || pg_get_userbyid(c.relowner), 'acl ' || c.relacl::text,
             (SELECT 'owned by ' || d.refobjid::regclass::text || '.' || quote_ident(a.attname)
                FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                 AND d.refclassid = 'pg_class'::regclass LIMIT 1))
    FROM pg_sequence s
    JOIN pg_class c ON c.oid = s.seqrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND NOT pg_is_other_temp_schema(n.oid) AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # functions and procedures (a body PostgreSQL parsed is a definition)
    f"""
    SELECT 'function ' || p.oid::regprocedure::text,
           concat_ws(E'\\n',
             CASE WHEN {SQL_STANDARD_BODY} THEN 'sql body'
                  WHEN p.prokind IN ('f', 'p') THEN md5(pg_get_functiondef(p.oid)) ELSE p.prokind::text END,
             'owner ' || pg_get_userbyid(p.proowner), 'acl ' || p.proacl::text,
             'comment ' || obj_description(p.oid, 'pg_proc'))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_proc'", oid="p.oid")}
    """,
    # enum and domain types (a domain's default and constraints are definitions)
    f"""
    SELECT CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain ' ELSE 'type ' END || t.oid::regtype::text,
           concat_ws(E'\\n',
             CASE t.typtype
               WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                FROM pg_enum e WHERE e.enumtypid = t.oid)
               WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull
               ELSE (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                       ', ' ORDER BY a.attnum)
                       FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
             END,
             'owner ' || pg_get_userbyid(t.typowner), 'acl ' || t.typacl::text,
             'comment ' || obj_description(t.oid, 'pg_type'))
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd')
           OR (t.typtype = 'c' AND (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) = 'c'))
      AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
    """,
    # schemas and extensions
    f"""
    SELECT 'schema ' || quote_ident(n.nspname),
           concat_ws(E'\\n', 'owner ' || pg_get_userbyid(n.nspowner), 'acl ' || n.nspacl::text,
                     'comment ' || obj_description(n.oid, 'pg_namespace'))
    FROM pg_namespace n
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_namespace'", oid="n.oid")}
    UNION ALL
    SELECT 'extension ' || quote_ident(e.extname), e.extnamespace::regnamespace::text FROM pg_extension e
    """,
    # row-level security policies, with the roles they name (their expressions are definitions)
    f"""
    SELECT 'policy ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(p.polname),
           concat_ws(E'\\n', p.polcmd, p.polpermissive,
             (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
                FROM unnest(p.polroles) AS r))
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
    """,
)

# Catalog queries run with only pg_catalog on the search_path, on production and in the sandbox
# alike: `format_type`, `::regclass` and the `pg_get_*def` functions leave out the schema of objects
# on the path, so the fingerprint would otherwise depend on the session's (or role's) search_path.
# Settings that change how definitions print (partition bounds and defaults hold dates, intervals, floats)
PRINT_SETTINGS = {
    "search_path": "pg_catalog",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
}

_EXTENSIONS_SQL = "SELECT extname, extversion FROM pg_extension ORDER BY extname"


@dataclass(frozen=True)
class SchemaFingerprint:
    """A hash per schema object, one hash over them all, the installed extensions' versions
    (compared apart: a sandbox may only have another version of an extension's package), and the
    printed definitions among the objects (their hash is the hash of their text)."""

    objects: dict[str, str]
    fingerprint: str
    extensions: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, Definition] = field(default_factory=dict)

    def texts(self) -> dict[str, str]:
        """Returns the printed definitions' texts by key (what a manifest keeps)."""
        return {key: definition.text for key, definition in sorted(self.definitions.items())}


def fingerprint_schema(connection: Connection) -> SchemaFingerprint:
    """Returns the schema fingerprint of the connected database, taken with only `pg_catalog` on the
    search_path and the date/interval/float styles pinned (then restored), so that it depends on
    nothing but the schema. Raises psycopg.Error.
    """
    previous = {}
    for name, value in PRINT_SETTINGS.items():
        row = connection.execute("SELECT pg_catalog.current_setting(%s)", (name,)).fetchone()
        previous[name] = str(row[0]) if row else ""
        connection.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    try:
        definitions: dict[str, str] = {}
        for query in _SCHEMA_QUERIES:
            for key, definition in connection.execute(query).fetchall():
                definitions[str(key)] = str(definition or "")
        printed = read_definitions(connection)
        definitions.update({key: definition.text for key, definition in printed.items()})
        extensions = {str(name): str(version) for name, version in connection.execute(_EXTENSIONS_SQL).fetchall()}
    finally:
        idle = (psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INTRANS)
        if not connection.closed and connection.info.transaction_status in idle:
            for name, value in previous.items():
                connection.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    objects = {key: object_hash(value) for key, value in sorted(definitions.items())}
    overall = hashlib.sha256("\n".join(f"{key} {value}" for key, value in objects.items()).encode()).hexdigest()
    return SchemaFingerprint(objects=objects, fingerprint=overall, extensions=extensions, definitions=printed)


def object_hash(definition: str) -> str:
    """Returns the hash one object's definition text has in a fingerprint (16 hex digits)."""
    return hashlib.sha256(definition.encode()).hexdigest()[:16]


def extension_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Returns one sentence per extension whose restored version differs from production's."""
    return [
        f"extension {name} is {expected[name]} in production but {actual[name]} in the sandbox "
        "(the sandbox's packages provide another version)"
        for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]


def schema_differences(
    expected: dict[str, str], actual: dict[str, str], same_when_parsed: frozenset[str] = frozenset()
) -> list[str]:
    """Returns one line per object missing, extra or different between two fingerprints' objects;
    an object in `same_when_parsed` (its two texts parse to the same definition) does not differ."""
    lines = [f"missing: {key}" for key in sorted(expected.keys() - actual.keys())]
    lines += [f"unexpected: {key}" for key in sorted(actual.keys() - expected.keys())]
    lines += [
        f"differs: {key}"
        for key in sorted(expected.keys() & actual.keys())
        if expected[key] != actual[key] and key not in same_when_parsed
    ]
    return lines
