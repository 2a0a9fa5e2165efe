"""The whole loop for a containerised database: dump inside the production container while a writer
inside it keeps inserting, restore into a throwaway container of the same image, exact counts,
the sandbox removed afterwards, and a killed run's sandbox removed by the next one.

All against a real Docker engine and real PostgreSQL containers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.support.dockerd import PrivateDockerd
from verifier.config import Config, DumpConfig, PostgresConfig
from verifier.docker.engine import SANDBOX_LABEL, connect
from verifier.errors import SandboxError
from verifier.pipeline.source import resolve_container_source
from verifier.pipeline.verify import verify_backup
from verifier.postgres.backup.dump import take_backup
from verifier.postgres.connection import Source
from verifier.repository.backups import Backup, Repository, legacy_backup
from verifier.sandbox.docker import DockerSandbox, open_docker_sandbox

pytestmark = pytest.mark.docker

WRITER_DB = "writer-db"


@pytest.fixture(scope="module")
def writer_container(start_postgres: Any) -> Iterator[Any]:
    """A production container of its own: the writer test changes its row counts."""
    container = start_postgres(
        WRITER_DB,
        environment={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "app-pw", "POSTGRES_DB": "app"},
        labels={"com.docker.compose.project": "app", "com.docker.compose.service": "db"},
    )
    yield container
    container.remove(force=True, v=True)


def make_config(dockerd: PrivateDockerd, repository: Path, **dump: Any) -> Config:
    return Config.model_validate(
        {
            "source": {"docker": {"docker_host": dockerd.url, "compose_project": "app", "service": "db"}},
            "repository": {"path": str(repository)},
            "dump": dump,
            "verify": {"sandbox": "docker"},
        }
    )


def sandbox_leftovers(docker_client: Any) -> list[str]:
    """Returns names of sandbox containers and networks that exist now."""
    label = {"label": SANDBOX_LABEL}
    containers = [c.name for c in docker_client.containers.list(all=True, filters=label)]
    networks = [n.name for n in docker_client.networks.list(filters=label)]
    return containers + networks


class Writer(threading.Thread):
    """Keeps inserting rows through psql inside the production container (its stdin streamed)."""

    def __init__(self, executor: Any, environment: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.program = executor.start(
            ["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"],
            environment=environment,
            stdin=True,
            stdout=False,
        )
        self.stop = threading.Event()
        self.statements = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.program.write_stdin(b"INSERT INTO orders (note) VALUES ('written during the dump');\n")
            self.statements += 1
            time.sleep(0.002)

    def finish(self) -> int:
        self.stop.set()
        self.join()
        self.program.close_stdin()
        return int(self.program.wait())


def test_dump_during_writes_restores_exactly_into_a_sandbox_of_the_same_image(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, postgres_image_tag: str, tmp_path: Path
) -> None:
    config = make_config(dockerd, tmp_path / "repository")
    source = resolve_container_source(config.source)
    with source.params.connect() as connection:
        connection.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text)")
        connection.execute("CREATE TABLE fixed (n integer)")
        connection.execute("INSERT INTO fixed SELECT generate_series(1, 777)")
    writer = Writer(source.executor, source.params.libpq_environment())
    writer.start()
    try:
        while writer.statements < 200:
            time.sleep(0.05)
        repository = Repository(config.repository.path)
        repository.ensure()
        manifest = take_backup(source, config.dump, config.postgres, repository)
    finally:
        assert writer.finish() == 0, writer.program.stderr_text()
    snapshot = manifest.counts_by_table()
    assert snapshot[("public", "fixed")] == 777
    assert snapshot[("public", "orders")] >= 200
    with source.params.connect() as connection:
        row = connection.execute("SELECT count(*) FROM orders").fetchone()
        assert row is not None and row[0] > snapshot[("public", "orders")], "the writer kept writing after the snapshot"

    backup = repository.newest()
    assert backup is not None
    verification = verify_backup(backup, config, source)

    assert verification.error is None
    assert verification.restored, verification.restore_issues
    assert verification.sandbox.startswith("docker container pg-backup-verifier-sandbox-")
    assert postgres_image_tag in verification.sandbox
    restored = {(t.schema, t.table): t.restored_rows for t in verification.tables}
    assert restored == snapshot
    assert sandbox_leftovers(docker_client) == []


def test_plain_sql_backup_streams_into_the_sandbox(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, tmp_path: Path
) -> None:
    config = make_config(dockerd, tmp_path / "repository", format="plain")
    source = resolve_container_source(config.source)
    with source.params.connect() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS plain_rows (n integer)")
        connection.execute("INSERT INTO plain_rows SELECT generate_series(1, 2500)")
    repository = Repository(config.repository.path)
    repository.ensure()
    manifest = take_backup(source, config.dump, config.postgres, repository)
    backup = repository.newest()
    assert backup is not None and backup.dump_path.name.endswith(".sql.gz")

    verification = verify_backup(backup, config, source)

    assert verification.restored, verification.restore_issues
    assert {(t.schema, t.table): t.restored_rows for t in verification.tables} == manifest.counts_by_table()
    assert sandbox_leftovers(docker_client) == []


def test_sandbox_of_a_killed_run_is_removed_by_the_next_run(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, tmp_path: Path
) -> None:
    config = make_config(dockerd, tmp_path / "repository")
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None
    killed_run = start_sandbox_and_hang(dockerd, source.image or "", backup, config.repository.path)
    try:
        orphans = sandbox_leftovers(docker_client)
        assert len(orphans) == 2, orphans  # its container and its network
    finally:
        os.kill(killed_run.pid, signal.SIGKILL)
        killed_run.wait()
    assert sandbox_leftovers(docker_client) == orphans, "SIGKILL leaves the sandbox behind"

    with sandbox_for(config, backup, source) as sandbox:
        now = sandbox_leftovers(docker_client)
        assert set(now).isdisjoint(orphans)
        assert sandbox.name in now
    assert sandbox_leftovers(docker_client) == []


def test_socket_directory_of_a_killed_run_is_removed_by_the_next_run(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, tmp_path: Path
) -> None:
    config = make_config(dockerd, tmp_path / "repository")
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None
    killed_run = start_sandbox_and_hang(dockerd, source.image or "", backup, config.repository.path, pipeline=True)
    try:
        [orphan] = docker_client.containers.list(all=True, filters={"label": SANDBOX_LABEL})
        [socket_directory] = [m["Source"] for m in orphan.attrs["Mounts"] if m["Destination"] == "/var/run/postgresql"]
    finally:
        os.kill(killed_run.pid, signal.SIGKILL)
        killed_run.wait()
    assert Path(socket_directory).is_dir(), "SIGKILL leaves the socket directory behind"

    with sandbox_for(config, backup, source):
        assert not Path(socket_directory).parent.exists()
    assert sandbox_leftovers(docker_client) == []


def start_sandbox_and_hang(
    dockerd: PrivateDockerd, image: str, backup: Backup, repository: Path, *, pipeline: bool = False
) -> Any:
    """Starts a child that opens a docker sandbox and then hangs, as a run killed mid-restore would: the
    pipeline's (no network, a socket directory) with `pipeline`, else a bare DockerSandbox (on a network)."""
    opening = (
        "docker.open_docker_sandbox(DockerSandboxConfig(image=sys.argv[2]), backup, None, "
        "repository=Path(sys.argv[3]), docker_host=sys.argv[1])"
        if pipeline
        else "docker.DockerSandbox(docker.connect(sys.argv[1]), sys.argv[2], backup, "
        "repository=Path(sys.argv[3]).resolve())"
    )
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from verifier.config import DockerSandboxConfig\n"
        "from verifier.sandbox import docker\n"
        "from verifier.repository.backups import Repository\n"
        "backup = Repository(Path(sys.argv[3])).newest()\n"
        f"with {opening}:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, dockerd.url, image, str(repository)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        child.wait()
        raise AssertionError(f"the child run did not open its sandbox: {line!r}")
    return child


