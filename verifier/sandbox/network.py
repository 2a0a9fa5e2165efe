"""Whether the sandbox can reach the network: the facts `verifier doctor` prints, found by trying.

The local sandbox's server runs in `verifier.netjail`. The doctor starts that same jail as the sandbox
account and has it connect to a TCP port and a unix socket the doctor itself listens on, in the temp
directory where a server's socket could be: either answering means a restored dump could reach other
servers. A docker sandbox's container has no network (see `verifier.sandbox.docker`) when the engine
runs here; a remote engine cannot mount the agent's socket directory, so the sandbox refuses to start
unless `verify.allow_network` puts it on an internal network, which only the engine's iptables rules
enforce. A `server` sandbox is a database on a server the user runs, which the agent cannot isolate.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from verifier import netjail, process
from verifier.config import VerifyConfig
from verifier.sandbox.isolation import Fact

PROBE_TIMEOUT_SECONDS = 30

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def network_facts(verify: VerifyConfig, docker_host: str | None = None) -> list[Fact]:
    """Returns the line saying whether the configured sandbox can reach the network; a docker sandbox's
    engine is at `docker_host` (`source.docker.docker_host`), else DOCKER_HOST. Never raises."""
    if verify.sandbox == "server":
        return [
            Fact(
                "sandbox network",
                "not isolated: verify.sandbox server restores into a server the agent does not run, and a restored "
                "dump (postgres_fdw, dblink) reaches whatever that server reaches; use local or docker to isolate it",
                exposed=True,
            )
        ]
    if verify.sandbox == "docker":
        return [_docker_fact(verify, docker_host)]
    if verify.allow_network:
        return [
            Fact(
                "sandbox network",
                "not cut off (verify.allow_network: true): a restored dump reaches every server this host reaches",
                exposed=True,
            )
        ]
    return [_try_local(verify)]


def _docker_fact(verify: VerifyConfig, docker_host: str | None) -> Fact:
    """Returns the docker sandbox's network line, from where its engine is (the engine is not asked)."""
    engine = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if "://" not in engine or engine.startswith("unix://"):
        return Fact(
            "sandbox network",
            "none: the container has no network (Docker network_mode none); the agent reaches its server "
            "through a private socket directory",
        )
    internal = "an internal Docker network, cut off by the engine's iptables rules only"
    if verify.allow_network:
        return Fact(
            "sandbox network",
            f"{internal} (verify.allow_network: true): the engine at {engine} is not on this host, so it cannot "
            "mount the agent's socket directory; an engine run with iptables: false lets the sandbox reach "
            "other containers and hosts",
            exposed=True,
        )
    return Fact(
        "sandbox network",
        f"the docker sandbox will not start: the engine at {engine} is not on this host, so it cannot mount the "
        f"agent's socket directory and the sandbox would need a network; set verify.allow_network: true to "
        f"accept {internal}",
        blocking=True,
    )


def _try_local(verify: VerifyConfig) -> Fact:
    """Starts the jail as the sandbox account and has it connect to a TCP port and a unix socket of ours."""
    directory = Path(tempfile.mkdtemp(prefix="pgbv-doctor-"))
    try:
        directory.chmod(0o755)  # as /run/postgresql: any account reaches a socket in it
        socket_path = directory / ".s.PGSQL.5432"
        with socket.socket(socket.AF_UNIX) as unix, socket.socket(socket.AF_INET) as tcp:
            unix.bind(str(socket_path))
            socket_path.chmod(0o777)
            unix.listen()
            tcp.bind(("127.0.0.1", 0))
            tcp.listen()
            port = int(tcp.getsockname()[1])
            argv = [sys.executable, "-I", "-S", netjail.__file__, *_account(verify), "--probe", "127.0.0.1"]
            completed = process.run(
                [*argv, str(port), str(socket_path)], cwd=Path("/"), timeout=PROBE_TIMEOUT_SECONDS, sandboxed=True
            )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Fact("sandbox network", f"not tried: {error}", exposed=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if completed.returncode != 0:
        why = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        return Fact("sandbox network", f"the local sandbox will not start: {why}", exposed=True)
    answers = dict(part.split("=", 1) for part in completed.stdout.split() if "=" in part)
    tcp_answer = answers.get("tcp", "?").replace("_", " ")
    unix_answer = answers.get("unix", "?").replace("_", " ")
    reached = "connected" in (tcp_answer, unix_answer)
    verdict = "REACHABLE" if reached else "none"
    return Fact(
        "sandbox network",
        f"{verdict} (tried: TCP 127.0.0.1:{port}: {tcp_answer}; another server's unix socket: {unix_answer})",
        exposed=reached,
    )


def _account(verify: VerifyConfig) -> list[str]:
    """Returns the jail's UID GID arguments: the sandbox account's when the agent is root, else "-" "-"."""
    if os.geteuid() != 0:
        return ["-", "-"]
    try:
        entry = pwd.getpwnam(verify.run_as)
    except KeyError:
        return ["-", "-"]  # sandbox_facts names the missing account; the jail is tried as root then
    return [str(entry.pw_uid), str(entry.pw_gid)]
