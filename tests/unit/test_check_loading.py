"""The built-in checks are found without entry points (issue 23): a check added to `checks/` works without
reinstalling the package, while another package's entry point still adds its own check.

`entry_points` is replaced here by what an installed distribution would declare: the one thing a unit test
cannot make is an installed plug-in distribution."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from verifier import check_registry
from verifier.check_registry import GROUP, load_checks

ORDER = [
    "backup_age", "backup_count", "dump", "archive", "restore", "row_counts", "schema", "drift",
    "amcheck", "assertions", "collations", "constraints", "contents", "database_properties", "duration_trend",
    "large_objects", "materialized_views", "physical", "recovery", "replication", "row_trend", "sequences",
    "size_trend", "table_settings",
    "retention",
]  # fmt: skip


def installed(monkeypatch: pytest.MonkeyPatch, *entries: EntryPoint) -> None:
    monkeypatch.setattr(check_registry, "entry_points", lambda group: [e for e in entries if e.group == group])


def test_the_built_in_checks_load_without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch)
    assert [name for name, _ in load_checks()] == ORDER
    assert [name for name, _ in load_checks(["schema", "retention"])] == [
        name for name in ORDER if name not in ("schema", "retention")
    ]


def test_a_plug_in_check_takes_its_place_in_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    plug_in = EntryPoint("disk_space", "pg_backup_verifier_checks.backup_count:check", GROUP)
    installed(monkeypatch, plug_in)
    names = [name for name, _ in load_checks()]
    assert names == [*ORDER[:14], "disk_space", *ORDER[14:]]


def test_a_plug_in_never_replaces_a_built_in_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from pg_backup_verifier_checks import schema

    installed(monkeypatch, EntryPoint("schema", "pg_backup_verifier_checks.backup_count:check", GROUP))
    assert dict(load_checks())["schema"] is schema.check


def test_a_broken_plug_in_does_not_stop_the_built_in_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, EntryPoint("broken", "pg_backup_verifier_checks.no_such_module:check", GROUP))
    assert [name for name, _ in load_checks()] == ORDER
