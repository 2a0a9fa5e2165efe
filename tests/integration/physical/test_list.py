"""`verifier list --physical`: pgBackRest's backups newest first and the WAL window, as a table or JSON,
from a real repository, none proven yet (test_check_physical shows a proof listed); without a physical:
section, one line and exit 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.physical.conftest import STANZA, PhysicalProduction
from verifier.cli.main import main


def write_config(path: Path, production: PhysicalProduction, *, physical: bool = True) -> Path:
    data: dict[str, object] = {
        "source": {"host": production.cluster.host, "port": production.cluster.port, "dbname": "postgres"},
        "repository": {"path": str(path.parent / "repository")},
    }
    if physical:
        data["physical"] = {"stanza": STANZA, "config": str(production.physical.config)}
    path.write_text(yaml.safe_dump(data))
    return path


def test_list_physical_shows_the_backups_newest_first_and_the_wal_window(
    logical_production: PhysicalProduction, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    production = logical_production
    production.backup("full")
    production.execute("INSERT INTO u (t_count) VALUES (1)")
    production.backup("incr")
    config = write_config(tmp_path / "config.yaml", production)
    assert main(["list", "--physical", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["backup", "type", "age", "size", "proven"]
    assert lines[1].split()[1] == "incr" and lines[2].split()[1] == "full"
    assert lines[1].split()[0].startswith(lines[2].split()[0] + "_")
    assert lines[1].endswith("  never") and lines[2].endswith("  never")
    assert lines[3].startswith("WAL archive: 000000010000000000000001 … ")
    assert lines[4].startswith("recoverable: ") and lines[4].endswith(" ago)")
    assert lines[5] == "newest proof: none yet (verifier check --physical proves the newest backup)"
    assert main(["list", "--physical", "--json", "--config", str(config)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [backup["type"] for backup in listed["backups"]] == ["incr", "full"]
    assert listed["wal"]["oldest"] == "000000010000000000000001"
    assert 0 <= listed["wal"]["archive_lag_seconds"] < 600
    assert listed["newest_proof"] is None and [backup["proof"] for backup in listed["backups"]] == [None, None]


def test_list_physical_without_the_section_says_what_to_add(
    logical_production: PhysicalProduction, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", logical_production, physical=False)
    assert main(["list", "--physical", "--config", str(config)]) == 3
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].endswith(
        "no physical: section in the config: name the pgBackRest stanza there (physical: {stanza: …})"
    )
