"""Damage a physical proof must name, each in one line, leaving no server and no directory behind: a WAL
segment missing from the archive, a backup file damaged in the repository, WAL that ends before the
target, a corrupted index page in the restored copy. Real pgBackRest, real PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.physical.conftest import DamagingEngine, PhysicalProduction
from verifier.config import PostgresConfig, VerifyConfig
from verifier.physical.amcheck import run_amcheck
from verifier.physical.engine import PhysicalError
from verifier.physical.instant_proof import restore_to_instant, take_instant
from verifier.physical.pgbackrest import PgBackRest
from verifier.physical.wal import lsn_value, segment_name, segment_number
from verifier.postgres.instant import wait_until_archived

PAGE = 8192


def archived_file(production: PhysicalProduction, segment: str) -> Path:
    (found,) = production.repository.glob(f"archive/prod/*/{segment[:16]}/{segment}-*")
    return found


def test_a_wal_segment_missing_from_the_archive_is_named(logical_production: PhysicalProduction) -> None:
    production = logical_production
    production.backup("full")
    (backup,) = PgBackRest(production.physical).inventory().backups
    for _ in range(3):
        production.execute("INSERT INTO u (t_count) VALUES (1); SELECT pg_switch_wal()")
    with take_instant(production.physical, production.params) as instant:
        wait_until_archived(production.params, instant, 60)
        bytes_per_segment = instant.wal_segment_bytes
        lost = segment_name(
            1, (segment_number(backup.wal_stop, bytes_per_segment) + 1) * bytes_per_segment, bytes_per_segment
        )
        archived_file(production, lost).unlink()
        with (
            pytest.raises(PhysicalError) as caught,
            restore_to_instant(production.physical, VerifyConfig(), PostgresConfig(), production.params, instant),
        ):
            pass
    start = segment_number(lost, bytes_per_segment) * bytes_per_segment
    assert str(caught.value) == (
        f"WAL segment {lost} is missing from the archive: recovery of backup {backup.label} would stop at LSN "
        f"{start >> 32:X}/{start & 0xFFFFFFFF:X}, before its target (segments {backup.wal_start}…{instant.segment} "
        f"needed)"
    )


def test_a_backup_file_damaged_in_the_repository_gives_pgbackrests_checksum_error(
    logical_production: PhysicalProduction,
) -> None:
    production = logical_production
    production.backup("full")
    (backup,) = PgBackRest(production.physical).inventory().backups
    ((relation,),) = production.execute("SELECT pg_relation_filepath('t')")
    damaged = production.repository / "backup" / "prod" / backup.label / "pg_data" / str(relation)
    with damaged.open("r+b") as file:
        file.seek(PAGE + 100)
        file.write(b"damaged in the repository")
    with (
        take_instant(production.physical, production.params) as instant,
        pytest.raises(PhysicalError) as caught,
        restore_to_instant(production.physical, VerifyConfig(), PostgresConfig(), production.params, instant),
    ):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"pgBackRest could not restore backup {backup.label}: \[026\] error restoring '{relation}': actual checksum "
        r"'[0-9a-f]{40}' does not match expected checksum '[0-9a-f]{40}'",
        message,
    ), message


def test_wal_that_ends_before_the_target_is_named(logical_production: PhysicalProduction) -> None:
    """The archived segment holding the target is zeroed from the target's page on (the backup's own WAL is
    older): recovery runs out of WAL before the target."""
    production = logical_production
    production.backup("full")
    production.execute("INSERT INTO u (t_count) VALUES (1); SELECT pg_switch_wal()")
    with take_instant(production.physical, production.params) as instant:
        wait_until_archived(production.params, instant, 60)
        archived = archived_file(production, instant.segment)
        with archived.open("r+b") as file:
            start = (lsn_value(instant.lsn) % instant.wal_segment_bytes) // PAGE * PAGE  # the target's page on
            file.seek(start)
            file.write(bytes(instant.wal_segment_bytes - start))
        with (
            pytest.raises(PhysicalError) as caught,
            restore_to_instant(production.physical, VerifyConfig(), PostgresConfig(), production.params, instant),
        ):
            pass
    message = str(caught.value)
    assert re.fullmatch(
        rf"recovery ended before its target, LSN {instant.lsn}: the archived WAL \(segments [0-9A-F]{{24}}…"
        rf"[0-9A-F]{{24}}\) ends or breaks off first",
        message,
    ), message


def test_amcheck_names_a_corrupted_index_page_of_the_restored_copy(logical_production: PhysicalProduction) -> None:
    production = logical_production
    production.backup("full")
    ((relation,),) = production.execute("SELECT pg_relation_filepath('still_pkey')")
    engine = DamagingEngine(PgBackRest(production.physical), str(relation))
    with (
        take_instant(production.physical, production.params) as instant,
        restore_to_instant(
            production.physical, VerifyConfig(), PostgresConfig(), production.params, instant, engine=engine
        ) as restored,
    ):
        full = run_amcheck(restored, "full")
        sample = run_amcheck(restored, "sample")
    assert full is not None and sample is not None
    print(f"\namcheck full {full.seconds:.2f}s, sample {sample.seconds:.2f}s: {full.findings}")
    assert [finding for finding in full.findings if "still_pkey" in finding] != [], full.findings
    assert all("\n" not in finding for finding in full.findings)
    assert [finding for finding in sample.findings if "still_pkey" in finding] != [], sample.findings
