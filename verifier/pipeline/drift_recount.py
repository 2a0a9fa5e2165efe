"""Drift claimed only where it is known: production's statistics, confirmed by a count where they
would say a table moved.

The statistics (`n_live_tup`, else the planner's `reltuples` from the last ANALYZE) are not tied to any
snapshot and can be stale: right after a bulk load, after their counters were reset, after a crash.
Read as production's row count they invent drift ("about 600 rows, 300 more than the backup's 300" of a
table that has 300). So every table the statistics put beyond the drift tolerance is counted exactly
when it is small enough to count in a moment; a bigger one keeps its estimate (the note says
"about … (statistics)"), except an estimate of nothing at all, which says nothing: it is left out.
"""

from __future__ import annotations

import logging

from verifier.config import DriftConfig
from verifier.postgres import catalog
from verifier.postgres.catalog import Connector, TableName
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence.kind import ProductionCounts
from verifier.postgres.evidence.row_counts import within_drift

logger = logging.getLogger(__name__)

RECOUNT_MAX_ROWS = 1_000_000  # count(*) of a million narrow rows takes well under a second


def confirm_drift(
    snapshot: dict[TableName, int],
    estimates: dict[TableName, int],
    drift: DriftConfig,
    connect: Connector,
    *,
    jobs: int = 1,
    lock_timeout_seconds: float | None = None,
) -> ProductionCounts:
    """Returns production's counts: the statistics' `estimates`, with every table they put beyond the
    `drift` tolerance of its `snapshot` count counted exactly when neither number exceeds
    RECOUNT_MAX_ROWS. A suspect that cannot be counted (locked, dropped meanwhile) or a big one whose
    statistics are empty is `unknown`. Never raises for a table that cannot be counted."""
    suspects = [
        name
        for name, backup_rows in snapshot.items()
        if name in estimates and not within_drift(backup_rows, estimates[name], drift)
    ]
    small = [name for name in suspects if max(snapshot[name], estimates[name]) <= RECOUNT_MAX_ROWS]
    production = ProductionCounts(dict(estimates))
    production.unknown = {name for name in suspects if name not in small and estimates[name] == 0}
    if not small:
        return production
    try:
        counted = catalog.count_rows(small, connect, jobs=jobs, lock_timeout_seconds=lock_timeout_seconds)
    except (catalog.CountFailed, DatabaseError) as error:
        logger.info("drift: production's statistics not confirmed by a count (%s): no drift claimed for them", error)
        production.unknown |= set(small)
        return production
    production.rows.update(counted)
    production.counted = set(counted)
    return production
