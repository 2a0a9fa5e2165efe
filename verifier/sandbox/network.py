"""Whether the sandbox can reach the network: the facts `verifier doctor` prints, found by trying.

The local sandbox's server runs in `verifier.netjail`. The doctor starts that same jail as the sandbox
account and has it connect to a TCP port and a unix socket the doctor itself listens on, in the temp
directory where a server's socket could be: either answering means a restored dump could reach other
servers. A docker sandbox sits on an internal network, which only the engine's iptables rules enforce
(see `verifier.docker.engine`); a `server`
sandbox is a database on a server the user runs, which the agent cannot isolate.
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


def network_facts(verify: VerifyConfig) -> list[Fact]:
    """Returns the line saying whether the configured sandbox can reach the network. Never raises."""
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
        return [
            Fact(
                "sandbox network",
                "an internal Docker network: cut off by the engine's iptables rules only (an engine run with "
                "iptables: false lets the container reach other containers and hosts)",
            )
        ]
    if verify.allow_network:
        return [
            Fact(
                "sandbox network",
                "not cut off (verify.allow_network: true): a restored dump reaches every server this host reaches",
                exposed=True,
            )
        ]
    return [_try_local(verify)]


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
