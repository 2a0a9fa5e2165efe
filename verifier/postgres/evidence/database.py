"""The database's own properties as a kind of evidence (settings, per-role settings, privileges, comment,
owner; publications and subscriptions, the check `replication`): read in the snapshot and compared by
`database_properties`, carried in a plain dump or applied from an archive by `database_sql`. Here: read in
the restored copy first thing, before the proof's own sessions, which then settles the copy (its settings
cleared, so production's timeouts do not govern those sessions); compared once production's counts are
known; damaged by the self-test (a database setting reset).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from verifier.errors import one_line
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence.damage import Damage
from verifier.postgres.evidence.database_properties import (
    DATABASE_PROPERTIES,
    REPLICATION,
    SECTION,
    SUBSCRIPTIONS_NOT_DUMPED,
    DatabaseProperties,
    compare,
    damage,
    free_session,
    is_privileged,
    read,
    settle,
)
from verifier.postgres.evidence.kind import OLDER_AGENT, Kind, ProductionSnapshot, RestoredCopy
from verifier.report import Verification

logger = logging.getLogger(__name__)

NAME = "database"
UNREAD = "production's database properties could not be read"


@dataclass
class RestoredDatabase:
    """The restored copy's properties as read before the proof's own sessions, and whether the
    sandbox's role could have restored an owner and per-role settings (a superuser)."""

    properties: DatabaseProperties
    privileged: bool


def read_properties(connection: catalog.Connection, archive_subscriptions: list[str] | None) -> RestoredDatabase:
    """Returns the restored copy's properties (its subscriptions those of the archive when given), and
    clears its settings afterwards. Raises psycopg.Error."""
    free_session(connection)  # it began under them: a 5 ms statement_timeout stops nothing
    properties = read(connection)
    if archive_subscriptions is not None:
        properties.subscriptions = archive_subscriptions
    restored = RestoredDatabase(properties, is_privileged(connection))
    settle(connection, properties)
    return restored


def read_before_snapshot(snapshot: ProductionSnapshot) -> None:
    """Reads production's database properties before the snapshot's transaction, into the manifest's
    `database`. Raises psycopg.Error."""
    snapshot.sections[SECTION.name] = read(snapshot.session)


def prepare(connection: catalog.Connection, copy: RestoredCopy) -> None:
    """Reads the restored copy's properties on the proof's first session, then settles the copy (see
    `read_properties`). Raises psycopg.Error."""
    copy.state[NAME] = read_properties(connection, copy.archive_subscriptions)


def judge(copy: RestoredCopy) -> None:
    """Records the restored properties' findings against the manifest's or, without one, production's now
    (read here; unreadable: not compared, the reason in `production_error`)."""
    if copy.manifest is not None:
        record(copy.verification, SECTION.of(copy.manifest), copy.state[NAME], manifest=copy.manifest,
               not_compared=OLDER_AGENT)  # fmt: skip
    else:
        record(copy.verification, copy.read_production(read), copy.state[NAME], manifest=None, not_compared=UNREAD)


def record(
    verification: Verification,
    expected: DatabaseProperties | None,
    restored: RestoredDatabase | None,
    *,
    manifest: Manifest | None,
    not_compared: str,
) -> None:
    """Records the findings of `restored` against `expected` (the manifest's, or production's now when
    there is no manifest) in `verification`; without either, why they were not compared."""
    if expected is None or restored is None:
        for check in (DATABASE_PROPERTIES, REPLICATION):
            verification.findings_of(check).not_compared = not_compared
        return
    findings = compare(
        expected,
        restored.properties,
        reference="the snapshot" if manifest is not None else "production now",
        subscriptions_not_dumped=manifest is not None and SUBSCRIPTIONS_NOT_DUMPED in manifest.dump_warnings,
        privileged=restored.privileged,
    )
    for check in sorted({*findings.problems, *findings.warnings, *findings.notes, *findings.compared}):
        found = verification.findings_of(check)
        found.problems = findings.problems.get(check, [])
        found.warnings = findings.warnings.get(check, [])
        found.notes.extend(findings.notes.get(check, []))
        found.compared = findings.compared.get(check, 0)


def damage_a_setting(
    connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]
) -> None:
    """The self-test's damage to the database's properties (none, with the reason in `skipped`, for an older
    manifest or a sandbox role that may not alter its database)."""
    properties = SECTION.of(manifest)
    if properties is None:
        skipped.append("database properties: the manifest has none")
        return
    try:
        done.append(damage(connection, properties))
    except DatabaseError as error:
        skipped.append(f"change a database setting: {one_line(error)}")


KIND = Kind(
    NAME,
    checks=(DATABASE_PROPERTIES, REPLICATION),
    damages=(damage_a_setting,),
    before_snapshot=read_before_snapshot,
    prepare=prepare,
    judge=judge,
)
