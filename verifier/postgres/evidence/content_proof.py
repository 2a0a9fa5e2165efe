"""Deeper proof than row counts, on the restored copy: each table's content checksum and each
sequence's next value against what the manifest recorded in the snapshot, then the objects the
counts never see (`object_proof`)."""

from __future__ import annotations

import logging
import time

from verifier.errors import VerifierError, one_line
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence import contents, sequences
from verifier.postgres.evidence.object_proof import prove_objects
from verifier.progress import Meter
from verifier.report import Verification

logger = logging.getLogger(__name__)

CONTENTS = "contents"
SEQUENCES = "sequences"


def prove_restored(
    manifest: Manifest | None,
    connect: catalog.Connector,
    verification: Verification,
    *,
    jobs: int,
    meter: Meter | None = None,
    production: catalog.Connector | None = None,
) -> dict[catalog.TableName, int]:
    """Compares the restored copy's contents and sequences with the manifest (the sequences of a
    backup without one with `production` now), recording the findings in `verification`. Returns
    the row counts of the tables it hashed (one scan gives both), so that only the others still
    need counting. Raises CountFailed or psycopg.Error."""
    counts: dict[catalog.TableName, int] = {}
    if manifest is None or manifest.contents is None:
        reason = "no checksums in the manifest (verify.content off, or an older agent)"
        verification.findings_of(CONTENTS).not_compared = "no manifest" if manifest is None else reason
    else:
        started = time.monotonic()
        restored = contents.recompute(manifest.contents, connect, jobs=jobs, meter=meter)
        found = verification.findings_of(CONTENTS)
        found.problems = contents.differences(manifest.contents, restored)
        found.compared = len(restored)
        found.measures["modes"] = "/".join(sorted({entry.mode for entry in manifest.contents}))
        found.measures["restored_seconds"] = round(time.monotonic() - started, 3)
        found.measures["production_seconds"] = round(sum(entry.seconds for entry in manifest.contents), 3)
        counts = {table: content.rows for table, content in restored.items()}
        logger.info(
            "contents: %d table(s) hashed in %.1fs, %d differ",
            len(restored),
            found.measures["restored_seconds"],
            len(found.problems),
        )
    prove_sequences(manifest, connect, production, verification)
    with connect() as connection:
        prove_objects(manifest, connection, verification)
    return counts


def prove_sequences(
    manifest: Manifest | None,
    connect: catalog.Connector,
    production: catalog.Connector | None,
    verification: Verification,
) -> None:
    """Judges the restored sequences, recording problems (the backup's) and warnings (production's)
    in `verification`: against the snapshot's values when the manifest recorded them; for a backup
    without a manifest, each sequence behind its column against production's own sequence and column
    now. Raises psycopg.Error (the restored copy)."""
    if manifest is not None:
        if manifest.sequences is None:  # an older agent's manifest
            return
        with connect() as connection:
            restored = sequences.read_sequences(connection)
            behind = sequences.behind_their_columns(connection, restored)
        findings = sequences.judge_with_snapshot(manifest.sequences, restored, behind)
        compared = len(manifest.sequences)
    else:
        if production is None:
            return
        with connect() as connection:
            restored = sequences.read_sequences(connection)
            behind = sequences.behind_their_columns(connection, restored)
        compared = sum(1 for state in restored if state.owner_column is not None)
        findings = _judge_with_production(behind, production)
    found = verification.findings_of(SEQUENCES)
    found.problems, found.warnings, found.compared = findings.problems, findings.warnings, compared


def _judge_with_production(
    behind: list[sequences.BehindColumn], production: catalog.Connector
) -> sequences.SequenceFindings:
    """Returns the findings for the restored sequences `behind` their columns, looked up in production
    now. Production out of reach: one warning per sequence (the backup cannot be blamed, nor cleared)."""
    if not behind:
        return sequences.SequenceFindings([], [])
    try:
        with production() as session:
            states = {
                state.qualified: state
                for state in sequences.read_sequences(session, {item.state.qualified for item in behind})
            }
            used = {name: sequences.column_extreme(session, state) for name, state in states.items()}
    except (VerifierError, DatabaseError) as error:
        reason = str(error) if isinstance(error, VerifierError) else one_line(error)
        return sequences.SequenceFindings(
            [], [f"{sequences.backup_behind(item)}; production could not be compared: {reason}" for item in behind]
        )
    return sequences.judge_with_production(behind, states, used)
