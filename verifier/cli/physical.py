"""`verifier list --physical`: the physical backups in the backup tool's repository (pgBackRest), newest
first, and the WAL window they can be recovered through. Parsing and output only; the work is in
`verifier.physical`.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, tzinfo

from verifier.config import load_config
from verifier.errors import ConfigError
from verifier.physical.engine import Inventory
from verifier.physical.instant_proof import engine_for
from verifier.units import format_age, format_bytes, format_seconds


def list_physical(arguments: argparse.Namespace) -> int:
    """Prints the physical backups and the WAL window (as JSON with --json). Returns 0.
    Raises ConfigError without a `physical:` section, EngineFailed when the tool cannot list them."""
    config = load_config(arguments.config)
    if config.physical is None:
        raise ConfigError(
            "no physical: section in the config: name the pgBackRest stanza there (physical: {stanza: …})"
        )
    inventory = engine_for(config.physical).inventory()
    now = datetime.now(UTC)
    if arguments.json:
        print(json.dumps(inventory_dict(inventory, now), indent=2))
    else:
        print(inventory_text(inventory, now, config.schedule.display_zone, config.physical.stanza))
    return 0


def inventory_dict(inventory: Inventory, now: datetime) -> dict[str, object]:
    """Returns the inventory as plain JSON data, backups newest first, with the archive's lag in seconds."""
    arrived = inventory.wal.newest_archived_at
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
            }
            for backup in reversed(inventory.backups)
        ],
        "wal": {
            "oldest": inventory.wal.oldest,
            "newest": inventory.wal.newest,
            "newest_archived_at": arrived.isoformat() if arrived else None,
            "archive_lag_seconds": int((now - arrived).total_seconds()) if arrived else None,
        },
    }


def inventory_text(inventory: Inventory, now: datetime, zone: tzinfo, stanza: str) -> str:
    """Returns the backups as a table, newest first, and the WAL window on the last line."""
    if not inventory.backups:
        lines = [f"no physical backups in stanza {stanza}"]
    else:
        rows = [("backup", "type", "taken", "age", "size", "LSN")]
        for backup in reversed(inventory.backups):
            rows.append(
                (
                    backup.label,
                    backup.kind,
                    backup.stopped.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                    format_age(now - backup.stopped),
                    format_bytes(backup.size_bytes),
                    f"{backup.start_lsn}…{backup.stop_lsn}",
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    wal = inventory.wal
    if wal.newest is None:
        lines.append("WAL archive: empty")
    else:
        arrived = wal.newest_archived_at
        when = f", newest archived {format_seconds((now - arrived).total_seconds())} ago" if arrived else ""
        lines.append(f"WAL archive: {wal.oldest} … {wal.newest}{when}")
    return "\n".join(lines)
