"""The night's opening lines (console, journal, the e-mail's text) read at 80 columns: one line per
database, and a not-OK database's why and the night's notes wrapped under it, indented, never cut
mid-word past the 80th column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from verifier.pipeline.night_report import DatabaseNight, Night
from verifier.repository.backups import Backup

FINISHED = datetime(2026, 12, 7, 3, 40, tzinfo=UTC)
WHY = (
    'restore: restore failed in TABLE DATA items (TOC 3349): COPY failed for table "items": relation '
    '"lookup" does not exist; the CHECK constraint on items calls label_of(), which reads lookup without '
    "a schema, and pg_restore runs with an empty search_path, so every row of items is refused"
)
NOTE = (
    "3 backup(s) of the single-database form lie at the root of /var/backups/pg-backup-verifier: left "
    "untouched (not proven, not pruned); move or delete them yourself"
)


def backup(name: str, hours: int) -> Backup:
    created = FINISHED - timedelta(hours=hours, minutes=5)
    return Backup(name, Path(f"/r/{name}.dump"), None, None, created, 1024, "custom")


def night() -> Night:
    return Night(
        "20261207T030000Z-ab12",
        FINISHED - timedelta(minutes=40),
        FINISHED,
        [
            DatabaseNight("app", "ran", None, backup("app_1", 0), 3, problem=None),
            DatabaseNight("billing_archive", "failed", None, backup("billing_1", 26), 4, problem=WHY),
            DatabaseNight("cms", "vanished", None, backup("cms_1", 50), 2),
        ],
        sandbox_starts=1,
        notes=[NOTE],
    )


def test_every_line_fits_80_columns_and_nothing_is_lost() -> None:
    lines = night().summary_lines(UTC)

    assert all(len(line) <= 80 for line in lines), "\n".join(line for line in lines if len(line) > 80)
    assert lines[0].startswith("app              2026-12-07 03:35 UTC    0h 5m  ")
    assert lines[1] == "billing_archive  2026-12-06 01:35 UTC    1d 2h  FAILED"
    why = [line for line in lines if line.startswith("    ")]
    assert why[0].startswith("    restore: restore failed in TABLE DATA items")
    assert " ".join(line.strip() for line in why[:3]).startswith(WHY[:150])
    warning = lines.index(next(line for line in lines if line.startswith("WARNING: ")))
    assert " ".join(line.strip() for line in lines[warning:-1]) == f"WARNING: {NOTE}"  # a note is never cut
    assert lines[-1] == "3 databases; the sandbox started 1 time; exit 2"


def test_a_why_longer_than_three_lines_ends_in_an_ellipsis() -> None:
    lines = night().summary_lines(UTC)
    cms = next(index for index, line in enumerate(lines) if line.startswith("cms "))
    why = lines[2:cms]  # between billing_archive's line and the next database's
    assert len(why) == 3 and all(line.startswith("    ") for line in why), why
    assert why[-1].endswith("…")  # its whole report follows
