"""Comparing a restored copy: counting, hashing and fingerprinting it in the sandbox, and judging it against
the manifest (the snapshot) or, for a backup without one, against production now."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from verifier.config import Config
from verifier.errors import VerifierError, one_line
from verifier.manifest import Manifest
from verifier.pipeline.assertions import run_assertions
from verifier.pipeline.drift_recount import confirm_drift
from verifier.postgres import catalog, evidence
from verifier.postgres.connection import DatabaseError, Source
from verifier.postgres.evidence.kind import ProductionCounts, RestoredCopy, read_on
from verifier.postgres.snapshot import export_snapshot
from verifier.progress import Step
from verifier.report import Verification
from verifier.sandbox import Sandbox

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def compare_restored(
    sandbox: Sandbox,
    manifest: Manifest | None,
    config: Config,
    source: Source | None,
    verification: Verification,
    step: Step,
    *,
    archive_subscriptions: list[str] | None = None,
) -> None:
    """Counts, hashes and fingerprints the restored copy in `sandbox` and compares it with the
    manifest (or, without one, with production now), recording the findings in `verification`.
    `archive_subscriptions`: the subscriptions an archive holds (the sandbox restores none).
    Raises psycopg.Error, CountFailed, DatabaseError."""
    meter = step("compare")
    started = time.monotonic()
    copy = RestoredCopy(
        sandbox.connect,
        manifest,
        verification,
        jobs=config.verify.jobs,
        meter=meter,
        production=source.params.connect if source is not None else None,
        archive_subscriptions=archive_subscriptions,
        drift=config.verify.drift,
    )
    with sandbox.connect() as connection:
        evidence.prepare(connection, copy)  # the database's properties, read first, then the copy settled
        tables = catalog.list_tables(connection)
        evidence.prove(copy)  # contents (counting what they hash), sequences, objects
        unhashed = [table for table in tables if table not in copy.counts]
        copy.counts |= catalog.count_rows(unhashed, sandbox.connect, jobs=config.verify.jobs, meter=meter)
        evidence.read_restored(connection, copy)  # the schema's fingerprint
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        verification.restored_bytes = int(size[0]) if size else None  # type: ignore[call-overload]
    run_assertions(config.verify.assertions, sandbox.connect, verification, own_cluster=sandbox.kind != "server")
    copy.production_now = _production_counts(source, manifest, config, verification) if source else None
    if manifest is None and copy.production_now is None:
        reason = verification.production_error or "no production configured"
        verification.error = f"no manifest, and production could not be compared ({reason}): nothing to compare with"
    else:  # row counts, the schema, the database's properties: against the snapshot, or production now
        evidence.judge(copy)
    evidence.in_order(verification)
    verification.compare_seconds = round(time.monotonic() - started, 3)


def _production_counts(
    source: Source, manifest: Manifest | None, config: Config, verification: Verification
) -> ProductionCounts | None:
    """Returns production's row counts now (None, the reason in `verification.production_error`, when it
    cannot be reached): estimated from the statistics where `verify.drift.exact` is off and the backup has a
    manifest, each estimate that suggests drift then counted (stale statistics must not invent drift)."""
    drift = config.verify.drift
    exact = drift.exact or manifest is None
    production = _production_now(source, config, verification, exact=exact)
    if production is None:
        return None
    if manifest is None or not verification.production_estimated:
        return ProductionCounts(production)
    measured = confirm_drift(
        manifest.counts_by_table(), production, drift, source.params.connect,
        jobs=config.verify.jobs, lock_timeout_seconds=config.dump.lock_wait_timeout,
    )  # fmt: skip
    measured.estimated = True
    return measured


def _production_now(
    source: Source, config: Config, verification: Verification, *, exact: bool
) -> dict[catalog.TableName, int] | None:
    """Returns production's row counts now: from the statistics, or (`exact`) counted in one snapshot.

    Returns None, with the reason in `verification.production_error`, when production cannot be reached.
    """
    try:
        with source.params.connect() as session:
            catalog.set_lock_timeout(session, config.dump.lock_wait_timeout)
            if not exact:
                estimates = catalog.estimate_rows(session)
                verification.production_compared, verification.production_estimated = True, True
                return estimates
            snapshot_id = export_snapshot(session)
            tables, _ = catalog.tables_to_count(session)
            counts = catalog.count_rows(
                tables,
                source.params.connect,
                jobs=config.verify.jobs,
                snapshot_id=snapshot_id or None,
                first=session,
                lock_timeout_seconds=config.dump.lock_wait_timeout,
            )
            session.execute("ROLLBACK")
            verification.production_compared = True
            return counts
    except (VerifierError, DatabaseError, catalog.CountFailed) as error:
        verification.production_error = one_line(error)
        return None


def read_production(source: Source, verification: Verification, read: Callable[[catalog.Connection], _T]) -> _T | None:
    """Returns what `read` reads on a new production session, or None (the reason recorded in
    `verification.production_error`) when production cannot be reached or read."""
    return read_on(source.params.connect, verification, read)
