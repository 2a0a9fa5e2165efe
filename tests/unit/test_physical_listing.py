"""`verifier list --physical` on plain data and a real history file: the table newest first with each
backup's newest proof, the WAL archive and the window it can be recovered through (the lag said as a
duration: "41.0 s ago", not "0h 0m ago"), the newest proof's line; within 80 columns; and the proofs read
from the run history (physical proofs only, the newest of each backup)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from verifier.cli.physical import Proof, inventory_dict, inventory_text, read_proofs
from verifier.findings import Findings
from verifier.physical.engine import BackupKind, Inventory, PhysicalBackup, WalWindow
from verifier.report import CheckResult, Command, PhysicalRestore, Report, Status, Verification
from verifier.repository.history import History

NOW = datetime(2026, 12, 8, 8, 12, tzinfo=UTC)
FULL = "20261208-020001F"
INCR = "20261208-020001F_20261208-070002I"
SAID = f"restored backup {INCR} to LSN 0/9B0001A0 (exact): every table equal to production at that instant"


def backup(label: str, stopped: datetime, size: int, kind: BackupKind = "full") -> PhysicalBackup:
    return PhysicalBackup(
        label, kind, stopped - timedelta(minutes=2), stopped, "0/9A000028", "0/9A000138",
        "000000010000000000000001", "000000010000000000000002", size, size // 3, None,
    )  # fmt: skip


def inventory() -> Inventory:
    return Inventory(
        (backup("20261201-020002F", NOW - timedelta(days=7, hours=6), 832_569_344),
         backup(FULL, NOW - timedelta(hours=6, minutes=12), 851_876_249),
         backup(INCR, NOW - timedelta(hours=1, minutes=10), 12_693_212, "incr")),
        WalWindow("000000010000000000000001", "00000001000000000000009B", NOW - timedelta(seconds=41)),
        15,
    )  # fmt: skip


PROOFS = [
    Proof("r3", NOW - timedelta(minutes=50), INCR, True, "OK", "LSN 0/9B0001A0 (exact)", SAID),
    Proof("r1", NOW - timedelta(hours=5, minutes=2), FULL, False, "CRITICAL", "LSN 0/9A0002F0 (exact)", "…"),
]


def test_the_backups_newest_first_with_their_proofs_the_window_and_the_newest_proof() -> None:
    lines = inventory_text(inventory(), NOW, UTC, "main", PROOFS).splitlines()
    assert [line.split() for line in lines[:4]] == [
        ["backup", "type", "age", "size", "proven"],
        [INCR, "incr", "1h", "10m", "12.1", "MiB", "OK,", "50m", "00s", "ago"],
        [FULL, "full", "6h", "12m", "812.4", "MiB", "FAILED,", "5h", "2m", "ago"],
        ["20261201-020002F", "full", "7d", "6h", "794.0", "MiB", "never"],
    ]
    assert lines[4:] == [
        "WAL archive: 000000010000000000000001 … 00000001000000000000009B",
        "recoverable: 2026-12-01 02:12 UTC … 2026-12-08 08:11 UTC (41.0 s ago)",
        "newest proof: 2026-12-08 07:22 UTC (50m 00s ago), OK",
        f"  restored backup {INCR} to LSN 0/9B0001A0 (exact):",
        "  every table equal to production at that instant",
    ]
    assert max(map(len, lines)) <= 80, lines


def test_an_empty_stanza_says_so() -> None:
    empty = Inventory((), WalWindow(None, None, None), None)
    assert inventory_text(empty, NOW, UTC, "main") == (
        "no physical backups in stanza main\nWAL archive: empty\n"
        "newest proof: none yet (verifier check --physical proves the newest backup)"
    )


def test_json_has_each_backups_proof_and_the_newest() -> None:
    data = json.loads(json.dumps(inventory_dict(inventory(), NOW, PROOFS)))  # as `list --physical --json` prints
    proofs = {entry["label"]: entry["proof"] for entry in data["backups"]}
    assert proofs[INCR]["verdict"] == "OK" and proofs[FULL]["verdict"] == "FAILED"
    assert proofs["20261201-020002F"] is None
    assert data["newest_proof"] == {
        "run_id": "r3", "proven_at": "2026-12-08T07:22:00+00:00", "backup": INCR, "verdict": "OK", "status": "OK",
        "instant": "LSN 0/9B0001A0 (exact)", "said": SAID,
    }  # fmt: skip
    assert data["wal"]["recoverable_from"] == "2026-12-01T02:12:00+00:00"


def physical_report(run_id: str, minutes_ago: int, label: str | None, ok: bool, *, tried: str = "") -> Report:
    """A physical proof's report as the history records it: `label` None for one that restored nothing,
    `tried` the label of the backup it failed to restore then."""
    started = NOW - timedelta(minutes=minutes_ago)
    name = f"{label}@0/9B0001A0" if label else "physical backup"
    verification = Verification(name, exact=True, restored=label is not None, sandbox="physical",
                                instant="LSN 0/9B0001A0 (exact)",
                                error=None if label else "WAL segment 00000001000000000000009A is missing")  # fmt: skip
    if label or tried:
        verification.physical = PhysicalRestore(label or tried, "full", "exact", "0/9B0001A0")
    if not ok:
        verification.findings["row_counts"] = Findings(problems=["public.t: 1 row fewer"])
    results = [CheckResult("physical", Status.OK if ok else Status.CRITICAL, f"restored backup {label}: said")]
    return Report(
        run_id=run_id, command=Command.CHECK_PHYSICAL if minutes_ago % 2 else Command.RUN_PHYSICAL,
        source="postgres", started_at=started, finished_at=started + timedelta(minutes=1),
        results=results if label else [CheckResult("restore", Status.CRITICAL, "restore not possible")],
        verification=verification, backup_name=name if label else None,
    )  # fmt: skip


def test_the_proofs_are_read_from_the_history_newest_of_each_backup(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite")
    logical = Report("logical", "run", "postgres", NOW, NOW, backup_name=FULL,
                     verification=Verification(FULL, exact=True, restored=True, sandbox="local"))  # fmt: skip
    for report in (
        physical_report("old-full", 400, FULL, ok=True),
        physical_report("new-full", 300, FULL, ok=False),
        physical_report("old-damaged", 500, None, ok=False, tried="20261201-020002F"),
        physical_report("damaged", 200, None, ok=False, tried="20261201-020002F"),
        physical_report("incr", 60, INCR, ok=True),
        physical_report("nothing", 10, None, ok=False),
        logical,
    ):
        history.record(report)
    proofs, unreadable = read_proofs(history, [FULL, INCR, "20261201-020002F"])
    assert unreadable is None
    assert [(proof.run_id, proof.label, proof.passed) for proof in proofs] == [
        ("nothing", None, False), ("incr", INCR, True), ("damaged", "20261201-020002F", False),
        ("new-full", FULL, False),
    ]  # fmt: skip
    assert proofs[0].said == "not proven at LSN 0/9B0001A0 (exact): WAL segment 00000001000000000000009A is missing"
    assert proofs[1].said == f"restored backup {INCR}: said" and proofs[1].at == NOW - timedelta(minutes=59)


def test_an_unreadable_history_lists_the_backups_and_says_why_the_proofs_are_unknown(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"not a database, and long enough to be read as one" * 40)
    proofs, unreadable = read_proofs(History(path), [FULL])
    assert proofs == [] and unreadable is not None and str(path) in unreadable
    text = inventory_text(inventory(), NOW, UTC, "main", proofs, unreadable=unreadable)
    assert text.splitlines()[-1] == f"newest proof: unknown: {unreadable}"
    assert text.splitlines()[1].endswith("  never")
