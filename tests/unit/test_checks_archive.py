"""archive on plain data: do the backup's files match their manifest, and did something read the archive
to the end (the archive check itself, or the restore)? Only what happened is said."""

from __future__ import annotations

from pg_backup_verifier_checks.archive import check

from tests.support.check_context import context_with, integrity, verification
from verifier.report import RestoreIssue, Status

NAME = "eatfit24_2026-11-26_00-32-00Z"


def test_intact_files_read_to_the_end_are_ok() -> None:
    result = check(context_with(integrity=integrity()))
    assert result is not None and result.status is Status.OK
    assert result.summary == f"{NAME}: checksums match the manifest; the archive reads to the end"
    assert result.metrics == {"ok": 1, "seconds": 0.4}


def test_ok_says_what_read_the_archive_and_whether_anything_did() -> None:
    unread = integrity(checksummed=False, read_through=False)
    by_restore = check(context_with(integrity=unread, verification=verification()))
    no_restore = check(context_with(integrity=unread))
    incomplete = check(context_with(integrity=unread, verification=verification(restored=False, error="timed out")))
    summaries = [result.summary if result is not None else None for result in (by_restore, no_restore, incomplete)]
    assert summaries == [
        f"{NAME}: no manifest to checksum against; the restore read it to the end",
        f"{NAME}: no manifest to checksum against; not read to the end: no restore ran",
        f"{NAME}: no manifest to checksum against; not read to the end: the restore did not complete",
    ]
    assert all(result is not None and result.status is Status.OK for result in (by_restore, no_restore, incomplete))


def test_damaged_files_are_critical_naming_each_problem() -> None:
    damaged = integrity("eatfit24.dump: sha256 differs in bytes 0-16777215", "eatfit24.dump: 120 bytes missing")
    result = check(context_with(integrity=damaged))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == f"{NAME} is damaged: eatfit24.dump: sha256 differs in bytes 0-16777215"
    assert result.details == ("eatfit24.dump: 120 bytes missing",)
    assert result.metrics == {"ok": 0}


def test_an_archive_the_restore_could_not_read_is_critical() -> None:
    unreadable = RestoreIssue("archive", "could not read from input file: end of file")
    restored = verification(restored=False, restore_issues=[unreadable])
    result = check(context_with(integrity=integrity(read_through=False), verification=restored))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == f"{NAME}: could not read from input file: end of file"
    assert result.metrics == {"ok": 0}


def test_without_a_backup_examined_there_is_nothing_to_say() -> None:
    assert check(context_with(verification=verification())) is None
