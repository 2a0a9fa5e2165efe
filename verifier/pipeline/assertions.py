"""The user's assertions (`verify.assertions`) on the restored copy, each recorded in the verification
as an `AssertionOutcome`. They say whether the data is what the user expects, not whether the backup
restored what production held: they never take part in the verdict."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from verifier.config_assertions import Assertion
from verifier.postgres import catalog
from verifier.postgres.evidence.assertions import AssertionFailed, evaluate, prepare_reader
from verifier.report import AssertionOutcome, Verification

logger = logging.getLogger(__name__)
_SHOWN = 200  # characters of a value kept for the report: the comparison saw all of it


def run_assertions(
    assertions: Sequence[Assertion], connect: catalog.Connector, verification: Verification, *, own_cluster: bool
) -> None:
    """Runs every assertion on a new connection from `connect` (the restored copy) and records its
    outcome in `verification.assertions`. On a cluster of our `own` (local, docker) they run as a reader
    role created there; on a server sandbox as its user (a role is global: it would outlive the scratch
    database). Raises psycopg.Error when the connection cannot be opened."""
    if not assertions:
        return
    with connect() as connection:
        connection.autocommit = True
        role = prepare_reader(connection) if own_cluster else None
        for assertion in assertions:
            verification.assertions.append(_run(assertion, connection, role))
    failed = [outcome.name for outcome in verification.assertions if not outcome.passed]
    logger.info(
        "assertions: %d run, %d failed%s", len(assertions), len(failed), f": {', '.join(failed)}" if failed else ""
    )


def _run(assertion: Assertion, connection: catalog.Connection, role: str | None) -> AssertionOutcome:
    started = time.monotonic()
    got: str | None = None
    error: str | None = None
    try:
        got = evaluate(connection, assertion.sql, timeout_seconds=assertion.timeout, role=role)
    except AssertionFailed as failure:
        error = str(failure)
    return AssertionOutcome(
        name=assertion.name,
        passed=error is None and assertion.expectation.holds(got),
        expected=assertion.expect,
        got=got if got is None or len(got) <= _SHOWN else got[:_SHOWN] + "…",
        error=error,
        seconds=round(time.monotonic() - started, 3),
    )
