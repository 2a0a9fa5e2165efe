"""Following a run: live progress on a terminal, timestamped step lines in a log.

On a terminal (a pseudo-terminal 80 columns wide) the dump shows the bytes written, the restore
the rows restored of the snapshot's total, counting the tables done of how many, each with the
elapsed time; every finished step leaves one summary line. Off a terminal every step has a start
and an end line with an ISO timestamp (journald gets none: it adds its own).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import VERIFIER, plain, verifier_on_terminal
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from verifier.repository.backups import Repository

STEPS = ["snapshot and dump", "integrity", "restore", "compare", "retention", "checks", "report"]
LONG_NAME = "customer_invoice_line_items_with_adjustments_and_credit_notes"  # 61 characters
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def _grow(source_db: SourceDatabase, rows: int) -> None:
    """Adds a table (with a long name) big enough that the dump and the restore take a moment."""
    source_db.execute(
        f"CREATE TABLE {LONG_NAME} AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, {rows}) g"
    )


def _snapshot_rows(repository: Path) -> int:
    """Returns the rows of every table in the newest backup's snapshot (from its manifest)."""
    backup = Repository(repository).newest()
    assert backup is not None and backup.manifest is not None
    return sum(backup.manifest.counts_by_table().values())


def test_a_run_on_a_terminal_shows_how_far_each_step_is(source_db: SourceDatabase, tmp_path: Path) -> None:
    _grow(source_db, 1_500_000)
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    code, shown = verifier_on_terminal("run", "--config", config, columns=80)
    assert code == 0, plain(shown)
    visible = plain(shown)
    rows = _snapshot_rows(tmp_path / "repo")
    # live: the dump's bytes and the rows restored while it streams (pg_restore reads along), the
    # counting, elapsed time
    assert re.search(r"snapshot and dump .*\d+(\.\d)? [KM]iB \(", shown)
    live_rows = [int(done.replace(",", "")) for done in re.findall(r"snapshot and dump .*?([\d,]+) rows", shown)]
    assert any(0 < done < rows for done in live_rows), f"no rows restored seen while restoring: {live_rows}"
    assert re.search(r"compare .*\d+/12 tables", shown)
    assert re.search(r"\d:\d\d:\d\d", shown), "no elapsed time"
    # one summary line per finished step, in order, that stays on the screen
    summaries = [line for line in visible.splitlines() if line.split("  ")[0] in STEPS]
    assert [line.split("  ")[0] for line in summaries] == STEPS, visible
    by_step = dict(zip(STEPS, summaries, strict=True))
    assert re.match(
        r"snapshot and dump +[\d.]+ m?s  [\d.]+ [KM]iB written( \([\d.]+ [KM]iB/s\))?, [\d,]+ rows",
        by_step["snapshot and dump"],
    )
    assert "12 of 12 tables" in visible.split("snapshot and dump", 1)[1].split("integrity", 1)[0]
    assert f"{rows:,} of {rows:,} rows restored" in by_step["restore"]
    # the report fits the terminal: the long name wraps instead of being cut
    assert max(len(line) for line in visible.splitlines()) <= 80, visible
    assert "…" not in visible
    lines = visible.splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith(f"public.{LONG_NAME}"[:30]))
    assert "1,500,000" in lines[first]
    assert f"public.{LONG_NAME}" == lines[first].split()[0] + lines[first + 1].strip()


def test_off_a_terminal_each_step_starts_and_ends_with_a_timestamp(source_db: SourceDatabase, tmp_path: Path) -> None:
    _grow(source_db, 300_000)
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    environment = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
    completed = subprocess.run(
        [str(VERIFIER), "run", "--config", str(config)], capture_output=True, text=True, env=environment, check=False
    )
    assert completed.returncode == 0, completed.stderr
    rows = _snapshot_rows(tmp_path / "repo")
    step_lines = [line for line in completed.stderr.splitlines() if " verifier: step " in line]
    for line in step_lines:
        assert re.match(rf"{TIMESTAMP} INFO verifier: step ", line), line
    events = [re.sub(rf"^{TIMESTAMP} INFO verifier: step ", "", line) for line in step_lines]
    expected = [event for step in STEPS for event in (f"{step}: started", f"{step}: done in")]
    assert [event if event.endswith("started") else event.split(" in ")[0] + " in" for event in events] == expected
    ends = {event.split(":")[0]: event for event in events if "done in" in event}
    assert re.search(
        r"[\d.]+ [KM]iB written( \([\d.]+ [KM]iB/s\))?, [\d,]+ rows restored, 12 of 12 tables counted$",
        ends["snapshot and dump"],
    )
    assert ends["restore"].endswith(f", {rows:,} of {rows:,} rows restored")
    assert ends["compare"].endswith(", 12 of 12 tables counted")
    assert "\x1b[" not in completed.stderr + completed.stdout, "terminal escapes in a log"


def test_under_journald_lines_carry_a_priority_and_no_timestamp(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    (tmp_path / "repo").mkdir(mode=0o700)  # an empty repository (check never creates one)
    completed = subprocess.run(
        [str(VERIFIER), "check", "--quick", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "JOURNAL_STREAM": "8:12345"},
        check=False,
    )
    assert completed.returncode == 2, completed.stderr  # no backup yet
    lines = completed.stderr.splitlines()
    assert "<6>verifier: step checks: started" in lines
    assert not any(re.match(TIMESTAMP, line) for line in lines)
