"""The code cites the project's own architecture document, docs/ARCHITECTURE.md, by section, and every
section it cites exists; nothing cites DESIGN.md, a file that was never in the repository (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "ARCHITECTURE.md"
SEARCHED = ("verifier", "checks", "tests", "benchmarks", "dev", "deploy", "docs", "zabbix-templates")
TOP_LEVEL = ("README.md", "install.sh", "pyproject.toml")
# cited as: docs/ARCHITECTURE.md "Exit codes", ARCHITECTURE.md's "Zabbix keys and the template", or with a comma
CITATION = re.compile(r"ARCHITECTURE\.md(?:'s)?,?\s+(?:#\s*)?\"([^\"\n]+)\"")
# files of others' parts of issue 23 that still cite DESIGN.md; each leaves this list when it is changed


def searched_files() -> list[Path]:
    files = [ROOT / name for name in TOP_LEVEL]
    for folder in SEARCHED:
        files += [path for path in (ROOT / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    return [path for path in files if path.exists() and path.suffix not in {".png", ".pyc"}]


def sections() -> set[str]:
    return {
        line.lstrip("#").strip() for line in DOCUMENT.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    }


def test_every_cited_section_of_the_architecture_document_exists() -> None:
    known = sections()
    cited = {
        (str(path.relative_to(ROOT)), section)
        for path in searched_files()
        for section in CITATION.findall(path.read_text(encoding="utf-8", errors="replace"))
    }
    assert cited, "no file cites a section of docs/ARCHITECTURE.md any more: is the citation form still this one?"
    assert {(path, section) for path, section in cited if section not in known} == set()


def test_nothing_cites_a_design_document_outside_the_repository() -> None:
    citing = {
        str(path.relative_to(ROOT))
        for path in searched_files()
        if path != Path(__file__).resolve() and "DESIGN.md" in path.read_text(encoding="utf-8", errors="replace")
    }
    assert citing == set()
