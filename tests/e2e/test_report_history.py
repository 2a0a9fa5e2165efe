"""`verifier report` and `verifier history` after a WARNING night, as a person and a script use them.

The report is produced from the history: text on a terminal, HTML only when asked for with
`--format html` and a file or a pipe; it exits 0 when it was produced and 3 when it could not be,
whatever the night's status was. The history names each run by the id `report --run` takes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.e2e.conftest import plain, verifier, verifier_on_terminal
from tests.integration.conftest import AWKWARD_SCHEMA, SourceDatabase
from tests.support.cli_config import write_config
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.repository.backups import Repository


@pytest.fixture(scope="module")
def warned(production: TemporaryCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config whose repository holds one WARNING `run` (one backup, three wanted) and one `check --quick`."""
    name = f"app_{secrets.token_hex(3)}"
    with production.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = SourceDatabase(production, name)
    database.execute(AWKWARD_SCHEMA)
    directory = tmp_path_factory.mktemp("warned")
    config = write_config(directory / "config.yaml", database, directory / "repo", checks={"min_count": 3})
    try:
        run = verifier("run", "--config", config)
        assert run.returncode == 1, run.stdout + run.stderr
        quick = verifier("check", "--quick", "--config", config)
        assert quick.returncode == 1, quick.stdout + quick.stderr
        yield config
    finally:
        with production.connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _runs(config: Path) -> list[dict[str, object]]:
    completed = verifier("history", "--json", "--config", config)
    assert completed.returncode == 0, completed.stderr
    runs: list[dict[str, object]] = json.loads(completed.stdout)
    return runs


def test_report_on_a_terminal_is_the_text_report_and_exit_0(warned: Path) -> None:
    code, shown = verifier_on_terminal("report", "--config", warned)
    assert code == 0, shown
    text = plain(shown)
    assert "<html" not in text.lower() and "{" not in text
    assert "Backup integrity report" in text
    assert f"Run {_runs(warned)[0]['run_id']}" in text
    assert "WARNING" in text


def test_html_to_a_terminal_is_a_usage_error(warned: Path) -> None:
    code, shown = verifier_on_terminal("report", "--format", "html", "--config", warned)
    assert code == 3
    lines = plain(shown).strip().splitlines()
    assert lines == [
        "verifier report: HTML is not shown on a terminal: add --output FILE, or pipe it (see `verifier report --help`)"
    ]


def test_html_to_a_file_and_to_a_pipe_exit_0(warned: Path, tmp_path: Path) -> None:
    output = tmp_path / "report.html"
    written = verifier("report", "--format", "html", "--output", output, "--config", warned)
    assert written.returncode == 0, written.stderr
    assert written.stderr.strip() == f"wrote {output}"
    assert output.read_text().lstrip().lower().startswith("<!doctype html>")
    piped = verifier("report", "--format", "html", "--config", warned)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == output.read_text()


def test_report_of_an_unknown_run_or_an_unwritable_file_exits_3(warned: Path, tmp_path: Path) -> None:
    unknown = verifier("report", "--run", "19990101T000000Z-0000", "--config", warned)
    assert unknown.returncode == 3
    assert unknown.stderr.strip() == "verifier: no run 19990101T000000Z-0000 in the history (see `verifier history`)"
    ambiguous = verifier("report", "--output", tmp_path / "report.html", "--config", warned)
    assert ambiguous.returncode == 3
    assert ambiguous.stderr.startswith(f"verifier report: --output {tmp_path / 'report.html'} would be plain text")
    assert not (tmp_path / "report.html").exists()
    unwritable = verifier("report", "--output", tmp_path / "missing-dir" / "report.txt", "--config", warned)
    assert unwritable.returncode == 3
    assert "cannot write" in unwritable.stderr and len(unwritable.stderr.strip().splitlines()) == 1


def test_history_shows_run_ids_commands_and_status(warned: Path) -> None:
    runs = _runs(warned)
    assert [run["command"] for run in runs][-1] == "run"
    assert str(runs[0]["command"]).startswith("check")
    completed = verifier("history", "--config", warned)
    assert completed.returncode == 0
    header, *rows = completed.stdout.splitlines()
    assert header.split()[:4] == ["run", "started", "command", "status"]
    assert len(rows) == 2
    for row, run in zip(rows, runs, strict=True):
        assert row.startswith(f"{run['run_id']}  ")
        assert f"  {run['command']}  " in row
        assert f"  {run['status']}  " in row
    for run in runs:  # the id is the one `report --run` takes
        assert verifier("report", "--run", str(run["run_id"]), "--config", warned).returncode == 0


@pytest.mark.parametrize("command", ["history", "list", "report"])
def test_an_unreadable_history_is_one_line_and_exit_3(command: str, tmp_path: Path) -> None:
    repository = Repository(tmp_path / "repo")
    repository.ensure()
    repository.history_path.write_bytes(b"not a database, " * 100)
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: app}}\nrepository: {{path: {repository.path}}}\n")
    completed = verifier(command, "--config", config)
    assert completed.returncode == 3
    assert completed.stderr.strip() == (
        f"verifier: cannot read the run history {repository.history_path}: file is not a database"
    )
