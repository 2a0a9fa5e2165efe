"""docs/pitr.md and the README's PITR section name only configuration that exists: every YAML block loads
through the agent's own config reader (unknown keys are errors there), and every `physical.KEY` or
`KEY: value` the prose names for the physical: section is a field of it with a value it accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from verifier.config import parse_config
from verifier.config_physical import PhysicalConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pitr.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOTTED = re.compile(r"\bphysical\.([a-z_]+)\b")
SETTING = re.compile(r"`([a-z_]+): ([A-Za-z0-9_.-]+)`")
MINIMAL_SOURCE = {"source": {"host": "127.0.0.1", "dbname": "app"}}


def yaml_blocks(text: str) -> list[str]:
    """Returns the text of every ```yaml block of a Markdown `text`."""
    return YAML_BLOCK.findall(text)


def pitr_section(readme: str) -> str:
    """Returns the README's section on point-in-time recovery (its heading to the next one)."""
    found = re.search(r"^## Point-in-time recovery.*?(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert found is not None, "the README has no '## Point-in-time recovery' section"
    return found.group(0)


@pytest.mark.parametrize("where", ["docs/pitr.md", "README.md"])
def test_every_yaml_block_loads_through_the_config_reader(where: str) -> None:
    text = (ROOT / where).read_text(encoding="utf-8")
    if where == "README.md":
        text = pitr_section(text)
    blocks = yaml_blocks(text)
    assert any("physical" in (yaml.safe_load(block) or {}) for block in blocks), f"{where} shows no physical:"
    for block in blocks:
        raw = yaml.safe_load(block)
        config = parse_config(yaml.safe_dump({**MINIMAL_SOURCE, **raw}), origin=where, environment={"PGPASSWORD": "x"})
        assert config.physical is not None or "physical" not in raw


def test_every_physical_key_the_prose_names_exists_with_a_value_it_accepts() -> None:
    text = DOC.read_text(encoding="utf-8") + pitr_section((ROOT / "README.md").read_text(encoding="utf-8"))
    fields = set(PhysicalConfig.model_fields)
    dotted = set(DOTTED.findall(text))
    assert dotted, "the doc names no physical.KEY"
    assert dotted - fields == set()
    settings = [(key, value) for key, value in SETTING.findall(text) if key in fields]
    assert ("target", "exact") in settings and ("target", "restore-point") in settings
    for key, value in settings:
        PhysicalConfig.model_validate({"stanza": "main", key: yaml.safe_load(value)})


def test_the_readme_links_the_walkthrough() -> None:
    assert "(docs/pitr.md)" in pitr_section((ROOT / "README.md").read_text(encoding="utf-8"))
