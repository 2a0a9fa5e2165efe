"""`verifier check --physical` end to end: the newest pgBackRest backup recovered to the instant, compared
through every kind of evidence the logical proof uses, with the logical proof's checks, verdict, exit code
and reports. Real PostgreSQL, real pgBackRest, a writer running throughout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.integration.physical.conftest import PhysicalProduction
from verifier.cli.main import main
from verifier.config import Config
from verifier.pipeline.commands import check_physical
from verifier.postgres import catalog
from verifier.postgres.evidence import CHECKS
from verifier.report import Status

RESULT = re.compile(
    r"restored backup (\d{8}-\d{6}F(?:_\d{8}-\d{6}I)?) to LSN ([0-9A-F]+/[0-9A-F]+) \(exact\): "
    r"every table equal to production at that instant"
)


def physical_config(production: PhysicalProduction, repository: Path, **physical: object) -> dict[str, object]:
    return {
        "source": {"host": production.cluster.host, "port": production.cluster.port, "dbname": "postgres",
                   "user": "postgres"},
        "repository": {"path": str(repository)},
        "checks": {"min_count": 1},
        "physical": {"stanza": production.physical.stanza, "config": str(production.physical.config), **physical},
    }  # fmt: skip


def test_check_physical_proves_every_kind_exactly_while_production_writes(
    logical_production: PhysicalProduction, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    production = logical_production
    production.execute("CREATE SEQUENCE counter; SELECT nextval('counter')")
    writer = production.write_continuously()
    try:
        production.backup("full")
        production.backup("incr")
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(physical_config(production, tmp_path / "repository")))
        code = main(["check", "--physical", "--config", str(config_path)])
    finally:
        production.stop_writing(writer)
    output = capsys.readouterr().out
    print(output)
    assert code == 0, output
    found = RESULT.search(" ".join(output.split()))
    assert found is not None, output
    (report_file,) = (tmp_path / "repository").glob("**/reports/*.json")
    report = json.loads(report_file.read_text())
    assert report["command"] == "check --physical" and report["exit_code"] == 0
    results = {result["name"]: result for result in report["results"]}
    assert results["physical"]["status"] == "OK" and RESULT.fullmatch(results["physical"]["summary"])
    assert results["amcheck"]["status"] == "OK" and results["collations"]["status"] == "OK"
    assert report["verification"]["instant"] == f"LSN {found.group(2)} (exact)"
    compared = set(report["verification"]["findings"])
    assert {"row_counts", "schema", "contents", "sequences", "amcheck", "collations"} <= compared
    assert set(CHECKS) - compared <= {"large_objects", "materialized_views", "replication"}, compared
    tables = {(table["schema"], table["table"]): table for table in report["verification"]["tables"]}
    assert tables[("public", "t")]["snapshot_rows"] == tables[("public", "t")]["restored_rows"] > 0


def test_a_row_deleted_in_the_restored_copy_is_critical(logical_production: PhysicalProduction, tmp_path: Path) -> None:
    """The self-test's hook (as `Proof.prove` has it) deletes a row in the restored copy before it is compared."""
    production = logical_production
    production.backup("full")
    config = Config.model_validate(physical_config(production, tmp_path / "repository", amcheck="off"))

    def delete_a_row(connect: catalog.Connector) -> None:
        with connect() as connection:
            connection.execute("DELETE FROM still WHERE id = 7")

    report = check_physical(config, damage=delete_a_row)
    assert report.exit_code == 2
    results = {result.name: result for result in report.results}
    assert results["row_counts"].status is Status.CRITICAL and "public.still" in results["row_counts"].summary
    assert results["physical"].status is Status.CRITICAL
    assert "differs from production (row_counts, contents)" in results["physical"].summary
