"""Object names as PostgreSQL prints them: quoted exactly when they need quoting (as `quote_ident`
does), so that `app."orders.archive"` and `"app.orders".archive` never print alike, and plain names
(`public.orders`) stay plain — in every report, log line and Zabbix key.

Pure Python (no server at hand: renderers and Zabbix values call it), so the keywords that need
quoting are listed here: the reserved, column-name and type/function-name keywords of PostgreSQL 15,
plus those later versions added (16: system_user; 17: the SQL/JSON ones, merge_action), so that a
name prints the same before and after a server upgrade.
"""

from __future__ import annotations

# SELECT word FROM pg_get_keywords() WHERE catcode <> 'U' (15), plus the later versions' additions
KEYWORDS_NEEDING_QUOTES = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both
    case cast char character check coalesce collate collation column concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time current_timestamp current_user dec
    decimal default deferrable desc distinct do else end except exists extract false fetch float for foreign
    freeze from full grant greatest group grouping having ilike in initially inner inout int integer intersect
    interval into is isnull join json json_array json_arrayagg json_exists json_object json_objectagg
    json_query json_scalar json_serialize json_table json_value lateral leading least left like limit
    localtime localtimestamp merge_action national natural nchar none normalize not notnull null nullif
    numeric offset on only or order out outer overlaps overlay placing position precision primary real
    references returning right row select session_user setof similar smallint some substring symmetric
    system_user table tablesample then time timestamp to trailing treat trim true union unique user using
    values varchar variadic verbose when where window with xmlattributes xmlconcat xmlelement xmlexists
    xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split()  # noqa: SIM905 - the list as pg_get_keywords() prints it, one screen
)
_SAFE_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz_")
_SAFE = _SAFE_FIRST | frozenset("0123456789")


def quote_ident(name: str) -> str:
    """Returns `name` as PostgreSQL's quote_ident prints it: unchanged when it is lower-case ASCII
    letters, digits and underscores, not starting with a digit and not a keyword that needs quoting;
    otherwise in double quotes, its own double quotes doubled. Pure."""
    plain = name[:1] in _SAFE_FIRST and all(character in _SAFE for character in name)
    if plain and name not in KEYWORDS_NEEDING_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """Returns the parts (schema, table[, column]) each quoted as needed, joined by dots. Pure."""
    return ".".join(quote_ident(part) for part in parts)
