"""Usage errors and `--help`, through the installed console script.

A usage error (unknown command or option, a bad value, a file argument that does not exist) is
exit 3 with one line that points at the command's `--help`; exit 2 is kept for CRITICAL.
Every subcommand's `--help` is compared with a snapshot in `tests/e2e/help/` (regenerate with
`UPDATE_SNAPSHOTS=1`), and each has a one-line description.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import VERIFIER, verifier
from verifier.cli.main import build_parser

SNAPSHOTS = Path(__file__).parent / "help"


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Returns every command path of the parser ((), ("run",), ("config", "check"), …)."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("frobnicate",), "verifier: argument COMMAND: invalid choice: 'frobnicate'"),
        (("check", "--frob"), "verifier check: unrecognized arguments: --frob"),
        (("history", "--last", "x"), "verifier history: argument --last: invalid int value: 'x'"),
        (("report", "--format", "pdf"), "verifier report: argument --format: invalid choice: 'pdf'"),
        (("check", "--backup", "/nonexistent/backup.sql.gz"), "verifier check: argument --backup: no such file"),
        (("config",), "verifier config: the following arguments are required: COMMAND"),
        ((), "verifier: the following arguments are required: COMMAND"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_usage_error_is_exit_3_with_one_line_and_a_help_pointer(arguments: tuple[str, ...], expected: str) -> None:
    completed = verifier(*arguments)
    assert completed.returncode == 3, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(expected), lines[0]
    command = expected.split(":")[0]
    assert lines[0].endswith(f"(see `{command} --help`)"), lines[0]
    assert completed.stdout == ""


def test_missing_backup_file_is_a_usage_error_even_with_a_valid_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: app}}\nrepository: {{path: {tmp_path / 'repo'}}}\n")
    completed = verifier("check", "--config", config, "--backup", tmp_path / "nope.dump")
    assert completed.returncode == 3
    assert completed.stderr.strip() == (
        f"verifier check: argument --backup: no such file: {tmp_path / 'nope.dump'} (see `verifier check --help`)"
    )
    assert not (tmp_path / "repo").exists(), "a usage error must not create the repository"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "verifier")
def test_help_matches_its_snapshot_and_describes_the_command(command: tuple[str, ...]) -> None:
    completed = subprocess.run(
        [str(VERIFIER), *command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    paragraphs = completed.stdout.split("\n\n")
    assert len(paragraphs) >= 3 and not paragraphs[1].startswith(("options:", "positional")), (
        f"`verifier {' '.join(command)} --help` has no description"
    )
    assert max(len(line) for line in completed.stdout.splitlines()) <= 80
    snapshot = SNAPSHOTS / f"{'_'.join(('verifier', *command))}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(completed.stdout)
    assert snapshot.exists(), f"no snapshot {snapshot.name}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert completed.stdout == snapshot.read_text()


def test_missing_config_hint_is_a_command_that_works_as_written(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "pg-backup-verifier" / "config.yaml"
    completed = verifier("check", "--config", config)
    assert completed.returncode == 3
    hint = completed.stderr.split("`")[1]
    assert hint == f"install -d -m 0700 {config.parent} && verifier config example > {config}"
    shell = subprocess.run(
        ["bash", "-c", hint], env={**os.environ, "PATH": f"{VERIFIER.parent}:{os.environ['PATH']}"}, check=False
    )
    assert shell.returncode == 0
    validated = subprocess.run(
        [str(VERIFIER), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": "example"},
        check=False,
    )
    assert validated.returncode == 0, validated.stderr  # the sample is a valid config once edited