def test_missing_sandbox_image_is_one_line_and_leaves_nothing(
    dockerd: PrivateDockerd, docker_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.url)  # a host source: the sandbox's engine is the default one
    dump = tmp_path / "repository" / "legacy.sql"
    dump.parent.mkdir()
    dump.write_text("SELECT 1;\n")
    config = Config.model_validate(
        {
            "source": {"dbname": "app", "host": "127.0.0.1"},
            "repository": {"path": str(dump.parent)},
            "verify": {"sandbox": "docker", "docker": {"image": "pg-backup-verifier-test/absent:1"}},
        }
    )
    with (
        pytest.raises(SandboxError) as raised,
        sandbox_for(config, legacy_backup(dump), None),
    ):
        pass
    assert str(raised.value) == (
        "verify.docker: image pg-backup-verifier-test/absent:1 is not on this engine: "
        "pull it (docker pull pg-backup-verifier-test/absent:1)"
    )
    assert sandbox_leftovers(docker_client) == []


def test_sandbox_sees_only_its_dump_and_its_socket_without_a_network(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, test_network: Any, tmp_path: Path
) -> None:
    """What the agent controls: no network at all (the private test engine runs with --iptables=false,
    so an internal network would not cut anything off), no published port, and two mounts: the dump,
    read-only, and a private directory holding the sandbox server's own socket. A configured network
    is not joined (it only matters where the sandbox falls back to one)."""
    verify = {"sandbox": "docker", "docker": {"network": test_network.name}}
    config = Config.model_validate(
        {**make_config(dockerd, tmp_path / "repository").model_dump(mode="json"), "verify": verify}
    )
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None and backup.manifest is not None and backup.manifest.globals_path
    roles_file = (backup.dump_path.parent / backup.manifest.globals_path).resolve()
    assert roles_file.exists()
    with sandbox_for(config, backup, source) as sandbox:
        container = docker_client.containers.get(sandbox.name)
        mounts = sorted((m["Source"], m["Destination"], m["RW"]) for m in container.attrs["Mounts"])
        network_mode = container.attrs["HostConfig"]["NetworkMode"]
        networks = list(container.attrs["NetworkSettings"]["Networks"])
        published = container.attrs["NetworkSettings"]["Ports"] or {}
        sees_dump = container.exec_run(["test", "-r", str(backup.dump_path.resolve())]).exit_code  # as pg_restore
        sees_roles = container.exec_run(["test", "-e", str(roles_file)]).exit_code
        interfaces = container.exec_run(["ls", "/sys/class/net"]).output.decode().split()
    dump = str(backup.dump_path.resolve())
    socket_directory = sandbox.socket_directory[1] if sandbox.socket_directory else "(none)"
    assert Path(socket_directory).is_relative_to(repository.state_dir)  # not /tmp: PrivateTmp hides it from the engine
    assert mounts == sorted([(dump, dump, False), (socket_directory, "/var/run/postgresql", True)])
    assert sees_dump == 0
    assert sees_roles != 0, "the roles file (password hashes) is visible in the sandbox"
    assert network_mode == "none"
    assert networks == ["none"]
    assert interfaces == ["lo"]
    assert all(not bindings for bindings in published.values())
    assert not Path(socket_directory).exists()
    assert sandbox_leftovers(docker_client) == []


