"""`prometheus: {textfile: …}`: after a real `verifier run` and `check` on a real PostgreSQL, the textfile
parses with prometheus-client's own parser and carries every table of the proof with its labels; a path
that cannot be written is one WARNING line, never a traceback, never the backup's failure."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from verifier.names import qualified

ENOENT = "No such file or directory"


def samples(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Returns the file's samples by metric name, then by their sorted labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_run_and_check_write_every_table_with_its_labels(source_db: SourceDatabase, tmp_path: Path) -> None:
    textfile = tmp_path / "node-exporter" / "pg_backup_verifier.prom"
    textfile.parent.mkdir()
    config = write_config(
        tmp_path / "config.yaml", source_db, tmp_path / "repo", prometheus={"textfile": str(textfile)}
    )
    run = verifier("run", "--config", config)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644  # node_exporter reads it as another user
    assert [path.name for path in textfile.parent.iterdir()] == [textfile.name]  # no temporary file left
    after_run = samples(textfile)
    db = (("db", source_db.dbname),)
    assert after_run["pgbackup_verify_ok"] == {db: 1.0}
    assert after_run["pgbackup_dump_ok"] == {db: 1.0}
    assert after_run["pgbackup_backups"] == {db: 1.0}
    assert after_run["pgbackup_verify_mismatched_tables"] == {db: 0.0}
    assert "pgbackup_offsite_ok" not in after_run and "pgbackup_selftest_ok" not in after_run  # features off

    check = verifier("check", "--config", config, "--json")  # no dump: the run's dump metrics stay
    assert check.returncode == 0, check.stdout + check.stderr
    tables = json.loads(check.stdout)["verification"]["tables"]
    assert any(table["table"] == 'weird "quoted" table' for table in tables)
    after_check = samples(textfile)
    assert after_check["pgbackup_dump_ok"] == {db: 1.0}
    assert (
        after_check["pgbackup_last_report_timestamp_seconds"][db]
        >= after_run["pgbackup_last_report_timestamp_seconds"][db]
    )
    for metric in ("pgbackup_table_rows", "pgbackup_table_restored_rows", "pgbackup_table_rows_diff"):
        labelled = {
            (("db", source_db.dbname), ("table", qualified(table["schema"], table["table"]))): table for table in tables
        }
        assert set(after_check[metric]) == set(labelled), metric
    for labels, table in labelled.items():
        assert after_check["pgbackup_table_restored_rows"][labels] == table["restored_rows"]
        assert after_check["pgbackup_table_rows_diff"][labels] == 0
    assert after_check["pgbackup_db_tables"] == {db: len(tables)}


def test_a_textfile_that_cannot_be_written_is_one_warning_line(source_db: SourceDatabase, tmp_path: Path) -> None:
    textfile = tmp_path / "no-such-directory" / "pg_backup_verifier.prom"
    config = write_config(
        tmp_path / "config.yaml", source_db, tmp_path / "repo", prometheus={"textfile": str(textfile)}
    )
    run = verifier("run", "--config", config)
    assert run.returncode == 1, run.stdout + run.stderr  # a WARNING: the backup itself is proven
    assert "match the snapshot exactly" in run.stdout
    [logged] = [line for line in run.stderr.splitlines() if "metrics not written" in line]  # the journal's line
    assert logged.endswith(f"WARNING verifier.prometheus.textfile: metrics not written to {textfile}: {ENOENT}")
    assert re.search(r"WARNING +prometheus +metrics not written to", run.stdout), run.stdout  # the result row
    [report] = (tmp_path / "repo" / "reports").glob("*.json")
    [delivery] = [result for result in json.loads(report.read_text())["results"] if result["name"] == "prometheus"]
    assert delivery["summary"] == f"metrics not written to {textfile}: {ENOENT}"
    assert "Traceback" not in run.stdout + run.stderr
    assert not textfile.parent.exists()


def test_selftest_adds_its_metrics_and_keeps_the_runs(source_db: SourceDatabase, tmp_path: Path) -> None:
    textfile = tmp_path / "pg_backup_verifier.prom"
    config = write_config(
        tmp_path / "config.yaml", source_db, tmp_path / "repo", prometheus={"textfile": str(textfile)}
    )
    run = verifier("run", "--config", config)
    assert run.returncode == 0, run.stdout + run.stderr
    selftest = verifier("selftest", "--config", config)
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    written = samples(textfile)
    db = (("db", source_db.dbname),)
    assert written["pgbackup_selftest_ok"] == {db: 1.0}
    assert written["pgbackup_selftest_last_run_timestamp_seconds"][db] > 0
    assert written["pgbackup_verify_ok"] == {db: 1.0} and written["pgbackup_table_rows"]  # the run's, kept
