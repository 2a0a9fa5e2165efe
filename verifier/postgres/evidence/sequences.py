"""Sequences: the value each would hand out next, and whether one still lies ahead of the column it
feeds (a sequence behind its column makes the next INSERT relying on it fail with a duplicate key).

Sequences live outside MVCC: a snapshot cannot freeze them. Production's values are read before
pg_dump starts, so pg_dump (reading later) can only have seen the same or a later value; a restored
sequence *behind* the recorded one is therefore a real loss, one ahead of it is concurrent writes.

The backup is judged against the snapshot: a restored sequence at or after the snapshot's value is
what production held, even when it is behind its own column — then production itself has the
problem tonight (ids given explicitly, as every data import does), a WARNING about production, never
a failed backup. Without a manifest (a legacy dump) production now is the only reference: a dump's
sequence behind its column while production's is not is a damaged backup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass

import psycopg
from psycopg import sql

from verifier.errors import VerifierError, one_line
from verifier.findings import Findings
from verifier.manifest import Manifest
from verifier.names import qualified
from verifier.postgres import catalog
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence.damage import Damage, note
from verifier.postgres.evidence.kind import Kind, ProductionSnapshot, RestoredCopy
from verifier.postgres.evidence.section import Section

NAME = "sequences"
SECTION: Section[dict[str, int]] = Section(NAME, dict[str, int])  # sequence → its next value on production


def read_before_snapshot(snapshot: ProductionSnapshot) -> None:
    """Reads every sequence's next value on production before the snapshot's transaction (pg_dump reads
    sequences outside the snapshot, later), into the manifest's `sequences`. Raises psycopg.Error."""
    snapshot.sections[NAME] = {state.qualified: state.next_value for state in read_sequences(snapshot.session)}


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
        return qualified(self.schema, self.name)

    @property
    def ascending(self) -> bool:
        """Returns True when nextval() counts up."""
        return self.increment > 0


@dataclass(frozen=True)
class BehindColumn:
    """An owned sequence whose next value its column already holds (`used`: the column's max, or min
    for a descending sequence)."""

    state: SequenceState
    used: int

    @property
    def table(self) -> str:
        """Returns the owning table's qualified name."""
        assert self.state.owner_table is not None
        return qualified(*self.state.owner_table)

    @property
    def column(self) -> str:
        """Returns the owning column's qualified name (table.column)."""
        assert self.state.owner_table is not None and self.state.owner_column is not None
        return qualified(*self.state.owner_table, self.state.owner_column)


@dataclass
class SequenceFindings:
    """What judging the restored sequences found: `problems` fail the backup, `warnings` are about
    production (its own sequence behind its column) or could not be attributed."""

    problems: list[str]
    warnings: list[str]


def read_sequences(connection: catalog.Connection, only: Collection[str] | None = None) -> list[SequenceState]:
    """Returns every readable sequence's state (only those whose qualified name is in `only`, when
    given). Raises psycopg.Error."""
    states = []
    for schema, name, increment, owner_schema, owner_table, owner_column in connection.execute(
        _SEQUENCES_SQL
    ).fetchall():
        if only is not None and qualified(str(schema), str(name)) not in only:
            continue
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
    by_name = {catalog.legacy_quote_name(state.schema, state.name): state for state in restored}
    by_name |= {state.qualified: state for state in restored}  # earlier manifests quoted fewer names
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


def behind_their_columns(connection: catalog.Connection, states: list[SequenceState]) -> list[BehindColumn]:
    """Returns the owned sequences whose next value their column already holds (the next INSERT
    relying on one would fail with a duplicate key). Raises psycopg.Error."""
    behind = []
    for state in states:
        used = column_extreme(connection, state)
        if used is not None and (state.next_value - used) * (1 if state.ascending else -1) <= 0:
            behind.append(BehindColumn(state, used))
    return behind


def column_extreme(connection: catalog.Connection, state: SequenceState) -> int | None:
    """Returns the highest value (lowest, for a descending sequence) the sequence's owning column
    holds; None for a sequence no column owns or an empty column. Raises psycopg.Error."""
    if state.owner_table is None or state.owner_column is None:
        return None
    statement = sql.SQL("SELECT {}({}::numeric) FROM {}.{}").format(
        sql.SQL("max" if state.ascending else "min"),
        sql.Identifier(state.owner_column),
        sql.Identifier(state.owner_table[0]),
        sql.Identifier(state.owner_table[1]),
    )
    row = connection.execute(statement).fetchone()
    return None if row is None or row[0] is None else int(row[0])  # type: ignore[call-overload]


def judge_with_snapshot(
    snapshot: dict[str, int], restored: list[SequenceState], behind: list[BehindColumn]
) -> SequenceFindings:
    """Returns the findings for a backup with a manifest: a sequence restored behind the snapshot's
    value (or missing) fails the backup; one restored at or after it but behind its column is
    production's own state (its snapshot value is what production gave). Pure."""
    findings = SequenceFindings(compare(snapshot, restored), [])
    for item in behind:
        name = item.state.qualified
        expected = snapshot.get(name, snapshot.get(catalog.legacy_quote_name(item.state.schema, item.state.name)))
        if expected is None:
            findings.warnings.append(
                f"sequence {name} gives {item.state.next_value:,} while {item.column} holds {item.used:,}: inserts "
                "would fail after a recovery (the snapshot did not record it)"
            )
        elif _ahead(item.state.next_value, expected, item.state.ascending):
            findings.problems.append(backup_behind(item))
        else:
            findings.warnings.append(production_behind(name, expected, item.column, item.used))
    return findings


