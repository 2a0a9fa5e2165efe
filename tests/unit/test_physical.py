"""The physical proof's pure parts: WAL names, pgBackRest's JSON and errors, its argv, the sandbox's settings,
the choice of backup, pg_amcheck's findings, collation versions. The real runs are in
tests/integration/physical; here pgBackRest's program is replaced by a recorder only to see its argv."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from verifier import process
from verifier.config_physical import PhysicalConfig
from verifier.physical import pgbackrest
from verifier.physical.amcheck import parse_findings
from verifier.physical.engine import EngineFailed, Inventory, PhysicalBackup, PhysicalError, RecoveryTarget, WalWindow
from verifier.physical.instant_proof import backup_before, target_for
from verifier.physical.pgbackrest import PgBackRest, error_line, parse_info
from verifier.physical.restored import (
    fetch_wal,
    replace_configuration,
    sandbox_settings,
    segment_start,
    segments_needed,
)
from verifier.physical.wal import lsn_value, segment_name, segment_number, segments_between
from verifier.postgres.collations import changed
from verifier.postgres.instant import Instant

SIXTEEN_MB = 16 * 1024 * 1024
INFO = [
    {
        "archive": [
            {
                "database": {"id": 1, "repo-key": 1},
                "id": "15-1",
                "max": "000000010000000000000004",
                "min": "000000010000000000000001",
            }
        ],
        "backup": [
            {
                "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000002"},
                "error": False,
                "info": {"delta": 22992593, "repository": {"delta": 3043468, "size": 3043468}, "size": 22992593},
                "label": "20261207-122737F",
                "lsn": {"start": "0/2000028", "stop": "0/2000100"},
                "prior": None,
                "reference": None,
                "timestamp": {"start": 1796646457, "stop": 1796646459},
                "type": "full",
            },
            {
                "archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"},
                "error": False,
                "info": {"delta": 1474826, "repository": {"delta": 167082, "size": 3048794}, "size": 23058129},
                "label": "20261207-122737F_20261207-122740I",
                "lsn": {"start": "0/4000028", "stop": "0/4000100"},
                "prior": "20261207-122737F",
                "reference": ["20261207-122737F"],
                "timestamp": {"start": 1796646460, "stop": 1796646461},
                "type": "incr",
            },
        ],
        "db": [{"id": 1, "repo-key": 1, "system-id": 7716537767682667295, "version": "15"}],
        "name": "main",
        "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"},
    }
]  # fmt: skip  (pgBackRest 2.45's own output, trimmed)


def instant(lsn: str = "0/5000060", how: str = "exact", point: str | None = None) -> Instant:
    return Instant(
        how=how,
        lsn=lsn,
        segment=segment_name(1, lsn_value(lsn), SIXTEEN_MB),
        timeline=1,
        snapshot_id="00000003-00000002-1",
        exact=how == "exact",
        not_exact_because="" if how == "exact" else "because",
        restore_point=point,
        wal_segment_bytes=SIXTEEN_MB,
        prepared_transactions=0,
        superuser="postgres",
        server_version_num=150010,
        taken_at=datetime(2026, 12, 7, tzinfo=UTC),
    )


def test_wal_names_follow_pg_walfile_name() -> None:
    assert lsn_value("0/41203C0") == 0x41203C0
    assert lsn_value("1/0") == 1 << 32
    assert segment_name(1, lsn_value("0/41203C0"), SIXTEEN_MB) == "000000010000000000000004"
    assert segment_name(2, lsn_value("1A/FF000000"), SIXTEEN_MB) == "000000020000001A000000FF"
    assert segment_number("000000010000001A000000FF", SIXTEEN_MB) == 0x1A * 256 + 0xFF
    assert list(segments_between("0000000100000000000000FE", "000000010000000100000001", SIXTEEN_MB)) == [
        "0000000100000000000000FE",
        "0000000100000000000000FF",
        "000000010000000100000000",
        "000000010000000100000001",
    ]
    assert segment_start("000000010000000100000002", SIXTEEN_MB) == "1/2000000"
    with pytest.raises(ValueError, match="not an LSN"):
        lsn_value("41203C0")


def test_info_json_becomes_typed_backups_and_the_wal_window() -> None:
    inventory = parse_info(INFO[0])
    full, incremental = inventory.backups
    assert (full.label, full.kind, full.start_lsn, full.stop_lsn) == (
        "20261207-122737F",
        "full",
        "0/2000028",
        "0/2000100",
    )
    assert (full.wal_start, full.wal_stop, full.prior) == ("000000010000000000000002",) * 2 + (None,)
    assert full.started == datetime.fromtimestamp(1796646457, UTC)
    assert (incremental.kind, incremental.prior, incremental.repository_bytes) == ("incr", "20261207-122737F", 3048794)
    assert inventory.wal == WalWindow("000000010000000000000001", "000000010000000000000004", None)
    assert inventory.major == 15


def test_an_unusable_stanza_is_named() -> None:
    broken = {**INFO[0], "status": {"code": 1, "message": "missing stanza path"}}
    with pytest.raises(EngineFailed, match=r"^pgBackRest stanza main: missing stanza path$"):
        parse_info(broken)


def test_pgbackrests_error_is_one_line_without_its_relay_prefix() -> None:
    stderr = (
        "WARN: option 'repo1-retention-full' is not set\n"
        "ERROR: [026]: raised from local-1 protocol: error restoring 'base/5/1247': actual checksum 'a' does not "
        "match expected checksum 'b'\n"
        "       [FormatError] on retry after 0ms\n"
    )
    assert (
        error_line(stderr, 26)
        == "[026] error restoring 'base/5/1247': actual checksum 'a' does not match expected checksum 'b'"
    )
    assert error_line("", 41) == "exit code 41, no message"
    assert error_line("something odd\n", 1) == "something odd"


class Recorder:
    """Stands in for process.run: records argv, answers with the given completed process."""

    def __init__(self, returncode: int = 0, stdout: str = "", stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.answer = (returncode, stdout, stderr)

    def __call__(self, argv: Sequence[str | Path], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append([str(part) for part in argv])
        return subprocess.CompletedProcess(argv, *self.answer)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(process, "run", recorder)
    monkeypatch.setattr(pgbackrest.shutil, "which", lambda name: f"/usr/bin/{name}")
    return recorder


def backup(
    label: str = "20261207-122737F", stop: str = "0/2000100", wal: str = "000000010000000000000002"
) -> PhysicalBackup:
    stamp = datetime(2026, 12, 7, tzinfo=UTC)
    return PhysicalBackup(label, "full", stamp, stamp, "0/2000028", stop, wal, wal, 1, 1, None)


def test_restore_argv_targets_the_lsn_exclusively_promotes_and_keeps_tablespaces_beside_it(recorder: Recorder) -> None:
    engine = PgBackRest(PhysicalConfig(stanza="main", config=Path("/etc/pgbackrest/x.conf"), repo=2))
    engine.restore(backup(), RecoveryTarget("lsn", "0/5000060"), Path("/tmp/sandbox/data"))
    (argv,) = recorder.calls
    assert argv == [
        "/usr/bin/pgbackrest",
        "--stanza=main",
        "--log-level-console=off",
        "--log-level-stderr=error",
        "--config=/etc/pgbackrest/x.conf",
        "--repo=2",
        "--pg1-path=/tmp/sandbox/data",
        "--set=20261207-122737F",
        "--tablespace-map-all=/tmp/sandbox/tablespaces",
        "--type=lsn",
        "--target-action=promote",
        "--target=0/5000060",
        "--target-exclusive",
        "--job-retry=0",
        "restore",
    ]
    assert "--delta" not in argv and "--force" not in argv


def test_restore_argv_for_a_restore_point_and_for_the_end_of_the_archive(recorder: Recorder) -> None:
    engine = PgBackRest(PhysicalConfig(stanza="main"))
    engine.restore(backup(), RecoveryTarget("name", "pgbv_x"), Path("/s/data"))
    engine.restore(backup(), RecoveryTarget("latest"), Path("/s/data"))
    named, latest = recorder.calls
    assert named[-5:-2] == ["--type=name", "--target-action=promote", "--target=pgbv_x"]
    assert "--type=default" in latest and not any(part.startswith("--target") for part in latest)


def test_a_failed_restore_is_one_line_naming_the_file_inside_the_data_directory(recorder: Recorder) -> None:
    recorder.answer = (
        26,
        "",
        "ERROR: [026]: raised from local-1 protocol: error restoring '/s/data/base/5/1247': checksum\n",
    )
    with pytest.raises(PhysicalError) as caught:
        PgBackRest(PhysicalConfig(stanza="main")).restore(backup(), RecoveryTarget("immediate"), Path("/s/data"))
    assert (
        str(caught.value)
        == "pgBackRest could not restore backup 20261207-122737F: [026] error restoring 'base/5/1247': checksum"
    )
    assert caught.value.exit_code == 2


def test_archive_get_says_missing_apart_from_failing(recorder: Recorder) -> None:
    engine = PgBackRest(PhysicalConfig(stanza="main"))
    recorder.answer = (1, "", "")
    assert engine.fetch_wal("000000010000000000000005", Path("/s/data/pg_wal/000000010000000000000005")) is False
    assert recorder.calls[0][-4:] == [
        "--pg1-path=/s/data",
        "archive-get",
        "000000010000000000000005",
        "/s/data/pg_wal/000000010000000000000005",
    ]
    recorder.answer = (45, "", "ERROR: [045]: unable to open file\n")
    with pytest.raises(
        PhysicalError, match=r"^pgBackRest could not read WAL segment 0+10+5 from the archive: \[045\] unable"
    ):
        engine.fetch_wal("000000010000000000000005", Path("/s/data/pg_wal/000000010000000000000005"))


def test_info_reads_json_and_a_missing_program_is_named(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder.answer = (0, json.dumps(INFO), "")
    inventory = PgBackRest(PhysicalConfig(stanza="main")).inventory()
    assert [call[-1] for call in recorder.calls] == ["info", "archive/main/15-1/0000000100000000"]
    assert len(inventory.backups) == 2
    monkeypatch.setattr(pgbackrest.shutil, "which", lambda name: None)
    with pytest.raises(EngineFailed, match=r"^pgBackRest is not installed: apt-get install pgbackrest"):
        PgBackRest(PhysicalConfig(stanza="main")).inventory()


def test_the_sandbox_settings_replace_productions() -> None:
    settings = sandbox_settings(RecoveryTarget("lsn", "0/5000060"))
    assert settings["recovery_target_lsn"] == "'0/5000060'" and settings["recovery_target_inclusive"] == "off"
    assert settings["recovery_target_action"] == "'promote'"
    for name, value in {
        "archive_mode": "off",
        "shared_preload_libraries": "''",
        "ssl": "off",
        "hot_standby": "off",
    }.items():
        assert settings[name] == value
    assert settings["restore_command"] == "'false'"  # the server never reaches the repository
    assert sandbox_settings(RecoveryTarget("name", "it's")).get("recovery_target_name") == "'it''s'"
    assert "recovery_target_action" not in sandbox_settings(RecoveryTarget("latest"))
    assert sandbox_settings(RecoveryTarget("latest"), 5)["max_prepared_transactions"] == "5"


def test_the_restored_configuration_files_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("include '/etc/evil.conf'\nssl = on\n")
    (tmp_path / "postgresql.auto.conf").write_text("restore_command = 'curl evil'\n")
    (tmp_path / "pg_hba.conf").write_text("host all all 0.0.0.0/0 trust\n")
    (tmp_path / "standby.signal").write_text("")
    replace_configuration(tmp_path)
    assert "include" not in (tmp_path / "postgresql.conf").read_text()
    assert (tmp_path / "postgresql.auto.conf").read_text() == ""
    assert (tmp_path / "pg_hba.conf").read_text() == "local all all trust\n"
    assert (tmp_path / "recovery.signal").exists() and not (tmp_path / "standby.signal").exists()


class Archive:
    """An engine whose archive holds the given segments (restore and inventory are not used here)."""

    name = "archive"

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.fetched: list[str] = []

    def inventory(self) -> Inventory:
        raise AssertionError("not used")

    def restore(self, backup: PhysicalBackup, target: RecoveryTarget, data_dir: Path) -> None:
        raise AssertionError("not used")

    def fetch_wal(self, segment: str, destination: Path) -> bool:
        self.fetched.append(segment)
        return segment in self.held


def test_the_wal_from_the_backup_to_the_target_is_fetched_and_the_next_when_archived() -> None:
    held = {f"00000001000000000000000{number}" for number in range(2, 7)}
    archive = Archive(held)
    fetched = fetch_wal(archive, backup(), "000000010000000000000005", SIXTEEN_MB, Path("/s/data"))
    assert fetched == [f"00000001000000000000000{number}" for number in range(2, 7)]
    assert segments_needed(backup(), "000000010000000000000001", SIXTEEN_MB) == ["000000010000000000000002"]


def test_a_segment_missing_from_the_archive_is_named_with_where_recovery_would_stop() -> None:
    archive = Archive({"000000010000000000000002", "000000010000000000000003", "000000010000000000000005"})
    with pytest.raises(PhysicalError) as caught:
        fetch_wal(archive, backup(), "000000010000000000000005", SIXTEEN_MB, Path("/s/data"))
    assert str(caught.value) == (
        "WAL segment 000000010000000000000004 is missing from the archive: recovery of backup 20261207-122737F "
        "would stop at LSN 0/4000000, before its target (segments 000000010000000000000002…000000010000000000000005 "
        "needed)"
    )
    with pytest.raises(PhysicalError, match="backup 20261207-122737F cannot even reach a consistent state"):
        fetch_wal(Archive(set()), backup(), "000000010000000000000005", SIXTEEN_MB, Path("/s/data"))


def test_the_newest_backup_that_ended_before_the_instant_is_chosen() -> None:
    older, newer = backup("A", "0/2000100"), backup("B", "0/6000100")
    inventory = Inventory((older, newer), WalWindow(None, None, None), 15)
    assert backup_before(inventory, instant("0/5000060")) is older
    assert backup_before(inventory, instant("0/7000000")) is newer
    assert backup_before(inventory, instant("0/7000000"), "A") is older
    with pytest.raises(PhysicalError, match=r"^no backup in the repository ended before the instant"):
        backup_before(inventory, instant("0/1000000"))
    with pytest.raises(PhysicalError, match=r"^no backup C in the repository$"):
        backup_before(inventory, instant(), "C")
    promoted = Inventory((backup("A", "0/2000100"),), WalWindow(None, None, None), 15)
    after_failover = dataclasses.replace(instant("0/7000000"), timeline=2)
    with pytest.raises(PhysicalError, match=r"^production is on timeline 2, every backup before the instant on an"):
        backup_before(promoted, after_failover)


def test_the_recovery_target_follows_the_instant() -> None:
    assert target_for(instant("0/5000060")) == RecoveryTarget("lsn", "0/5000060")
    assert target_for(instant(how="restore-point", point="pgbv_1")) == RecoveryTarget("name", "pgbv_1")
    assert target_for(instant(how="latest")) == RecoveryTarget("latest")
    assert (
        instant(how="restore-point", point="pgbv_1").describe()
        == "restore point pgbv_1 at LSN 0/5000060 (not exact: because)"
    )


def test_amcheck_findings_are_one_line_each() -> None:
    output = (
        'btree index "app.public.t_pkey":\n'
        '    ERROR:  item order invariant violated for index "t_pkey"\n'
        "    DETAIL:  Lower index tid=(1,1) (points to heap tid=(0,2)) higher index tid=(1,2)\n"
        'heap table "app.public.t", block 0, offset 3:\n'
        "    xmin 4294967295 equals or exceeds next valid transaction ID 0:745\n"
    )
    assert parse_findings(output) == [
        'btree index "app.public.t_pkey": ERROR: item order invariant violated for index "t_pkey"',
        'heap table "app.public.t", block 0, offset 3: '
        "xmin 4294967295 equals or exceeds next valid transaction ID 0:745",
    ]
    assert parse_findings("") == []


def test_collations_whose_version_differs_between_the_hosts() -> None:
    production = {"default": "2.36", "pg_catalog.de-DE-x-icu": "153.120", "public.c": None, "gone": "1"}
    restored = {"default": "2.31", "pg_catalog.de-DE-x-icu": "153.120", "public.c": None}
    assert changed(production, restored) == {"default": ("2.36", "2.31")}
