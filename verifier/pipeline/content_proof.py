"""Deeper proof than row counts, on the restored copy: each table's content checksum and each
sequence's next value against what the manifest recorded in the snapshot, then the objects the
counts never see (`object_proof`)."""

from __future__ import annotations

import logging
import time

from verifier.manifest import Manifest
from verifier.pipeline.object_proof import prove_objects
from verifier.postgres import catalog, contents, sequences
from verifier.progress import Meter
from verifier.report import Verification

logger = logging.getLogger(__name__)


def prove_restored(
    manifest: Manifest | None,
    connect: catalog.Connector,
    verification: Verification,
    *,
    jobs: int,
    meter: Meter | None = None,
) -> dict[catalog.TableName, int]:
    """Compares the restored copy's contents and sequences with the manifest, recording the findings
    in `verification`. Returns the row counts of the tables it hashed (one scan gives both), so that
    only the others still need counting. Raises CountFailed or psycopg.Error."""
    counts: dict[catalog.TableName, int] = {}
    if manifest is None or manifest.contents is None:
        reason = "no checksums in the manifest (verify.content off, or an older agent)"
        verification.content_not_compared = "no manifest" if manifest is None else reason
    else:
        started = time.monotonic()
        restored = contents.recompute(manifest.contents, connect, jobs=jobs, meter=meter)
        verification.content_differences = contents.differences(manifest.contents, restored)
        verification.content_tables = len(restored)
        verification.content_modes = sorted({entry.mode for entry in manifest.contents})
        verification.content_seconds = round(time.monotonic() - started, 3)
        verification.content_production_seconds = round(sum(entry.seconds for entry in manifest.contents), 3)
        counts = {table: content.rows for table, content in restored.items()}
        logger.info(
            "contents: %d table(s) hashed in %.1fs, %d differ",
            len(restored),
            verification.content_seconds,
            len(verification.content_differences),
        )
    if manifest is not None and manifest.sequences is not None:
        with connect() as connection:
            restored_sequences = sequences.read_sequences(connection)
            verification.sequence_problems = sequences.compare(manifest.sequences, restored_sequences)
            verification.sequence_problems += sequences.behind_their_columns(connection, restored_sequences)
        verification.sequences_compared = len(manifest.sequences)
    with connect() as connection:
        prove_objects(manifest, connection, verification)
    return counts
