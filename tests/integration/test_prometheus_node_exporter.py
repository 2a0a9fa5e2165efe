"""The agent's Prometheus textfile as its consumer reads it: a real `verifier run` on a real PostgreSQL
writes it, a real node_exporter's textfile collector serves it without a scrape error, and what it serves
carries every table of the proof with its `db` and `table` labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import SourceDatabase
from tests.support.node_exporter import installed, node_exporter, scrape
from tests.support.requirements import need
from verifier.names import qualified
from verifier.pipeline import commands

pytestmark = pytest.mark.integration


def test_node_exporter_serves_every_table_of_a_real_run(source_db: SourceDatabase, tmp_path: Path) -> None:
    need(installed(), "node_exporter (dev/install-prometheus)")
    directory = tmp_path / "textfile"
    directory.mkdir()
    config = source_db.config(tmp_path / "repo", prometheus={"textfile": str(directory / "pgbv.prom")})
    report = commands.run(config)
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.every_result]
    assert report.verification is not None and len(report.verification.tables) > 5

    with node_exporter(directory) as url:
        served = {family.name: family for family in text_string_to_metric_families(scrape(url))}
    [error] = served["node_textfile_scrape_error"].samples
    assert error.value == 0, "node_exporter could not read the file"
    rows = {
        (sample.labels["db"], sample.labels["table"]): sample.value for sample in served["pgbackup_table_rows"].samples
    }
    expected = {
        (source_db.dbname, qualified(table.schema, table.table)): table.snapshot_rows
        for table in report.verification.tables
    }
    assert rows == expected
    [verified] = served["pgbackup_verify_ok"].samples
    assert verified.labels == {"db": source_db.dbname} and verified.value == 1
