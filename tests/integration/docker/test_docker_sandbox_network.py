"""The docker sandbox reaches no other server: from inside its container (where a restored dump's code
runs), a connection to the production container and to an address beyond the host fail, and no host
directory (so no other server's unix socket) is mounted.

Measured here, this does NOT hold on the suite's private engine: an `internal` network still gives the
container a default route through the host's bridge address (dockerd 20.10), and what keeps its packets
from being forwarded to other networks is the engine's iptables rules (DOCKER-ISOLATION); the private
engine runs with --iptables=false, so the sandbox container connected to production's container. The
test is therefore an expected failure here, strict: it starts passing the day the sandbox no longer
depends on the engine's firewall (e.g. a container without network, reached through a socket directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.conftest import address_of
from tests.support.dockerd import PrivateDockerd
from tests.support.requirements import need
from verifier.config import Config, DockerSandboxConfig, DumpConfig, PostgresConfig
from verifier.errors import SandboxError
from verifier.pipeline.source import resolve_container_source
from verifier.postgres.backup.dump import take_backup
from verifier.postgres.restore.run import RESTORE_DATABASE
from verifier.repository.backups import Repository
from verifier.sandbox.docker import open_docker_sandbox

pytestmark = pytest.mark.docker

OUTSIDE_ADDRESS = "192.0.2.1"  # TEST-NET-1: an address beyond the host, which nothing routes


def tcp_attempt(container: Any, host: str, port: int) -> tuple[int, str]:
    """Returns (exit code, output) of a TCP connection attempt made inside `container` (bash's /dev/tcp)."""
    exit_code, output = container.exec_run(
        ["timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port} && echo connected"], user="postgres"
    )
    return int(exit_code), output.decode(errors="replace").strip()


def test_the_docker_sandbox_reaches_no_other_server(
    dockerd: PrivateDockerd, docker_client: Any, production_container: Any, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "source": {"docker": {"docker_host": dockerd.url, "compose_project": "eatfit24", "service": "db"}},
            "repository": {"path": str(tmp_path / "repository")},
            "verify": {"sandbox": "docker"},
        }
    )
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None
    production = address_of(production_container)
    assert tcp_attempt(production_container, production, 5432) == (0, "connected")  # the control: it listens

    with open_docker_sandbox(
        config.verify.docker, backup, source, repository=config.repository.path, docker_host=dockerd.url
    ) as sandbox:
        container = docker_client.containers.get(sandbox.name)
        to_production = tcp_attempt(container, production, 5432)
        to_outside = tcp_attempt(container, OUTSIDE_ADDRESS, 5432)
        mounts = {mount["Destination"]: mount for mount in container.attrs["Mounts"]}
        socket_directory = Path(mounts["/var/run/postgresql"]["Source"])
        in_socket_directory = sorted(path.name for path in socket_directory.iterdir())
        private_mode = socket_directory.parent.stat().st_mode & 0o777
        network_mode = container.attrs["HostConfig"]["NetworkMode"]
        with sandbox.connect() as connection:  # the agent itself still reaches the sandbox's server
            assert connection.execute("SELECT current_database()").fetchone() == (sandbox.dbname,)

    assert to_production[0] != 0 and "connected" not in to_production[1], to_production
    assert to_outside[0] != 0 and "connected" not in to_outside[1], to_outside
    assert network_mode == "none"
    # the dump, and a directory holding the sandbox's own socket only: no other server's socket
    assert sorted(mounts) == sorted([str(backup.dump_path.resolve()), "/var/run/postgresql"])
    assert in_socket_directory == [".s.PGSQL.5432", ".s.PGSQL.5432.lock"]
    assert private_mode == 0o700  # no other account of this host reaches that trusting socket
    assert not socket_directory.parent.exists()  # removed with the sandbox