def judge_with_production(
    behind: list[BehindColumn], production: dict[str, SequenceState], production_used: dict[str, int | None]
) -> SequenceFindings:
    """Returns the findings for a backup without a manifest, whose `behind` sequences were looked up
    in production now (`production`: its states by name; `production_used`: its columns' extremes):
    production's own sequence behind its column is production's state; production's ahead of its
    column means the dump's sequence is damaged. Pure."""
    findings = SequenceFindings([], [])
    for item in behind:
        name = item.state.qualified
        state = production.get(name)
        used = production_used.get(name)
        if state is None:
            findings.warnings.append(f"{backup_behind(item)}; production has no sequence {name} to compare with")
        elif used is not None and (state.next_value - used) * (1 if state.ascending else -1) <= 0:
            findings.warnings.append(production_behind(name, state.next_value, item.column, used))
        else:
            findings.problems.append(f"{backup_behind(item)} (production's sequence gives {state.next_value:,})")
    return findings


def backup_behind(item: BehindColumn) -> str:
    """Returns the line naming a restored sequence behind its column: the backup's fault. Pure."""
    return (
        f"inserts into {item.table} would fail after a recovery: sequence {item.state.qualified} gives "
        f"{item.state.next_value:,}, {item.column} already holds {item.used:,}"
    )


def production_behind(name: str, gives: int, column: str, used: int) -> str:
    """Returns the line naming production's own sequence behind its column: not the backup's fault. Pure."""
    return f"production's sequence {name} gives {gives:,} while {column} holds {used:,}: inserts fail there too"


def _ahead(value: int, reference: int, ascending: bool) -> bool:
    """Returns True when `reference` is strictly ahead of `value` in the sequence's direction."""
    return (value - reference) * (1 if ascending else -1) < 0


def prove_sequences(copy: RestoredCopy) -> None:
    """Judges the restored sequences, recording problems (the backup's) and warnings (production's)
    in the verification: against the snapshot's values when the manifest recorded them; for a backup
    without a manifest, each sequence behind its column against production's own sequence and column
    now. Raises psycopg.Error (the restored copy)."""
    manifest, connect, production = copy.manifest, copy.connect, copy.production
    if manifest is not None:
        snapshot = SECTION.of(manifest)
        if snapshot is None:  # an older agent's manifest
            return
        with connect() as connection:
            restored = read_sequences(connection)
            behind = behind_their_columns(connection, restored)
        findings = judge_with_snapshot(snapshot, restored, behind)
        compared = len(snapshot)
    else:
        if production is None:
            return
        with connect() as connection:
            restored = read_sequences(connection)
            behind = behind_their_columns(connection, restored)
        compared = sum(1 for state in restored if state.owner_column is not None)
        findings = _judge_with_production(behind, production)
    found = copy.verification.findings_of(NAME)
    found.problems, found.warnings, found.compared = findings.problems, findings.warnings, compared


def _judge_with_production(behind: list[BehindColumn], production: catalog.Connector) -> SequenceFindings:
    """Returns the findings for the restored sequences `behind` their columns, looked up in production
    now. Production out of reach: one warning per sequence (the backup cannot be blamed, nor cleared)."""
    if not behind:
        return SequenceFindings([], [])
    try:
        with production() as session:
            states = {
                state.qualified: state for state in read_sequences(session, {item.state.qualified for item in behind})
            }
            used = {name: column_extreme(session, state) for name, state in states.items()}
    except (VerifierError, DatabaseError) as error:
        reason = str(error) if isinstance(error, VerifierError) else one_line(error)
        return SequenceFindings(
            [], [f"{backup_behind(item)}; production could not be compared: {reason}" for item in behind]
        )
    return judge_with_production(behind, states, used)


def _caught(damage: Damage, findings: Findings) -> bool:
    return any(f"sequence {damage.evidence} " in line for line in findings.problems)


def reset_a_sequence(
    connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]
) -> None:
    """The self-test's damage to sequences: resets one sequence past its start to 1."""
    note(
        done,
        skipped,
        _reset_a_sequence(connection, SECTION.of(manifest) or {}),
        "reset a sequence: no sequence past its start",
    )


def _reset_a_sequence(connection: catalog.Connection, sequences: dict[str, int]) -> Damage | None:
    for name, next_value in sorted(sequences.items()):
        if next_value <= 1:
            continue
        with contextlib.suppress(psycopg.Error):  # a minimum above 1: the next one
            connection.execute("SELECT pg_catalog.setval(%s::regclass, 1, false)", (name,))
            return Damage(f"reset sequence {name} to 1", "sequences", name)
    return None


KIND = Kind(
    NAME,
    checks=(NAME,),
    caught=_caught,
    damages=(reset_a_sequence,),
    before_snapshot=read_before_snapshot,
    prove=prove_sequences,
)
