"""`verifier config example`: every key, set or commented out, appears once in its section (issue 22.10:
the `assertions` block was printed twice)."""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources

import pytest

KEY = re.compile(r"^(?P<indent> *)(?:# )?(?P<key>[a-z_]+):")


def _keys_by_section(text: str) -> Counter[tuple[str, str]]:
    """Returns how often each (section, key) appears, keys set or commented out directly under a section."""
    seen: Counter[tuple[str, str]] = Counter()
    section = ""
    for line in text.splitlines():
        found = KEY.match(line)
        if found is None:
            continue
        if found["indent"] == "" and not line.startswith("#"):
            section = found["key"]
        elif found["indent"] == "  ":
            seen[(section, found["key"])] += 1
    return seen


def test_every_key_of_the_example_appears_once_in_its_section() -> None:
    text = resources.files("verifier").joinpath("config.example.yaml").read_text()
    seen = _keys_by_section(text)
    assert ("verify", "assertions") in seen
    assert {key: count for key, count in seen.items() if count > 1} == {}


def test_the_readme_states_the_timers_default_time_and_zone() -> None:
    from pathlib import Path

    from verifier.config import ScheduleConfig

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    stated = re.findall(r"OnCalendar=\*-\*-\* (\d\d:\d\d):00 ([\w/+-]+)`", readme)
    default = ScheduleConfig()
    assert stated, "the README no longer shows the timer's OnCalendar line"
    assert stated[0] == (default.at, default.timezone)


def test_deploys_example_is_the_packaged_one_and_loads_through_the_config_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deploy/config.example.yaml, beside the units, is the very file `verifier config example` prints (a link,
    so the two cannot differ), and it loads through `load_config` as an operator's copy of it would."""
    from pathlib import Path

    from verifier.config import load_config

    root = Path(__file__).resolve().parents[2]
    deployed, packaged = root / "deploy" / "config.example.yaml", root / "verifier" / "config.example.yaml"
    assert deployed.is_symlink(), "deploy/config.example.yaml must stay a link to verifier/config.example.yaml"
    assert deployed.resolve() == packaged.resolve()
    assert deployed.read_text() == resources.files("verifier").joinpath("config.example.yaml").read_text()
    monkeypatch.setenv("PGPASSWORD", "x")  # the example's ${PGPASSWORD}
    config = load_config(deployed)
    assert (config.source.dbname, config.repository.path.as_posix()) == ("eatfit24", "/var/backups/pg-backup-verifier")