def test_a_remote_engine_is_refused_unless_the_network_is_allowed(
    engine_over_tcp: str, docker_client: Any, production_container: Any, test_network: Any, tmp_path: Path
) -> None:
    """An engine reached over TCP may be on another host, which cannot mount the agent's socket
    directory: the sandbox would need a network, so it refuses to start, in one line naming the
    engine and the setting; with verify.allow_network it sits on an internal network, as before,
    and a configured network that is not internal is still refused."""
    settings: dict[str, Any] = {
        "source": {"docker": {"docker_host": engine_over_tcp, "compose_project": "eatfit24", "service": "db"}},
        "repository": {"path": str(tmp_path / "repository")},
        "verify": {"sandbox": "docker"},
    }
    config = Config.model_validate(settings)
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    backup = repository.newest()
    assert backup is not None
    label = {"label": "pg-backup-verifier.sandbox"}

    with (
        pytest.raises(SandboxError) as refused,
        open_docker_sandbox(
            config.verify.docker, backup, source, repository=config.repository.path, docker_host=engine_over_tcp
        ),
    ):
        pass
    assert str(refused.value) == (
        f"the docker sandbox cannot be cut off from the network: the engine at {engine_over_tcp} "
        "is not on this host, so it cannot mount a directory of it; run the agent where the engine sees its "
        "directories, or set verify.allow_network: true to use an internal Docker network, which only the "
        "engine's iptables rules cut off"
    )
    assert docker_client.containers.list(all=True, filters=label) == []

    with open_docker_sandbox(
        config.verify.docker,
        backup,
        source,
        repository=config.repository.path,
        docker_host=engine_over_tcp,
        allow_network=True,
    ) as sandbox:
        container = docker_client.containers.get(sandbox.name)
        networks = list(container.attrs["NetworkSettings"]["Networks"])
        internal = [docker_client.networks.get(name).attrs["Internal"] for name in networks]
        with sandbox.connect() as connection:
            assert connection.execute("SELECT current_database()").fetchone() == (sandbox.dbname,)
    assert internal == [True]
    assert sandbox.socket_directory is None

    routed = DockerSandboxConfig(network=test_network.name)
    with (
        pytest.raises(SandboxError, match="is not internal, so code in a dump could reach production"),
        open_docker_sandbox(
            routed, backup, source, repository=config.repository.path, docker_host=engine_over_tcp, allow_network=True
        ),
    ):
        pass
    assert docker_client.networks.get(test_network.name) is not None
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.networks.list(filters=label) == []


def test_a_private_tmp_does_not_hide_the_socket_from_the_engine(
    dockerd: PrivateDockerd, production_container: Any, tmp_path: Path
) -> None:
    """The shipped unit runs with PrivateTmp=yes: the agent's /tmp is not the engine's. A child in a
    mount namespace of its own, with a tmpfs over its TMPDIR, stands for it: its sandbox must still be
    reached (an engine binds the host's directory of the same name, where no socket ever appears)."""
    need(shutil.which("unshare") is not None, "unshare (util-linux)")
    config = Config.model_validate(
        {
            "source": {"docker": {"docker_host": dockerd.url, "compose_project": "eatfit24", "service": "db"}},
            "repository": {"path": str(tmp_path / "repository")},
            "verify": {"sandbox": "docker"},
        }
    )
    source = resolve_container_source(config.source)
    repository = Repository(config.repository.path)
    repository.ensure()
    take_backup(source, DumpConfig(), PostgresConfig(), repository)
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from verifier.config import DockerSandboxConfig\n"
        "from verifier.repository.backups import Repository\n"
        "from verifier.sandbox.docker import open_docker_sandbox\n"
        "repository = Path(sys.argv[2])\n"
        "backup = Repository(repository).newest()\n"
        "with open_docker_sandbox(DockerSandboxConfig(image=sys.argv[3]), backup, None, repository=repository,\n"
        "                         docker_host=sys.argv[1]) as sandbox, sandbox.connect() as connection:\n"
        "    print(connection.execute('SELECT current_database()').fetchone()[0])\n"
    )
    shell = 'mount -t tmpfs tmpfs "$TMPDIR" && exec "$@"'  # a fixed script; the child's argv follows as "$@"
    child = [sys.executable, "-c", script, dockerd.url, str(config.repository.path), source.image or ""]
    completed = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell, "sh", *child],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(private_tmp)},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert (completed.returncode, completed.stdout.strip()) == (0, RESTORE_DATABASE), completed.stderr[-2000:]
