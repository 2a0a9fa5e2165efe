"""The test tiers: which tests need a server, chosen from the fixtures each test requests.

A test is in the **fast** tier (`pytest -m fast`, `dev/test --fast`) when none of the fixtures it uses,
directly or through other fixtures, is one of `SERVER_FIXTURES`: nobody marks a test by hand, and a new
test lands in the right tier by asking for what it needs. Every PostgreSQL cluster of the suite comes
through `postgres_installation` (`cluster`, `production`, `source_db`, the Zabbix server's database...), so
a test that starts one is never fast.

A fast test that starts a server anyway (a `TemporaryCluster` of its own, or one of the server programs
in this process) fails with a line saying which fixture to request (`guard`), instead of quietly making
the fast tier slow. A test that starts one only through a `verifier` subprocess (the demo) must request
`postgres_installation` itself: that is what it needs, and the fast tier then leaves it out.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from verifier.postgres.throwaway.cluster import TemporaryCluster

FAST = "fast"

SERVER_FIXTURES = {
    "postgres_installation": "a PostgreSQL cluster",
    "postgres18": "a PostgreSQL 18 cluster",
    "zabbix_server": "a Zabbix server",
    "dockerd": "a Docker engine",
    "s3_server": "an S3 server (SeaweedFS)",
    "ssh_server": "an sshd",
    "chromium": "a browser (Chromium)",
}

# program names whose start means a server (or a browser): never in a fast test
SERVER_PROGRAMS = frozenset(
    {
        "initdb",
        "pg_ctl",
        "postgres",
        "zabbix_server",
        "dockerd",
        "weed",
        "sshd",
        "chromium",
        "chromium-browser",
        "prometheus-node-exporter",
    }
)


def is_fast(fixture_names: Iterable[str]) -> bool:
    """Returns True when none of `fixture_names` (a test's whole fixture closure) starts a server."""
    return not set(fixture_names) & SERVER_FIXTURES.keys()


def mark(items: list[pytest.Item]) -> None:
    """Adds the `fast` marker to every collected test that needs no server."""
    for item in items:
        if is_fast(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)


def guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a fast test: starting a temporary cluster or a server program in this process fails the test."""

    def refuse(what: str) -> None:
        wanted = ", ".join(SERVER_FIXTURES)
        pytest.fail(f"a test of the fast tier started {what}: request the fixture it needs ({wanted})", pytrace=False)

    def start(self: TemporaryCluster) -> TemporaryCluster:
        refuse("a PostgreSQL cluster")
        raise AssertionError  # not reached: pytest.fail raises

    original_init = subprocess.Popen.__init__

    def popen(self: subprocess.Popen[Any], args: Any, *positional: Any, **keywords: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | Path) else list(args)
        program = Path(str(argv[0] if argv else "")).name
        if program in SERVER_PROGRAMS and not {"--version", "-V"} & set(map(str, argv[1:])):
            self._child_created = False  # what Popen.__del__ reads: nothing was started
            refuse(f"the program {program}")
        original_init(self, args, *positional, **keywords)

    monkeypatch.setattr(TemporaryCluster, "start", start)
    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
