"""Is a schema difference real? Two printed definitions are the same when PostgreSQL parses them to
the same thing, however they print.

PostgreSQL does not print every definition the same way after a dump and restore: production's
`varchar IN (...)` CHECK prints `= ANY ((ARRAY['a'::character varying])::text[])`, the restored copy's
`= ANY (ARRAY[('a'::character varying)::text])`. So a definition whose text differs is created again
in the restored copy's server from production's text, and printed again by the same `pg_get_*def`
function: when that print is the restored copy's (or the restored copy's own text, created again,
prints the same), the two parse to the same definition. A CHECK, default, view or index that really
changed still prints differently, and stays a difference.

Each definition is created on its own table (a CHECK added NOT VALID, a default, a policy, a trigger:
catalog rows only) or on a scratch copy of its relation (an empty table `LIKE` it, for what builds an
index or a column) in a scratch schema, inside a savepoint that is always rolled back: the restored
copy is left as it was and production is never reached. Only definitions whose texts differ are
parsed again, in batches of `BATCH` per savepoint so that the locks a batch holds stay few.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from verifier.postgres.catalog import Connection, Connector
from verifier.postgres.evidence.definitions import Definition
from verifier.postgres.evidence.fingerprint import PRINT_SETTINGS, SchemaFingerprint, object_hash, schema_differences

logger = logging.getLogger(__name__)

BATCH = 100
_SCRATCH = "pgbv_reparse"  # the name of every scratch object (each lives in its own savepoint)


def real_schema_differences(
    expected: dict[str, str], expected_texts: Mapping[str, str], restored: SchemaFingerprint, connect: Connector
) -> list[str]:
    """Returns one line per object missing, extra or different between `expected` (production's
    objects, with the texts of its printed definitions) and the restored copy's fingerprint, leaving
    out the definitions whose two texts parse to the same thing in the restored copy's server (reached
    through `connect`, only when some printed definition's text differs). A definition that cannot be
    created again stays a difference. Raises psycopg.Error (DatabaseError) when the sandbox cannot be
    reached."""
    pairs = {
        key: (expected_texts[key], restored.definitions[key])
        for key in sorted(expected.keys() & restored.objects.keys())
        if expected[key] != restored.objects[key]
        and key in restored.definitions
        and key in expected_texts
        and object_hash(expected_texts[key]) == expected[key]  # the text is the one that was hashed
    }
    same: frozenset[str] = frozenset()
    if pairs:
        with connect() as connection:
            try:
                same = same_when_parsed(connection, pairs)
            except psycopg.Error as error:  # e.g. no right to create a schema: every difference stays one
                logger.warning("schema: printed definitions cannot be parsed again in the sandbox: %s", error)
        logger.info("schema: %d of %d printed definition(s) that differ parse to the same thing", len(same), len(pairs))
    return schema_differences(expected, restored.objects, same)


def same_when_parsed(connection: Connection, pairs: Mapping[str, tuple[str, Definition]]) -> frozenset[str]:
    """Returns the keys of `pairs` (key → production's text, the restored copy's definition) whose two
    texts parse to the same definition on `connection`'s server. Changes nothing: every batch runs in
    a savepoint rolled back. Raises psycopg.Error only when no savepoint can be opened."""
    same: set[str] = set()
    keys = list(pairs)
    for start in range(0, len(keys), BATCH):
        with _scratch_schema(connection) as scratch:
            for key in keys[start : start + BATCH]:
                production_text, restored = pairs[key]
                reprinted = scratch.reprint(restored, production_text)
                if reprinted is None:
                    continue
                if reprinted == restored.text or reprinted == scratch.reprint(restored, restored.text):
                    same.add(key)
    return frozenset(same)


@contextlib.contextmanager
def _scratch_schema(connection: Connection) -> Iterator[_Scratch]:
    """Yields a scratch schema inside a savepoint (or transaction) that is rolled back on exit, with the
    settings definitions print under (as the fingerprint pins them) and no event trigger firing where
    the role may say so."""
    with connection.transaction(force_rollback=True):
        for name, value in PRINT_SETTINGS.items():
            connection.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
        with contextlib.suppress(psycopg.Error), connection.transaction():
            connection.execute("SET LOCAL session_replication_role = replica")  # a superuser's only
        schema = f"{_SCRATCH}_{secrets.token_hex(4)}"
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        yield _Scratch(connection, schema)


# Kinds created first on the definition's own (restored) table, in the savepoint: only a catalog row
# is written, where an empty scratch copy costs a new table (~15 ms, toast included). A CHECK is added
# NOT VALID there, so that no row is read. The others need an empty table (an index is built).
_ON_ITS_OWN_TABLE = ("check", "default", "policy using", "policy with check", "trigger")
_NOT_VALID = " NOT VALID"


@dataclass(frozen=True)
class _Table:
    """A table definitions are created on: its name to use, its oid, and how pg_get_*def prints it."""

    name: sql.Composed
    oid: int
    printed: str
    own: bool  # the definition's own table of the restored copy, not a scratch copy


class _Scratch:
    """Creates definitions again in one scratch schema and prints them as the fingerprint does."""

    def __init__(self, connection: Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema
        self.copies: dict[int, _Table | None] = {}
        self.own_tables: dict[int, _Table | None] = {}

    def reprint(self, definition: Definition, text: str) -> str | None:
        """Returns `text` printed again after creating it as `definition`'s kind, or None when it
        cannot be created (then it counts as different)."""
        if definition.relation is None:
            return self._attempt(definition, text, None)
        if definition.kind in _ON_ITS_OWN_TABLE:
            own = self._own_table(definition.relation)
            printed = self._attempt(definition, text, own) if own is not None else None
            if printed is not None:
                return printed
        copy = self._copy(definition.relation)
        return self._attempt(definition, text, copy) if copy is not None else None

    def _attempt(self, definition: Definition, text: str, table: _Table | None) -> str | None:
        try:
            with self.connection.transaction(force_rollback=True):
                return self._create_and_print(definition, text, table)
        except psycopg.Error as error:
            logger.debug("cannot parse again %s %r: %s", definition.kind, text[:200], error)
            return None

    def _own_table(self, relation: int) -> _Table | None:
        """Returns the restored copy's table `relation` (looked up once per batch), or None."""
        if relation not in self.own_tables:
            row = self.connection.execute(
                "SELECT n.nspname, c.relname, pg_catalog.format('%%I.%%I', n.nspname, c.relname)"
                " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = %s AND c.relkind IN ('r', 'p')",
                (relation,),
            ).fetchone()
            self.own_tables[relation] = None
            if row is not None:
                name = sql.SQL("{}.{}").format(sql.Identifier(str(row[0])), sql.Identifier(str(row[1])))
                self.own_tables[relation] = _Table(name, relation, str(row[2]), own=True)
        return self.own_tables[relation]

    def _copy(self, relation: int) -> _Table | None:
        """Returns an empty scratch table LIKE `relation` (made once per batch), or None."""
        if relation not in self.copies:
            self.copies[relation] = None
            name = sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(f"r{relation}"))
            try:
                with self.connection.transaction():
                    row = self.connection.execute(
                        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
                        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
                        (relation,),
                    ).fetchone()
                    if row is not None:
                        source = sql.SQL("{}.{}").format(sql.Identifier(str(row[0])), sql.Identifier(str(row[1])))
                        self.connection.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(name, source))
                        oid = self._oid("pg_class", "relname", f"r{relation}")
                        self.copies[relation] = _Table(name, oid, f"{self.schema}.r{relation}", own=False)
            except psycopg.Error as error:
                logger.debug("cannot copy relation %s for parsing definitions again: %s", relation, error)
        return self.copies[relation]

    def _create_and_print(self, definition: Definition, text: str, table: _Table | None) -> str:
        """Creates `text` as `definition`'s kind on `table` (or in the scratch schema) and returns how
        it prints. Raises psycopg.Error (also for a kind it does not know)."""
        scratch = sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(_SCRATCH))
        name, oid = (table.name, table.oid) if table is not None else (scratch, 0)
        kind, raw = definition.kind, sql.SQL(text)
        if kind in ("check", "exclusion"):
            not_valid = kind == "check" and table is not None and table.own and not text.endswith(_NOT_VALID)
            self._run(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(name, sql.Identifier(_SCRATCH))
                + raw
                + sql.SQL(_NOT_VALID if not_valid else "")
            )
            printed = self._value(
                "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
                " WHERE conrelid = %s AND conname = %s",
                (oid, _SCRATCH),
            )
            return printed.removesuffix(_NOT_VALID) if not_valid else printed
        if kind in ("default", "generated"):
            column = definition.name or ""
            if kind == "default":
                self._run(
                    sql.SQL("ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT ").format(name, sql.Identifier(column))
                    + raw
                )
            else:
                column = _SCRATCH
                self._run(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} ").format(name, sql.Identifier(column))
                    + sql.SQL(definition.type_name or "")
                    + sql.SQL(" GENERATED ALWAYS AS (")
                    + raw
                    + sql.SQL(") STORED")
                )
            return self._value(
                "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d"
                " JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
                " WHERE d.adrelid = %s AND a.attname = %s",
                (oid, column),
            )
        if kind == "index" and table is not None:
            return self._reprint_index(definition, text, table)
        if kind == "trigger" and table is not None:
            return self._reprint_trigger(definition, text, table)
        if kind == "function":
            return self._reprint_function(definition, text, scratch)
        if kind == "view":
            self._run(sql.SQL("CREATE VIEW {} AS ").format(scratch) + sql.SQL(text.rstrip().removesuffix(";")))
            return self._value("SELECT pg_catalog.pg_get_viewdef(%s)", (self._oid("pg_class", "relname", _SCRATCH),))
        if kind in ("domain default", "domain constraint"):
            base = sql.SQL("CREATE DOMAIN {} AS ").format(scratch) + sql.SQL(definition.type_name or "")
            if kind == "domain default":
                self._run(base + sql.SQL(" DEFAULT ") + raw)
                domain = self._oid("pg_type", "typname", _SCRATCH)
                return self._value(
                    "SELECT pg_catalog.pg_get_expr(typdefaultbin, 0) FROM pg_catalog.pg_type WHERE oid = %s", (domain,)
                )
            self._run(base)
            self._run(sql.SQL("ALTER DOMAIN {} ADD CONSTRAINT {} ").format(scratch, sql.Identifier(_SCRATCH)) + raw)
            return self._value(
                "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
                " WHERE contypid = %s AND conname = %s",
                (self._oid("pg_type", "typname", _SCRATCH), _SCRATCH),
            )
        if kind in ("policy using", "policy with check"):
            clause, column = ("USING", "polqual") if kind == "policy using" else ("WITH CHECK", "polwithcheck")
            self._run(
                sql.SQL("CREATE POLICY {} ON {} ").format(sql.Identifier(_SCRATCH), name)
                + sql.SQL(clause + " (")
                + raw
                + sql.SQL(")")
            )
            return self._value(
                sql.SQL(
                    "SELECT pg_catalog.pg_get_expr({}, polrelid) FROM pg_catalog.pg_policy"
                    " WHERE polrelid = %s AND polname = %s"
                ).format(sql.Identifier(column)),
                (oid, _SCRATCH),
            )
        raise psycopg.ProgrammingError(f"no way to parse a {kind} again")

    def _reprint_index(self, definition: Definition, text: str, table: _Table) -> str:
        """Creates the index `text` describes on the scratch `table` and returns how it prints under
        the original index and table names. Raises psycopg.Error."""
        index, relation = self._quoted_names(definition)
        for create in ("CREATE UNIQUE INDEX ", "CREATE INDEX "):
            for only in ("ONLY ", ""):
                head = f"{create}{index} ON {only}{relation} USING "
                if text.startswith(head):
                    self._run(
                        sql.SQL(create)
                        + sql.Identifier(_SCRATCH)
                        + sql.SQL(" ON ")
                        + table.name
                        + sql.SQL(" USING ")
                        + sql.SQL(text[len(head) :])
                    )
                    printed = self._value(
                        "SELECT pg_catalog.pg_get_indexdef(%s)", (self._oid("pg_class", "relname", _SCRATCH),)
                    )
                    scratch_head = f"{create}{_SCRATCH} ON {table.printed} USING "
                    if not printed.startswith(scratch_head):
                        raise psycopg.ProgrammingError(f"the scratch index printed as {printed[:100]!r}")
                    return head + printed[len(scratch_head) :]
        raise psycopg.ProgrammingError("not the index's own CREATE INDEX")

    def _reprint_trigger(self, definition: Definition, text: str, table: _Table) -> str:
        """Creates the trigger `text` describes on the scratch `table` and returns how it prints under
        the original trigger and table names. Raises psycopg.Error."""
        trigger, relation = self._quoted_names(definition)
        for create in ("CREATE CONSTRAINT TRIGGER ", "CREATE TRIGGER "):
            head, on = f"{create}{trigger} ", f" ON {relation} "
            at = text.find(on, len(head) - 1)
            if not text.startswith(head) or at < 0:
                continue
            self._run(
                sql.SQL(create + _SCRATCH + " " + text[len(head) : at] + " ON ")
                + table.name
                + sql.SQL(" " + text[at + len(on) :])
            )
            printed = self._value(
                "SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger"
                " WHERE tgrelid = %s AND tgname = %s",
                (table.oid, _SCRATCH),
            )
            scratch_head, scratch_on = f"{create}{_SCRATCH} ", f" ON {table.printed} "
            scratch_at = printed.find(scratch_on, len(scratch_head) - 1)
            if not printed.startswith(scratch_head) or scratch_at < 0:
                raise psycopg.ProgrammingError(f"the scratch trigger printed as {printed[:100]!r}")
            return head + printed[len(scratch_head) : scratch_at] + on + printed[scratch_at + len(scratch_on) :]
        raise psycopg.ProgrammingError("not the trigger's own CREATE TRIGGER")

    def _reprint_function(self, definition: Definition, text: str, scratch: sql.Composed) -> str:
        """Creates the function `text` describes under a scratch name and returns how it prints under
        its own name. Raises psycopg.Error."""
        for word in ("FUNCTION", "PROCEDURE"):
            head = f"CREATE OR REPLACE {word} {definition.name}("
            if not text.startswith(head):
                continue
            self._run(sql.SQL(f"CREATE {word} ") + scratch + sql.SQL("(" + text[len(head) :]))
            printed = self._value(
                "SELECT pg_catalog.pg_get_functiondef(%s)", (self._oid("pg_proc", "proname", _SCRATCH),)
            )
            scratch_head = f"CREATE OR REPLACE {word} {self.schema}.{_SCRATCH}("
            if not printed.startswith(scratch_head):
                raise psycopg.ProgrammingError(f"the scratch function printed as {printed[:100]!r}")
            return head + printed[len(scratch_head) :]
        raise psycopg.ProgrammingError("not the function's own CREATE FUNCTION")

    def _quoted_names(self, definition: Definition) -> tuple[str, str]:
        """Returns (the definition's own name, its table's qualified name) quoted as PostgreSQL prints
        them. Raises psycopg.Error."""
        row = self.connection.execute(
            "SELECT pg_catalog.quote_ident(%s), pg_catalog.format('%%I.%%I', n.nspname, c.relname)"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
            (definition.name or "", definition.relation),
        ).fetchone()
        if row is None:
            raise psycopg.ProgrammingError("the definition's table is gone")
        return str(row[0]), str(row[1])

    def _run(self, statement: sql.Composed) -> None:
        """Runs one statement holding a definition's text through the extended query protocol (which
        binary results force), so that a text holding a second statement is refused, never run.
        Raises psycopg.Error."""
        self.connection.execute(statement, binary=True)

    def _value(self, query: str | sql.Composable, params: tuple[object, ...]) -> str:
        row = self.connection.execute(query, params).fetchone()  # type: ignore[arg-type]
        if row is None or row[0] is None:
            raise psycopg.ProgrammingError("the definition created again was not found")
        return str(row[0])

    def _oid(self, catalog_table: str, name_column: str, name: str) -> int:
        namespace = {"pg_class": "relnamespace", "pg_type": "typnamespace", "pg_proc": "pronamespace"}[catalog_table]
        query = sql.SQL(
            "SELECT t.oid FROM pg_catalog.{} t JOIN pg_catalog.pg_namespace n ON n.oid = t.{}"
            " WHERE n.nspname = %s AND t.{} = %s"
        ).format(sql.Identifier(catalog_table), sql.Identifier(namespace), sql.Identifier(name_column))
        row = self.connection.execute(query, (self.schema, name)).fetchone()
        if row is None:
            raise psycopg.ProgrammingError(f"scratch object {name} not found")
        return int(str(row[0]))
