"""The registry on plain data: no check returns UNKNOWN itself; a check that raises is turned into an
UNKNOWN result by `run_checks`, and the other checks still answer. The failing check is a user's plug-in,
installed the way pip would install one (a distribution on sys.path declaring the entry point)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.check_context import config, context_with
from verifier.check_registry import GROUP, load_checks, run_check, run_checks
from verifier.report import Status

PLUGIN = """
def check(context):
    return {"not a result": context.config.source.dbname}["missing key"]  # a bug in the user's check
"""


@pytest.fixture
def raising_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Installs the check `raising` (module raising_check) and a check whose module is missing; yields the name."""
    (tmp_path / "raising_check.py").write_text(PLUGIN)
    info = tmp_path / "raising_check-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raising-check\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nraising = raising_check:check\nabsent = no_such_module:check\n")
    monkeypatch.syspath_prepend(tmp_path)  # taken away again after the test
    yield "raising"
    sys.modules.pop("raising_check", None)


def test_a_check_that_raises_is_unknown_and_the_others_still_answer(raising_plugin: str) -> None:
    results = {result.name: result for result in run_checks(context_with())}
    assert results[raising_plugin].status is Status.UNKNOWN
    assert results[raising_plugin].summary == "check failed: 'missing key'"
    assert results["backup_age"].status is Status.CRITICAL  # the built-in checks still answered
    assert results["backup_count"].status is Status.WARNING


def test_a_check_that_cannot_be_loaded_is_left_out_and_a_disabled_one_is_not_run(raising_plugin: str) -> None:
    names = [name for name, _ in load_checks()]
    assert raising_plugin in names and "absent" not in names
    disabled = context_with(cfg=config(f"checks: {{disabled: [{raising_plugin}]}}"))
    assert raising_plugin not in {result.name for result in run_checks(disabled)}
    assert run_check(raising_plugin, disabled) is None


def test_one_check_run_alone_that_raises_is_unknown_too(raising_plugin: str) -> None:
    """`run_check` (the `prune` command's retention check) answered a raising check with its exception."""
    result = run_check(raising_plugin, context_with())
    assert result is not None and result.status is Status.UNKNOWN
    assert result.summary == "check failed: 'missing key'"
