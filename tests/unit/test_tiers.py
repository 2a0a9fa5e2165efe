"""The test tiers and the xdist groups are chosen from the fixtures a test requests (tests/support/tiers.py,
tests/support/workers.py), and a fast test that starts a server anyway fails instead of slowing the tier."""

from __future__ import annotations

import fcntl
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import tiers, workers
from verifier.postgres.binaries import Installation
from verifier.postgres.throwaway.cluster import TemporaryCluster


def test_a_test_is_fast_unless_one_of_its_fixtures_starts_a_server() -> None:
    assert tiers.is_fast({"tmp_path", "monkeypatch", "smtp_server"})
    for server in ("postgres_installation", "zabbix_server", "dockerd", "s3_server", "ssh_server", "chromium"):
        assert not tiers.is_fast({"tmp_path", server}), server


def test_this_test_is_marked_fast(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker(tiers.FAST) is not None


def test_a_test_that_asks_for_postgresql_is_not_marked_fast(
    request: pytest.FixtureRequest, postgres_installation: Installation
) -> None:
    assert request.node.get_closest_marker(tiers.FAST) is None


def test_a_fast_test_that_starts_a_cluster_fails_naming_the_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    tiers.guard(monkeypatch)
    with pytest.raises(pytest.fail.Exception, match="started a PostgreSQL cluster: request the fixture"):
        TemporaryCluster.start(object.__new__(TemporaryCluster))


@pytest.mark.parametrize("program", ["/usr/lib/postgresql/15/bin/initdb", "zabbix_server", "dockerd", "weed"])
def test_a_fast_test_that_starts_a_server_program_fails(monkeypatch: pytest.MonkeyPatch, program: str) -> None:
    tiers.guard(monkeypatch)
    with pytest.raises(pytest.fail.Exception, match=f"started the program {program.rsplit('/', 1)[-1]}"):
        subprocess.Popen([program, "-D", "/nonexistent"])


def test_a_fast_test_may_run_other_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    tiers.guard(monkeypatch)
    assert subprocess.run(["true"], check=False).returncode == 0


@dataclass
class FakeItem:
    """Just what `workers.group` reads and writes of a pytest item."""

    fixturenames: list[str]
    markers: list[Any] = field(default_factory=list)

    def add_marker(self, marker: Any) -> None:
        self.markers.append(marker)

    def get_closest_marker(self, name: str) -> Any:
        return next((marker.mark for marker in self.markers if marker.mark.name == name), None)


def test_tests_of_one_per_machine_servers_are_grouped() -> None:
    plain, zabbix, docker, both = (
        FakeItem(["tmp_path"]),
        FakeItem(["source_db", "zabbix_server"]),
        FakeItem(["dockerd"]),
        FakeItem(["dockerd", "zabbix_server"]),
    )
    items: list[Any] = [plain, docker, zabbix, both]
    workers.group(items)
    assert [item.get_closest_marker("xdist_group").args for item in (zabbix, docker, both)] == [
        ("zabbix",),
        ("docker",),
        ("docker",),
    ]
    assert plain.markers == []


def test_exclusive_holds_a_lock_every_worker_sees(tmp_path_factory: pytest.TempPathFactory) -> None:
    lock_file = workers.shared_directory(tmp_path_factory) / "probe.lock"
    with workers.exclusive(tmp_path_factory, "probe"), lock_file.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


@dataclass
class GroupedItem:
    """A collected test as `workers.check_grouped` sees it after xdist's hook."""

    nodeid: str
    group: str
    stash: pytest.Stash = field(default_factory=pytest.Stash)

    def get_closest_marker(self, name: str) -> Any:
        return pytest.mark.xdist_group(self.group).mark if name == "xdist_group" else None


@dataclass
class LoadGroupOption:
    loadgroup: bool = True


@dataclass
class LoadGroupConfig:
    option: LoadGroupOption = field(default_factory=LoadGroupOption)


def test_a_test_xdist_did_not_group_fails_instead_of_colliding() -> None:
    grouped, lost = GroupedItem("tests/a.py::test_a@docker", "docker"), GroupedItem("tests/b.py::test_b", "docker")
    workers.check_grouped(LoadGroupConfig(), [grouped, lost])  # type: ignore[arg-type, list-item]
    workers.refuse_ungrouped(grouped)  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match="did not put this test in its group 'docker'"):
        workers.refuse_ungrouped(lost)  # type: ignore[arg-type]
