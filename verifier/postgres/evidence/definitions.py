"""The schema's definitions that PostgreSQL prints from a parsed tree: CHECK and exclusion constraints,
column defaults and generation expressions, indexes, the queries of views, domain defaults and
constraints, row-level-security policy expressions, triggers (their WHEN clause) and the bodies of
SQL-standard functions (`BEGIN ATOMIC`).

Their printed text is not stable across a dump and restore (a `varchar IN (...)` CHECK prints its
array cast differently once parsed again), so each is an object of the schema fingerprint of its
own, with its text kept, and with what is needed to parse that text again in the same place: the
relation it belongs to, the column or index name, the type (see reparse.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.postgres.catalog import Connection

NOT_EXTENSION_MEMBER = """
NOT EXISTS (SELECT 1 FROM pg_depend d
            WHERE d.classid = {catalog}::regclass AND d.objid = {oid} AND d.deptype = 'e')
"""
USER_SCHEMA = "{nsp} <> 'information_schema' AND {nsp} NOT LIKE 'pg\\_%'"
# A function whose body PostgreSQL parsed (BEGIN ATOMIC, PostgreSQL 14 on): its source text is empty.
SQL_STANDARD_BODY = "p.prokind IN ('f', 'p') AND p.prosrc = ''"
_RELATION = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
_USER_RELATION = (
    USER_SCHEMA.format(nsp="n.nspname")
    + " AND c.relpersistence <> 't' AND "
    + NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")
)
# A column's type as CREATE TABLE spells it, with its collation when it is not the type's own.
_COLUMN_TYPE = """format_type(a.atttypid, a.atttypmod)
    || CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
            THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END"""
_DOMAIN_BASE_TYPE = """format_type(t.typbasetype, t.typtypmod)
    || CASE WHEN t.typcollation <> 0
             AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
            THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END"""

# (key, kind, text, relation oid, name, type): run with only pg_catalog on the search_path.
_DEFINITIONS_SQL = f"""
SELECT 'constraint ' || {_RELATION} || '.' || quote_ident(k.conname),
       CASE k.contype WHEN 'c' THEN 'check' ELSE 'exclusion' END, pg_get_constraintdef(k.oid), c.oid, NULL, NULL
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype IN ('c', 'x') AND {_USER_RELATION}
UNION ALL
SELECT CASE WHEN a.attgenerated = '' THEN 'default ' ELSE 'generated column ' END
       || {_RELATION} || '.' || quote_ident(a.attname),
       CASE WHEN a.attgenerated = '' THEN 'default' ELSE 'generated' END,
       pg_get_expr(ad.adbin, ad.adrelid), c.oid, a.attname::text, {_COLUMN_TYPE}
FROM pg_attrdef ad
JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_RELATION}
UNION ALL
SELECT 'index ' || {_RELATION}, 'index', pg_get_indexdef(c.oid), i.indrelid, c.relname::text, NULL
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisvalid AND {USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't'
  AND {NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="i.indrelid")}
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'query of view ' ELSE 'query of materialized view ' END || {_RELATION},
       'view', pg_get_viewdef(c.oid), c.oid, NULL, NULL
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_USER_RELATION}
UNION ALL
SELECT 'domain default ' || t.oid::regtype::text, 'domain default', pg_get_expr(t.typdefaultbin, 0),
       NULL, NULL, {_DOMAIN_BASE_TYPE}
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND t.typdefaultbin IS NOT NULL AND {USER_SCHEMA.format(nsp="n.nspname")}
  AND {NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
UNION ALL
SELECT 'domain constraint ' || t.oid::regtype::text || '.' || quote_ident(k.conname), 'domain constraint',
       pg_get_constraintdef(k.oid), NULL, NULL, {_DOMAIN_BASE_TYPE}
FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND {USER_SCHEMA.format(nsp="n.nspname")}
  AND {NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
UNION ALL
SELECT 'policy using ' || {_RELATION} || '.' || quote_ident(p.polname), 'policy using',
       pg_get_expr(p.polqual, p.polrelid), c.oid, NULL, NULL
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.polqual IS NOT NULL AND {USER_SCHEMA.format(nsp="n.nspname")}
UNION ALL
SELECT 'policy with check ' || {_RELATION} || '.' || quote_ident(p.polname), 'policy with check',
       pg_get_expr(p.polwithcheck, p.polrelid), c.oid, NULL, NULL
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.polwithcheck IS NOT NULL AND {USER_SCHEMA.format(nsp="n.nspname")}
UNION ALL
SELECT 'trigger ' || {_RELATION} || '.' || quote_ident(t.tgname), 'trigger', pg_get_triggerdef(t.oid), c.oid,
       t.tgname::text, NULL
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {USER_SCHEMA.format(nsp="n.nspname")}
UNION ALL
SELECT 'body of function ' || p.oid::regprocedure::text, 'function', pg_get_functiondef(p.oid), NULL,
       format('%I.%I', n.nspname, p.proname), NULL
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {SQL_STANDARD_BODY} AND {USER_SCHEMA.format(nsp="n.nspname")}
  AND {NOT_EXTENSION_MEMBER.format(catalog="'pg_proc'", oid="p.oid")}
"""


@dataclass(frozen=True)
class Definition:
    """One definition PostgreSQL prints from a parsed tree, and where to parse it again.

    `kind`: check, exclusion, default, generated, index, view, domain default, domain constraint,
    policy using, policy with check, trigger, function. `relation`: the oid of the table (or view) it
    belongs to in the database it was read from; `name`: the column (default, generated), the index,
    the trigger, or the function's qualified name; `type_name`: the column's type (generated) or the
    domain's base type, with its collation."""

    kind: str
    text: str
    relation: int | None = None
    name: str | None = None
    type_name: str | None = None


def read_definitions(connection: Connection) -> dict[str, Definition]:
    """Returns every printed definition of the connected database by its fingerprint key. The caller
    pins the search_path to pg_catalog (as fingerprint_schema does), so that names print qualified.
    Raises psycopg.Error."""
    definitions = {}
    for key, kind, text, relation, name, type_name in connection.execute(_DEFINITIONS_SQL).fetchall():
        definitions[str(key)] = Definition(
            kind=str(kind),
            text=str(text or ""),
            relation=int(relation) if relation is not None else None,  # type: ignore[call-overload]
            name=str(name) if name is not None else None,
            type_name=str(type_name) if type_name is not None else None,
        )
    return definitions
