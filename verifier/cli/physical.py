"""`verifier list --physical`: the physical backups in the backup tool's repository (pgBackRest), newest
first, each with its newest proof from the run history, the WAL window they can be recovered through, and
the newest proof's line. Parsing and output only; the work is in `verifier.physical`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from verifier.config import load_config
from verifier.errors import ConfigError
from verifier.physical.engine import Inventory
from verifier.physical.instant_proof import engine_for
from verifier.repository.backups import Repository
from verifier.repository.history import History, RunRecord
from verifier.units import format_age, format_bytes, format_seconds

WIDTH = 80


@dataclass(frozen=True)
class Proof:
    """One physical proof as the run history holds it: its run, when it ended, the backup it restored (its
    label; None when it restored none), whether the backup was proven, the run's status, the instant
    ('LSN 0/41203C0 (exact)'; None when not taken) and what it said: the physical check's line ("restored
    backup … to LSN … (exact): every table equal to production at that instant"), else why it proved nothing."""

    run_id: str
    at: datetime
    label: str | None
    passed: bool
    status: str
    instant: str | None
    said: str


def list_physical(arguments: argparse.Namespace) -> int:
    """Prints the physical backups with their newest proofs, the WAL window and the newest proof (as JSON
    with --json). Returns 0. Raises ConfigError without a `physical:` section, EngineFailed when the tool
    cannot list them."""
    config = load_config(arguments.config)
    if config.physical is None:
        raise ConfigError(
            "no physical: section in the config: name the pgBackRest stanza there (physical: {stanza: …})"
        )
    inventory = engine_for(config.physical).inventory()
    history = History(Repository(config.repository.path).history_path)
    proofs, unreadable = read_proofs(history, [backup.label for backup in inventory.backups])
    now = datetime.now(UTC)
    if arguments.json:
        print(json.dumps({**inventory_dict(inventory, now, proofs), "history_problem": unreadable}, indent=2))
    else:
        zone, stanza = config.schedule.display_zone, config.physical.stanza
        print(inventory_text(inventory, now, zone, stanza, proofs, unreadable=unreadable))
    return 0


def read_proofs(history: History, labels: Iterable[str]) -> tuple[list[Proof], str | None]:
    """Returns, newest first, the newest physical proof and the newest proof of each backup in `labels`,
    and why the history could not be read (then no proofs), None when it could."""
    try:
        unreadable = history.probe()
        records = [(record, label or _label(record)) for record, label in history.physical_proofs()]
        wanted = set(labels)
        picked = records[:1]
        seen = {label for _, label in picked}
        for record, label in records:  # newest first: the first of each label is its newest proof
            if label in wanted and label not in seen:
                seen.add(label)
                picked.append((record, label))
        return [_proof(record, label, history.report_of(record.run_id)) for record, label in picked], unreadable
    except (OSError, sqlite3.Error, KeyError, ValueError) as error:
        return [], f"the run history {history.path} could not be read: {error}"


def _label(record: RunRecord) -> str | None:
    """Returns the label in a restored physical proof's backup name ('label@LSN'), None without one."""
    return record.backup_name.split("@", 1)[0] if record.backup_name else None


def _proof(record: RunRecord, label: str | None, report: dict[str, object]) -> Proof:
    """Returns the proof `record` ran of backup `label`, what it said read from its stored `report`."""
    verification = report.get("verification")
    verification = verification if isinstance(verification, dict) else {}
    instant = verification.get("instant")
    results = report.get("results")
    said = next(
        (
            str(result.get("summary"))
            for result in (results if isinstance(results, list) else [])
            if isinstance(result, dict) and result.get("name") == "physical"
        ),
        None,
    )
    if said is None:
        why = verification.get("error") or report.get("could_not_run") or "the physical check did not run"
        said = f"not proven{f' at {instant}' if instant else ''}: {why}"
    return Proof(
        run_id=record.run_id,
        at=record.finished_at or record.started_at,
        label=label,
        passed=bool(record.verify_ok),
        status=record.status,
        instant=str(instant) if instant else None,
        said=said,
    )


def _newest_of(proofs: Sequence[Proof], label: str) -> Proof | None:
    return next((proof for proof in proofs if proof.label == label), None)


