"""Running the suite on several pytest-xdist workers (`pytest -n 3 --dist loadgroup`, what `dev/test` runs).

Each worker is its own pytest session, with its own private temp dir and 'production' cluster.
What must not exist twice, or is too dear to start on every worker, is grouped, so one worker runs every test
that needs it (chosen, like the tiers, from the fixtures a test requests, never by hand):

- `docker`: the private dockerd (its bridge and iptables chains are the machine's; the image cache, the
  compose-like container and network names);
- `zabbix`: the Zabbix server with its API (PHP) and its database;
- `offsite`: SeaweedFS and sshd (and the GPG keys made with them);
- `big`: the fault suite's 1.5-million-row database and its verified backup.

A test needing two of them goes with the first in `GROUPS`. xdist hands out the largest units first
(`--loadscope-reorder`, its default): the groups, then the other tests one by one. What several workers share on
purpose (creating the sandbox account) is serialized with `exclusive`.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

GROUPS = (
    ("dockerd", "docker"),
    ("zabbix_server", "zabbix"),
    ("s3_server", "offsite"),
    ("ssh_server", "offsite"),
    ("big_source", "big"),
)


def group(items: list[pytest.Item]) -> None:
    """Marks each test that needs a one-per-machine (or too dear) server with its `xdist_group`."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        found = next((name for fixture, name in GROUPS if fixture in names), None)
        if found is not None:
            item.add_marker(pytest.mark.xdist_group(found))


UNGROUPED = pytest.StashKey[str]()


def check_grouped(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker with `--dist loadgroup`, after xdist's own hook: a grouped test whose node id does
    not carry its group (the only way xdist learns it; pytest 9.2 ignores xdist 3.8's change of it:
    pytest-dev/pytest-xdist#1386) is remembered, and `refuse_ungrouped` fails it instead of letting two Zabbix
    servers or dockerds collide."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        if marker is not None and not item.nodeid.endswith(f"@{marker.args[0]}"):
            item.stash[UNGROUPED] = (
                f"pytest-xdist did not put this test in its group {marker.args[0]!r} (pytest {pytest.__version__}, "
                "pytest-dev/pytest-xdist#1386): install the versions pyproject.toml's dev extra names, or run "
                "without -n"
            )


def refuse_ungrouped(item: pytest.Item) -> None:
    """Fails `item` when `check_grouped` found that xdist did not group it."""
    message = item.stash.get(UNGROUPED, None)
    if message is not None:
        pytest.fail(message, pytrace=False)


def shared_directory(factory: pytest.TempPathFactory) -> Path:
    """Returns a directory all workers of this run share (pytest's base temp dir without xdist)."""
    base = factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


@contextlib.contextmanager
def exclusive(factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """Holds the run-wide lock `name` (a file in `shared_directory`) while the block runs."""
    with (shared_directory(factory) / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
