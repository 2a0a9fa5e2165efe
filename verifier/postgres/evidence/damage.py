"""The self-test's damage to a restored copy (never production): what one damage is (`Damage`), what a
kind's damaging step looks like (`Damager`), and what the steps share. Each kind damages its own evidence
in its own module (a row deleted in `row_counts`, a value changed in `contents`, a sequence reset in
`sequences`, an index dropped and a CHECK changed in `schema_damage`, ...), each on its own object, each
named as the comparison must name it; `evidence.damage_for_selftest` runs the steps in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from verifier.manifest import Manifest
from verifier.postgres import catalog


@dataclass
class Damage:
    """One damage done to the restored copy, what the comparison must name, and whether it did."""

    what: str
    check: str  # row_counts | contents | sequences | schema | large_objects | materialized_views | constraints
    evidence: str  # the object as the comparison names it
    caught: bool = False


# One damaging step: damages the restored copy on the connection, appending what it did to the damages
# done so far (a step may look at them to choose another object) or why it could not to `not_attempted`.
Damager = Callable[[catalog.Connection, Manifest, list[Damage], list[str]], None]


def note(done: list[Damage], not_attempted: list[str], damage: Damage | None, reason: str) -> None:
    """Appends `damage` to `done`, or `reason` to `not_attempted` when there was nothing to damage."""
    if damage is None:
        not_attempted.append(reason)
    else:
        done.append(damage)


def tables_with_rows(connection: catalog.Connection, manifest: Manifest) -> list[catalog.TableName]:
    """Returns the restored tables that had rows in the snapshot, the largest first."""
    present = set(catalog.list_tables(connection))
    counts = manifest.counts_by_table()
    return sorted((table for table in present if counts.get(table, 0) > 0), key=lambda t: (-counts[t], t))


def identifier(table: catalog.TableName) -> sql.Composed:
    """Returns the table as an SQL identifier."""
    return sql.SQL("{}.{}").format(sql.Identifier(table[0]), sql.Identifier(table[1]))


def quoted(table: catalog.TableName) -> str:
    """Returns the table's name as the comparison names it."""
    return catalog.quote_name(*table)
