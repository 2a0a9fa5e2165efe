"""`verifier check --physical` end to end: the newest pgBackRest backup recovered to the instant, compared
through every kind of evidence the logical proof uses, with the logical proof's checks, verdict, exit code
and reports. Real PostgreSQL, real pgBackRest, a writer running throughout."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.integration.physical.conftest import DamagingEngine, PhysicalProduction
from verifier.cli.main import main
from verifier.config import Config
from verifier.manifest import Manifest
from verifier.physical.pgbackrest import PgBackRest
from verifier.physical.wal import segment_name, segment_number
from verifier.pipeline.commands import check_physical
from verifier.pipeline.selftest import run_physical_selftest
from verifier.postgres import catalog
from verifier.postgres.evidence import CHECKS
from verifier.report import Status

RESULT = re.compile(
    r"restored backup (\d{8}-\d{6}F(?:_\d{8}-\d{6}I)?) to LSN ([0-9A-F]+/[0-9A-F]+) \(exact\): "
    r"every table equal to production at that instant"
)

DURATION = r"(\d+ ms|[\d.]+ s|\d+m \d\ds|\d+h \d\dm)"  # units.format_seconds


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

    def delete_a_row(connect: catalog.Connector, manifest: Manifest) -> None:
        with connect() as connection:
            connection.execute("DELETE FROM still WHERE id = 7")

    report = check_physical(config, damage=delete_a_row)
    assert report.exit_code == 2
    results = {result.name: result for result in report.results}
    assert results["row_counts"].status is Status.CRITICAL and "public.still" in results["row_counts"].summary
    assert results["physical"].status is Status.CRITICAL
    assert "not as production held it (row_counts, contents)" in results["physical"].summary


def test_a_wal_segment_missing_from_the_archive_is_critical_in_one_line(
    logical_production: PhysicalProduction, tmp_path: Path
) -> None:
    production = logical_production
    production.backup("full")
    (backup,) = PgBackRest(production.physical).inventory().backups
    for _ in range(3):
        production.execute("INSERT INTO u (t_count) VALUES (1); SELECT pg_switch_wal()")
    segment_bytes = 16 * 1024 * 1024
    lost = segment_name(1, (segment_number(backup.wal_stop, segment_bytes) + 1) * segment_bytes, segment_bytes)
    archived = wait_for(lambda: list(production.repository.glob(f"archive/prod/*/{lost[:16]}/{lost}-*[0-9a-f]")))
    archived[0].unlink()  # not the `.pgbackrest.tmp` pgBackRest writes first
    config = Config.model_validate(physical_config(production, tmp_path / "repository"))
    report = check_physical(config)
    assert report.exit_code == 2
    restore = next(result for result in report.results if result.name == "restore")
    assert restore.status is Status.CRITICAL
    assert restore.summary.startswith(f"restore not possible: WAL segment {lost} is missing from the archive: ")
    assert "physical" not in {result.name for result in report.results}  # `restore` says it, once
    assert report.verification is not None and report.verification.physical is not None
    assert report.verification.physical.label == backup.label  # the backup that failed: list --physical names it


def test_a_restore_point_says_it_is_not_exact_and_why(replica_production: PhysicalProduction, tmp_path: Path) -> None:
    production = replica_production
    production.backup("full")
    config = Config.model_validate(physical_config(production, tmp_path / "repository", target="restore-point"))
    report = check_physical(config)
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.results]
    physical = next(result for result in report.results if result.name == "physical")
    assert re.fullmatch(
        r"restored backup \d{8}-\d{6}F to restore point pgbv_\S+ at LSN [0-9A-F]+/[0-9A-F]+ \(not exact: "
        r"wal_level = replica has no snapshot at an LSN: a transaction committed between the snapshot and the "
        r"restore point is in one only\): every table equal to production's snapshot beside it",
        physical.summary,
    ), physical.summary
    assert report.verification is not None and not report.verification.exact


def wait_for(found: Callable[[], list[Path]], seconds: float = 60) -> list[Path]:
    """Returns what `found` finds once it finds anything (pgBackRest archives asynchronously to the test)."""
    deadline = time.monotonic() + seconds
    while not (paths := found()):
        assert time.monotonic() < deadline, "the segment was not archived in time"
        time.sleep(0.2)
    return paths


def test_run_proves_the_physical_backup_beside_the_logical_dump_or_alone(
    logical_production: PhysicalProduction, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    production = logical_production
    production.backup("full")
    data = physical_config(production, tmp_path / "repository", amcheck="sample")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    assert main(["run", "--json", "--config", str(config_path)]) == 0
    logical, physical = json.loads(capsys.readouterr().out)  # one JSON document holding both reports
    assert (logical["command"], physical["command"]) == ("run", "run --physical")
    summaries = {result["name"]: result["summary"] for result in physical["results"]}
    assert RESULT.fullmatch(summaries["physical"]), summaries
    config_path.write_text(yaml.safe_dump({**data, "dump": {"enabled": False}}))
    assert main(["run", "--config", str(config_path)]) == 0
    alone = " ".join(capsys.readouterr().out.split())
    assert "OK run --physical " in alone and RESULT.search(alone) and "OK run 2" not in alone, alone
    history = [
        report["command"]
        for report in map(json.loads, map(Path.read_text, (tmp_path / "repository").glob("**/reports/*.json")))
    ]
    assert sorted(history) == ["run", "run --physical", "run --physical"]


def test_the_self_test_damages_the_restored_physical_copy_and_each_damage_is_caught(
    logical_production: PhysicalProduction, tmp_path: Path
) -> None:
    production = logical_production
    production.execute(
        "CREATE SEQUENCE counter; SELECT nextval('counter'); "
        "ALTER TABLE still ADD CONSTRAINT name_set CHECK (name <> '')"
    )
    production.backup("full")
    config = Config.model_validate(physical_config(production, tmp_path / "repository", amcheck="off"))
    outcome = run_physical_selftest(config)
    result = outcome.result()
    print(result.summary, *result.details, sep="\n  ")
    assert outcome.passed, result
    assert {damage.check for damage in outcome.damages} >= {"row_counts", "contents", "sequences", "schema"}
    assert result.summary.startswith("all ") and "@0/" in result.summary


def test_an_index_page_damaged_in_the_restored_copy_is_amchecks_critical_finding(
    logical_production: PhysicalProduction, tmp_path: Path
) -> None:
    """The restore is pgBackRest's, then a B-tree leaf page of still_pkey damaged before the server starts
    (test_damage's DamagingEngine: a torn write or a bad disk)."""
    production = logical_production
    production.backup("full")
    ((relation,),) = production.execute("SELECT pg_relation_filepath('still_pkey')")
    engine = DamagingEngine(PgBackRest(production.physical), str(relation))
    config = Config.model_validate(physical_config(production, tmp_path / "repository"))
    report = check_physical(config, engine=engine)
    assert report.exit_code == 2
    results = {result.name: result for result in report.results}
    assert results["amcheck"].status is Status.CRITICAL
    assert results["amcheck"].summary.startswith("pg_amcheck: ") and "still_pkey" in results["amcheck"].summary
    assert results["physical"].status is Status.CRITICAL and "(amcheck)" in results["physical"].summary


def test_the_reports_have_the_physical_section_and_list_shows_the_proof(
    logical_production: PhysicalProduction, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text and HTML reports of a real proof (an incremental backup: its label and type) carry the
    "Physical backup" section, pg_amcheck says how many relations it checked, and `list --physical` shows
    the backup proven and the newest proof's line."""
    production = logical_production
    production.backup("full")
    production.execute("INSERT INTO still SELECT g, 'later ' || g FROM generate_series(301, 400) g")
    production.backup("incr")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(physical_config(production, tmp_path / "repository")))
    assert main(["check", "--physical", "--config", str(config_path)]) == 0
    capsys.readouterr()
    assert main(["report", "--format", "text", "--config", str(config_path)]) == 0
    text = capsys.readouterr().out
    section = text.split("\nPhysical backup:\n", 1)[1].split("\n\n", 1)[0]
    print(section)
    verdict = RESULT.search(" ".join(section.split()))
    assert verdict is not None, section
    label, lsn = verdict.groups()
    assert label.endswith("I"), label
    facts = {
        name.strip(): value.strip()
        for name, _, value in (line.partition(":") for line in section.splitlines()[1:] if not line.startswith("    -"))
    }
    assert facts["Backup"] == f"{label} (incremental)" and facts["Instant"] == f"LSN {lsn} (exact)"
    assert re.fullmatch(rf"{DURATION}, to a promoted copy", facts["Restore (RTO)"]), facts
    assert facts["Archive lag (RPO)"].endswith(" since the newest WAL segment was archived")
    moment = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(rf"{moment} … {moment} \(0h \d+m\)", facts["WAL window"]), facts
    amcheck = re.fullmatch(r"full: ([\d,]+) relations \(([\d,]+) pages\) in .+, no findings", facts["amcheck"])
    assert amcheck is not None and int(amcheck[1].replace(",", "")) >= 6 and amcheck[2] != "0", facts["amcheck"]
    assert re.fullmatch(r"\d+ versions? compared, none differs", facts["Collations"]), facts
    html_file = tmp_path / "report.html"
    assert main(["report", "--format", "html", "--output", str(html_file), "--config", str(config_path)]) == 0
    html = html_file.read_text()
    assert "<h2>Physical backup</h2>" in html and f"{label} (incremental)" in html
    assert RESULT.search(" ".join(html.split('id="physical-verdict"', 1)[1].split("</p>", 1)[0].split()))
    capsys.readouterr()
    assert main(["list", "--physical", "--config", str(config_path)]) == 0
    listing = capsys.readouterr().out
    print(listing)
    lines = listing.splitlines()
    row = next(line for line in lines if line.startswith(label + " "))
    assert re.search(rf"  OK, {DURATION} ago$", row), row
    full_row = next(line for line in lines if line.startswith(label.split("_")[0] + " "))
    assert full_row.endswith("  never"), full_row
    newest = lines.index(next(line for line in lines if line.startswith("newest proof: ")))
    assert lines[newest].endswith("ago), OK") and RESULT.fullmatch(" ".join(" ".join(lines[newest + 1 :]).split()))
    assert max(map(len, lines)) <= 80, listing