def _proof_dict(proof: Proof | None) -> dict[str, object] | None:
    if proof is None:
        return None
    return {
        "run_id": proof.run_id,
        "proven_at": proof.at.isoformat(),
        "backup": proof.label,
        "verdict": "OK" if proof.passed else "FAILED",
        "status": proof.status,
        "instant": proof.instant,
        "said": proof.said,
    }


def inventory_dict(inventory: Inventory, now: datetime, proofs: Sequence[Proof] = ()) -> dict[str, object]:
    """Returns the inventory as plain JSON data, backups newest first each with its newest proof, the
    archive's lag in seconds and the newest proof."""
    arrived = inventory.wal.newest_archived_at
    oldest = min((backup.stopped for backup in inventory.backups), default=None)
    return {
        "backups": [
            {
                "label": backup.label,
                "type": backup.kind,
                "started_at": backup.started.isoformat(),
                "stopped_at": backup.stopped.isoformat(),
                "age_seconds": int((now - backup.stopped).total_seconds()),
                "size_bytes": backup.size_bytes,
                "repository_bytes": backup.repository_bytes,
                "lsn_start": backup.start_lsn,
                "lsn_stop": backup.stop_lsn,
                "prior": backup.prior,
                "proof": _proof_dict(_newest_of(proofs, backup.label)),
            }
            for backup in reversed(inventory.backups)
        ],
        "wal": {
            "oldest": inventory.wal.oldest,
            "newest": inventory.wal.newest,
            "newest_archived_at": arrived.isoformat() if arrived else None,
            "archive_lag_seconds": int((now - arrived).total_seconds()) if arrived else None,
            "recoverable_from": oldest.isoformat() if oldest and arrived else None,
        },
        "newest_proof": _proof_dict(proofs[0] if proofs else None),
    }


def inventory_text(
    inventory: Inventory,
    now: datetime,
    zone: tzinfo,
    stanza: str,
    proofs: Sequence[Proof] = (),
    *,
    unreadable: str | None = None,
) -> str:
    """Returns the backups as a table, newest first, each with its newest proof; then the WAL archive's
    segments, the window it can be recovered through, and the newest proof (or why the proofs are unknown:
    `unreadable`, the history's problem), within 80 columns."""
    if not inventory.backups:
        lines = [f"no physical backups in stanza {stanza}"]
    else:
        rows = [("backup", "type", "age", "size", "proven")]
        for backup in reversed(inventory.backups):
            proof = _newest_of(proofs, backup.label)
            proven = "never" if proof is None else f"{'OK' if proof.passed else 'FAILED'}, {_ago(now - proof.at)}"
            rows.append((backup.label, backup.kind, format_age(now - backup.stopped),
                         format_bytes(backup.size_bytes), proven))  # fmt: skip
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    wal = inventory.wal
    if wal.newest is None:
        lines.append("WAL archive: empty")
    else:
        lines.append(f"WAL archive: {wal.oldest} … {wal.newest}")
        arrived = wal.newest_archived_at
        if arrived is not None and inventory.backups:
            oldest = min(backup.stopped for backup in inventory.backups)
            lines.append(f"recoverable: {_local(oldest, zone)} … {_local(arrived, zone)} ({_ago(now - arrived)})")
        elif arrived is not None:
            lines.append(f"newest archived {_ago(now - arrived)}")
    if proofs:
        newest = proofs[0]
        lines.append(f"newest proof: {_local(newest.at, zone)} ({_ago(now - newest.at)}), {newest.status}")
        lines += textwrap.wrap(newest.said, WIDTH, initial_indent="  ", subsequent_indent="  ")
    elif unreadable:
        lines.append(f"newest proof: unknown: {unreadable}")
    else:
        lines.append("newest proof: none yet (verifier check --physical proves the newest backup)")
    return "\n".join(lines)


def _ago(age: timedelta) -> str:
    """Returns e.g. '41.0 s ago', '5m 03s ago', '6h 12m ago', '7d 6h ago'."""
    seconds = age.total_seconds()
    if seconds < 0:
        return "in the future"
    return f"{format_seconds(seconds) if seconds < 3600 else format_age(age)} ago"


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
