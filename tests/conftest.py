"""Fixtures shared by every test: PostgreSQL installations and temporary clusters, and the test tiers.

The clusters come from `verifier.postgres.throwaway.cluster`, the module the product's local sandbox uses.
A session-wide guard asserts that no test leaves a postgres process or a temp directory behind.
Every test that needs no server is marked `fast` from the fixtures it requests (`tests/support/tiers.py`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import browser, tiers, workers
from tests.support.requirements import need
from verifier.config import DEFAULT_ACCOUNT
from verifier.errors import BinaryMissing
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.sandbox.account import create_account


@pytest.hookimpl(wrapper=True)  # around every other implementation, xdist's included
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Marks every test that needs no server `fast` (`pytest -m fast`, `dev/test --fast`), and every test of
    a one-per-machine server with its xdist group (`tests/support/workers.py`); afterwards, checks that
    xdist took the groups."""
    tiers.mark(items)
    workers.group(items)
    yield
    workers.check_grouped(config, items)


@pytest.fixture(autouse=True)
def fast_tier_starts_no_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked `fast` that starts a cluster or a server program in this process fails, naming the
    fixture to request: the tier cannot silently drift. So does a test xdist failed to put in its group."""
    if request.node.get_closest_marker(tiers.FAST) is not None:
        tiers.guard(monkeypatch)
    workers.refuse_ungrouped(request.node)


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """`cli.main` installs its stderr handler on the root logger (on pytest's captured stream, closed after
    the test): put the root logger back as it was after every test that runs it in this process, so a later
    test's output holds no logging error, whatever order the tests run in (xdist's is not the files')."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def umask_restored() -> Iterator[None]:
    """`cli.main` sets the process's umask to 077 (what the agent writes is its own): put it back after
    every test that runs it in this process, so a later test does not create 0700 directories where
    another account must pass (a PostgreSQL 18 copy for the postgres account, say)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


@pytest.fixture(scope="session", autouse=True)
def private_temp_dir() -> Iterator[Path]:
    """Points every temp directory of this session (ours and the verifier's subprocesses') at a
    private directory, so leftover checks see only this session's, and removes it at the end."""
    directory = Path(tempfile.mkdtemp(prefix="pgbv-tests-"))
    directory.chmod(0o755)  # the clusters' unprivileged user must traverse it
    previous_tempdir, previous_environment = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(directory)
    os.environ["TMPDIR"] = str(directory)
    yield directory
    tempfile.tempdir = previous_tempdir
    if previous_environment is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_environment
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def sandbox_account(private_temp_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The local sandbox's dedicated account, created when missing by the code `verifier doctor --fix`
    runs, so a fresh machine works. (The tests' own 'production' clusters still run as postgres.)
    One worker at a time: two useradds at once lock each other out of /etc/passwd."""
    if os.geteuid() == 0:
        with workers.exclusive(tmp_path_factory, "sandbox-account"):
            create_account(DEFAULT_ACCOUNT)
    return DEFAULT_ACCOUNT


@pytest.fixture(scope="session")
def postgres_installation() -> binaries.Installation:
    """The newest PostgreSQL installation with server programs on this machine."""
    try:
        found = binaries.choose(("initdb", "postgres", "pg_dump", "pg_restore", "psql"), purpose="tests")
    except BinaryMissing:
        found = None
    need(found is not None, "PostgreSQL server binaries")
    assert found is not None
    return found


@pytest.fixture
def cluster(postgres_installation: binaries.Installation) -> Iterator[TemporaryCluster]:
    """A fresh temporary cluster for one test, removed afterwards."""
    with TemporaryCluster(postgres_installation) as started:
        yield started


@pytest.fixture(scope="session")
def production(postgres_installation: binaries.Installation) -> Iterator[TemporaryCluster]:
    """A temporary cluster playing 'production', reachable over TCP on 127.0.0.1, shared by a session."""
    with TemporaryCluster(postgres_installation, tcp=True) as started:
        yield started


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium program (`dev/install-browser`); its tests are not in the fast tier."""
    program = browser.chromium()
    need(program is not None, "Chromium (dev/install-browser)")
    assert program is not None
    return program
