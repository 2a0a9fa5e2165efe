"""A damaged manifest of an older backup is said where people look (issue 21.10): `list` showed the
backup as `(no manifest) … OK` while the truncated manifest was only a WARNING on stderr, and
`check --quick` never looked at the manifests of the backups it was not checking."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from tests.support.html_rows import table_rows, visible_text
from verifier.repository.backups import Repository


def _two_backups_the_older_with_a_truncated_manifest(source_db: SourceDatabase, tmp_path: Path) -> tuple[Path, str]:
    """Returns the config and the older backup's name, its manifest cut in half after both were verified."""
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    for _ in range(2):
        completed = verifier("run", "--config", config)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    older = Repository(tmp_path / "repo").backups()[0]
    assert older.manifest_path is not None
    text = older.manifest_path.read_text()
    older.manifest_path.write_text(text[: len(text) // 2])
    return config, older.name


def test_list_does_not_show_a_backup_with_a_truncated_manifest_as_ok(source_db: SourceDatabase, tmp_path: Path) -> None:
    config, older = _two_backups_the_older_with_a_truncated_manifest(source_db, tmp_path)
    listing = verifier("list", "--config", config)
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith(older)]
    assert "(no manifest)" not in row and not row.rstrip().endswith("OK"), row
    assert "manifest unreadable" in row, row
    (entry,) = [found for found in json.loads(verifier("list", "--config", config, "--json").stdout)
                if found["name"] == older]  # fmt: skip
    assert entry["problem"].startswith("manifest unreadable"), entry


def test_check_quick_reports_a_truncated_manifest_of_an_older_backup(source_db: SourceDatabase, tmp_path: Path) -> None:
    config, older = _two_backups_the_older_with_a_truncated_manifest(source_db, tmp_path)
    completed = verifier("check", "--quick", "--config", config, "--json")
    report = json.loads(completed.stdout)
    warned = [result for result in report["results"] if result["status"] != "OK" and older in result["summary"]]
    assert warned, report["results"]
    assert "manifest unreadable" in warned[0]["summary"] + " ".join(warned[0]["details"])
    assert completed.returncode == 1, completed.stdout + completed.stderr


def test_the_html_report_does_not_show_a_backup_with_a_truncated_manifest_as_verified(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    config, older = _two_backups_the_older_with_a_truncated_manifest(source_db, tmp_path)
    page = tmp_path / "report.html"
    assert verifier("check", "--quick", "--config", config).returncode == 1
    written = verifier("report", "--config", config, "--format", "html", "--output", page)
    assert written.returncode == 0, written.stderr
    html = page.read_text()
    (row,) = [row for row in table_rows(html, "backups") if row.startswith(older)]
    assert "untrusted: manifest unreadable" in row and "verified" not in row.replace("untrusted", ""), row
    assert "(no manifest)" not in row
    assert f"WARNING from backup_count: 2 backups, 1 of them untrusted: {older}" in visible_text(html)
