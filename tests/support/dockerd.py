"""A private Docker daemon for the test suite: its own data root, exec root, socket and pid file.

Nothing collides with a Docker engine the machine may already run: the daemon gets fresh
directories, manages its own containerd below them, creates no default bridge and touches no
iptables. Networks the tests create get addresses from a private pool, so a container's address
is reachable from the host over the network's bridge without publishing a port (the common
compose case the agent must handle). `stop()` removes every container and network, stops the
daemon, unmounts what it left mounted, deletes bridges it left behind and the directories.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker

logger = logging.getLogger(__name__)

TEMP_PREFIX = "pgbv-dockerd-"
ADDRESS_POOL = "base=10.213.0.0/16,size=24"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0


def dockerd_available() -> bool:
    """Returns True when dockerd can be started here: the program exists and we are root."""
    return shutil.which("dockerd") is not None and os.geteuid() == 0


class PrivateDockerd:
    """A dockerd started with private paths. Use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self.socket = self.root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._bridges: set[str] = set()

    def __enter__(self) -> PrivateDockerd:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self) -> docker.DockerClient:
        """Returns a new SDK client connected to this daemon."""
        return docker.DockerClient(base_url=self.url, timeout=120)

    def start(self) -> None:
        """Starts the daemon and waits until it answers a ping.

        Raises RuntimeError with the daemon's log tail when it exits or does not answer in time.
        """
        config = self.root / "daemon.json"
        config.write_text(json.dumps({}))
        argv = [
            "dockerd",
            "--config-file", str(config),
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
            "-H", self.url,
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--default-address-pool", ADDRESS_POOL,
            "--containerd-namespace", f"pgbv-{os.getpid()}",
            "--containerd-plugins-namespace", f"pgbv-{os.getpid()}-plugins",
            "--log-level=warn",
        ]  # fmt: skip
        log = (self.root / "dockerd.log").open("wb")
        self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self._process.returncode}: {self.log_tail()}")
            if self.socket.exists():
                with contextlib.suppress(docker.errors.DockerException), contextlib.closing(self.client()) as client:
                    client.ping()
                    return
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT_SECONDS:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        """Removes every container and network, stops the daemon and deletes everything it created."""
        if self._process is not None and self._process.poll() is None:
            self._remove_objects()
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("dockerd did not stop in time; killing its process group")
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None
        for bridge in self._bridges:
            if Path("/sys/class/net", bridge).exists():
                subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
        self._unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """Returns the last lines of the daemon's log, joined on ' | '."""
        log = self.root / "dockerd.log"
        if not log.exists():
            return "(no log)"
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _remove_objects(self) -> None:
        """Removes containers (with their anonymous volumes) and networks while the daemon still runs."""
        try:
            with contextlib.closing(self.client()) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
                for network in client.networks.list():
                    if network.name in ("host", "none", "bridge"):
                        continue
                    self._bridges.add(
                        network.attrs.get("Options", {}).get("com.docker.network.bridge.name")
                        or f"br-{network.id[:12]}"
                    )
                    network.remove()
                client.volumes.prune()
        except docker.errors.DockerException as error:
            logger.warning("could not clean the private dockerd before stopping it: %s", error)

    @staticmethod
    def _unmount_below(root: Path) -> None:
        """Lazily unmounts every mount (overlay layers, netns files) the daemon left below `root`."""
        prefix = str(root.resolve()) + "/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount_point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
