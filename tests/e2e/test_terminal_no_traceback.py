"""No traceback on a terminal, from any thread: the first commands a newcomer types (`verifier demo`,
then `verifier run`) run on a pseudo-terminal, where the live progress display is drawn, and show
nothing but the run (issue 22.3: `Exception in thread restore-progress: … KeyError: 0`)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import plain, verifier_on_terminal
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from verifier.postgres.binaries import Installation

TRACEBACK_MARKS = ("Traceback", "Exception in thread")


def _assert_no_traceback(shown: str) -> None:
    visible = plain(shown)
    for mark in TRACEBACK_MARKS:
        assert mark not in visible, visible


def test_the_demo_on_a_terminal_shows_no_traceback(postgres_installation: Installation) -> None:
    """The demo starts its own clusters: it needs PostgreSQL (and so is not in the fast tier)."""
    code, shown = verifier_on_terminal("demo", columns=80)
    _assert_no_traceback(shown)
    assert code == 0, plain(shown)


def test_a_run_on_a_terminal_shows_no_traceback(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("CREATE TABLE grown AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g")
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    code, shown = verifier_on_terminal("run", "--config", config, columns=80)
    _assert_no_traceback(shown)
    assert code == 0, plain(shown)
