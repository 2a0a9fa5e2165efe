"""Production read at a physical backup's instant: every kind's evidence (the manifest's sections of a logical
dump) on one session, the sequences' and the database properties' readings right before the instant is taken,
the rest inside its exported snapshot (`SET TRANSACTION SNAPSHOT`), and the collation versions production's
host gives (a restored copy on another host may sort differently)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql

from verifier.config import VerifyConfig
from verifier.errors import one_line
from verifier.manifest import SourceInfo
from verifier.postgres import catalog, evidence
from verifier.postgres.collations import actual_versions
from verifier.postgres.connection import Source
from verifier.postgres.evidence.kind import ProductionSnapshot
from verifier.postgres.instant import Instant, InstantUnavailable
from verifier.postgres.snapshot import server_info


class AtInstant:
    """What production held at the instant, read on one session: `sections` (every kind's, as a manifest
    holds them), the database's `source` facts and the collation versions production's host gives."""

    def __init__(self, sections: dict[str, Any], source: SourceInfo, collations: dict[str, str | None]) -> None:
        self.sections = sections
        self.source = source
        self.collations = collations


def read_at_instant(
    verify: VerifyConfig,
    lock_timeout_seconds: float,
    source: Source,
    take: Callable[[], AbstractContextManager[Instant]],
) -> tuple[Instant, AtInstant]:
    """Reads every kind's `before_snapshot` on a production session, then takes the instant (`take`, a
    context manager factory yielding it), imports its snapshot on that session and reads every kind's
    evidence in it. Returns the instant and what was read. Raises InstantUnavailable (also when reading
    failed), SourceUnreachable."""
    try:
        return _read_at_instant(verify, lock_timeout_seconds, source, take)
    except (psycopg.Error, catalog.CountFailed) as error:
        raise InstantUnavailable(f"reading production at the instant failed: {one_line(error)}") from None


def _read_at_instant(
    verify: VerifyConfig,
    lock_timeout_seconds: float,
    source: Source,
    take: Callable[[], AbstractContextManager[Instant]],
) -> tuple[Instant, AtInstant]:
    params = source.params
    with params.connect(autocommit=True) as session:
        snapshot = ProductionSnapshot(
            session,
            params.connect,
            verify,
            jobs=verify.jobs,
            lock_timeout_seconds=lock_timeout_seconds,
        )
        evidence.read_before_snapshot(snapshot)  # sequences first: the restored copy is at or ahead of them
        info = server_info(session)
        with take() as instant:
            if instant.snapshot_id is None:
                raise InstantUnavailable(f"the instant {instant.describe()} exported no snapshot to read it in")
            snapshot.snapshot_id = instant.snapshot_id
            session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            session.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(instant.snapshot_id)))
            try:
                evidence.read_in_snapshot(snapshot)
            finally:
                session.execute("ROLLBACK")
        collations = actual_versions(session)
    source_info = SourceInfo(
        label=params.label,
        dbname=params.dbname,
        server_version=info.version,
        server_version_num=info.version_num,
        encoding=info.encoding,
        collate=info.collate,
        ctype=info.ctype,
    )
    return instant, AtInstant(snapshot.sections, source_info, collations)