def sandbox_for(config: Config, backup: Backup, source: Source | None) -> AbstractContextManager[DockerSandbox]:
    """Returns the docker sandbox the pipeline would open for `config` (its sections, as the pipeline passes them)."""
    docker_host = config.source.docker.docker_host if config.source.docker is not None else None
    return open_docker_sandbox(
        config.verify.docker,
        backup,
        source,
        repository=config.repository.path,
        docker_host=docker_host,
        allow_network=config.verify.allow_network,
    )


def test_the_sandbox_server_removes_its_own_socket_files(
    dockerd: PrivateDockerd, docker_client: Any, writer_container: Any, tmp_path: Path
) -> None:
    """The container's entrypoint makes the socket directory its postgres's (mode 3775 in the official
    image), so an agent that is not root (a docker group member) could not remove what a killed server
    leaves there: the sandbox is stopped before it is removed, and its server removes its own files."""
    config = make_config(dockerd, tmp_path / "repository")
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None
    socket_directory = tmp_path / "socket"
    socket_directory.mkdir(mode=0o777)
    client = connect(dockerd.url)
    with DockerSandbox(
        client,
        source.image or "",
        backup,
        repository=config.repository.path.resolve(),
        socket_directory=(socket_directory, str(socket_directory)),
    ) as sandbox:
        with sandbox.connect() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        while_running = sorted(path.name for path in socket_directory.iterdir())
        started = time.monotonic()
    removal_seconds = time.monotonic() - started
    assert while_running == [".s.PGSQL.5432", ".s.PGSQL.5432.lock"]
    assert list(socket_directory.iterdir()) == []
    assert removal_seconds < 4, removal_seconds  # the server stopped on its signal, not at the timeout
    assert sandbox_leftovers(docker_client) == []
