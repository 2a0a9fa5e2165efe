"""A bad assertion in the config stops the command with one line naming its YAML path (exit 3)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import verifier


def test_a_bad_expect_is_one_line_naming_the_yaml_path_and_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "source: {dbname: app}\n"
        f"repository: {{path: {tmp_path / 'repo'}}}\n"
        "verify:\n  assertions:\n    - {name: plans, sql: 'SELECT count(*) FROM plans', expect: '>= three'}\n"
    )
    completed = verifier("check", "--config", config)
    assert completed.returncode == 3
    assert completed.stdout == ""
    [line] = completed.stderr.strip().splitlines()
    assert "verify.assertions[0].expect:" in line and "'three' is not a number" in line
    assert "Traceback" not in completed.stderr
