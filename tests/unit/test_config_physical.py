"""The `physical:` section: absent is off, its example is valid, each problem is one line by YAML path."""

from __future__ import annotations

from importlib import resources

import pytest

from verifier.config import parse_config
from verifier.errors import ConfigError


def problems_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environment={})
    return str(caught.value)


def test_absent_means_off() -> None:
    assert parse_config("source: {dbname: x}\n").physical is None


def test_the_example_configs_physical_section_is_valid_once_uncommented() -> None:
    text = resources.files("verifier").joinpath("config.example.yaml").read_text()
    start = text.index("# physical:")
    end = text.index("\n\n", start)
    uncommented = "\n".join(line.removeprefix("# ") for line in text[start:end].splitlines())
    config = parse_config(text[:start] + uncommented + text[end:], environment={"PGPASSWORD": "x"})
    assert config.physical is not None
    assert (config.physical.tool, config.physical.stanza, config.physical.repo) == ("pgbackrest", "main", 1)
    assert (config.physical.target, config.physical.amcheck) == ("exact", "full")
    assert (config.physical.instant_wait, config.physical.archive_wait, config.physical.recovery_timeout) == (
        300.0,
        300.0,
        3600.0,
    )


def test_defaults() -> None:
    physical = parse_config("source: {dbname: x}\nphysical: {stanza: main}\n").physical
    assert physical is not None
    assert (physical.tool, physical.config, physical.repo, physical.target, physical.amcheck) == (
        "pgbackrest",
        None,
        None,
        "exact",
        "full",
    )


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("{}", "physical.stanza: required"),
        ("{stanza: main, tool: barman}", "physical.tool: expected 'pgbackrest', got \"barman\""),
        ("{stanza: main, target: lsn}", "physical.target: expected one of 'exact', 'restore-point' or 'latest'"),
        ("{stanza: main, amcheck: some}", "physical.amcheck: expected one of 'full', 'sample' or 'off'"),
        ("{stanza: main, repo: 0}", "physical.repo:"),
        ("{stanza: 'a b'}", "physical.stanza:"),
        ("{stanza: main, stnza: x}", "physical.stnza: unknown key"),
        ("{stanza: main, archive_wait: soon}", "physical.archive_wait: expected a duration"),
    ],
)
def test_each_problem_is_one_line_by_its_yaml_path(section: str, line: str) -> None:
    message = problems_of(f"source: {{dbname: x}}\nphysical: {section}\n")
    assert line in message
    assert "\n" not in message
