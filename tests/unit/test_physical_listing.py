"""`verifier list --physical`'s text on plain data: the table newest first and the WAL window's line, its
lag said as a duration ("41.0 s ago", not "0h 0m ago")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from verifier.cli.physical import inventory_text
from verifier.physical.engine import Inventory, PhysicalBackup, WalWindow

NOW = datetime(2026, 12, 8, 8, 12, tzinfo=UTC)


def full(label: str, stopped: datetime, size: int) -> PhysicalBackup:
    return PhysicalBackup(
        label, "full", stopped - timedelta(minutes=2), stopped, "0/9A000028", "0/9A000138",
        "000000010000000000000001", "000000010000000000000002", size, size // 3, None,
    )  # fmt: skip


def test_the_backups_newest_first_and_the_archive_window_with_its_lag() -> None:
    inventory = Inventory(
        (full("20261201-020002F", NOW - timedelta(days=7, hours=6), 832_569_344),
         full("20261208-020001F", NOW - timedelta(hours=6, minutes=12), 851_876_249)),
        WalWindow("000000010000000000000001", "00000001000000000000009B", NOW - timedelta(seconds=41)),
        15,
    )  # fmt: skip
    lines = inventory_text(inventory, NOW, UTC, "main").splitlines()
    assert lines[0].split() == ["backup", "type", "taken", "age", "size", "LSN"]
    assert lines[1].startswith("20261208-020001F  full  2026-12-08 02:00 UTC  6h 12m  812.4 MiB")
    assert lines[2].startswith("20261201-020002F  full  2026-12-01 02:12 UTC  7d 6h   794.0 MiB")
    assert lines[3] == "WAL archive: 000000010000000000000001 … 00000001000000000000009B, newest archived 41.0 s ago"


def test_an_empty_stanza_says_so() -> None:
    inventory = Inventory((), WalWindow(None, None, None), None)
    assert inventory_text(inventory, NOW, UTC, "main") == "no physical backups in stanza main\nWAL archive: empty"
