"""Sequences: the value each would hand out next, and whether a restored one still lies ahead of the
column it feeds (a sequence that restarts at 1 makes the first INSERT after a recovery fail).

Sequences live outside MVCC: a snapshot cannot freeze them. Production's values are read before
pg_dump starts, so pg_dump (reading later) can only have seen the same or a later value; a restored
sequence *behind* the recorded one is therefore a real loss, one ahead of it is concurrent writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from verifier.postgres import catalog

_SEQUENCES_SQL = """
SELECT n.nspname, c.relname, s.seqincrement, tn2.nspname, t2.relname, a.attname
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refobjsubid > 0
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t2 ON t2.oid = d.refobjid
LEFT JOIN pg_namespace tn2 ON tn2.oid = t2.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND has_table_privilege(c.oid, 'SELECT')  -- has_sequence_privilege fails on rows the planner checks first
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class SequenceState:
    """One sequence: the value nextval() would return, its increment, and the column that owns it."""

    schema: str
    name: str
    next_value: int
    increment: int
    owner_table: tuple[str, str] | None = None
    owner_column: str | None = None

    @property
    def qualified(self) -> str:
        """Returns schema.name as PostgreSQL shows it."""
        return catalog.quote_name(self.schema, self.name)


def read_sequences(connection: catalog.Connection) -> list[SequenceState]:
    """Returns every readable sequence's state. Raises psycopg.Error."""
    states = []
    for schema, name, increment, owner_schema, owner_table, owner_column in connection.execute(
        _SEQUENCES_SQL
    ).fetchall():
        statement = sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
            sql.Identifier(str(schema)), sql.Identifier(str(name))
        )
        row = connection.execute(statement).fetchone()
        assert row is not None
        last_value, is_called = int(row[0]), bool(row[1])  # type: ignore[call-overload]
        step = int(increment)  # type: ignore[call-overload]
        states.append(
            SequenceState(
                str(schema),
                str(name),
                last_value + step if is_called else last_value,
                step,
                (str(owner_schema), str(owner_table)) if owner_table is not None else None,
                str(owner_column) if owner_column is not None else None,
            )
        )
    return states


def compare(snapshot: dict[str, int], restored: list[SequenceState]) -> list[str]:
    """Returns one line per sequence restored behind the snapshot's value (or missing). Pure."""
    by_name = {state.qualified: state for state in restored}
    problems = []
    for name, expected in sorted(snapshot.items()):
        state = by_name.get(name)
        if state is None:
            problems.append(f"sequence {name} is missing after the restore")
        elif (state.next_value - expected) * (1 if state.increment > 0 else -1) < 0:
            problems.append(
                f"sequence {name} restarts at {state.next_value:,}, the snapshot's next value was {expected:,}"
            )
    return problems


def behind_their_columns(connection: catalog.Connection, restored: list[SequenceState]) -> list[str]:
    """Returns one line per owned sequence whose next value is already used by its column (the next
    INSERT relying on it would fail with a duplicate key). Raises psycopg.Error."""
    problems = []
    for state in restored:
        if state.owner_table is None or state.owner_column is None:
            continue
        extreme = "max" if state.increment > 0 else "min"
        statement = sql.SQL("SELECT {}({}::numeric) FROM {}.{}").format(
            sql.SQL(extreme),
            sql.Identifier(state.owner_column),
            sql.Identifier(state.owner_table[0]),
            sql.Identifier(state.owner_table[1]),
        )
        row = connection.execute(statement).fetchone()
        if row is None or row[0] is None:
            continue
        used = int(row[0])  # type: ignore[call-overload]
        if (state.next_value - used) * (1 if state.increment > 0 else -1) <= 0:
            table = catalog.quote_name(*state.owner_table)
            problems.append(
                f"inserts into {table} would fail after a recovery: sequence {state.qualified} gives "
                f"{state.next_value:,}, {table}.{state.owner_column} already holds {used:,}"
            )
    return problems
