"""The one module that speaks Zabbix's trapper protocol (through `zabbix_utils.Sender`).

Values go one per request: Zabbix answers a request with counts only ("processed: 1; failed: 0"),
so one value per request is the only way to know *which* value it refused. A refused value is an
item the server does not know (template not imported, host not linked, LLD item not created yet);
a value that could not be delivered at all (server down, timeout, refused connection) raises
`UnreachableError` and goes to the spool.
"""

from __future__ import annotations

import configparser
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from zabbix_utils import ItemValue, Sender
from zabbix_utils.exceptions import ProcessingError

from verifier.config import ZabbixConfig
from verifier.errors import ConfigError, one_line

logger = logging.getLogger(__name__)


RAN_OUT = "the run's time (run_timeout) ran out while delivering to Zabbix"


class UnreachableError(Exception):
    """No Zabbix node could be reached, or it did not answer in time."""


@dataclass(frozen=True)
class Destination:
    """Where values go: Zabbix clusters (each a list of `host:port` HA nodes), and the host name."""

    clusters: tuple[tuple[str, ...], ...]
    host: str
    timeout: float

    def describe(self) -> str:
        """Returns the destination for messages, e.g. `zbx1:10051;zbx2:10051`."""
        return ", ".join(";".join(cluster) for cluster in self.clusters)


class Transport(Protocol):
    """Sends one value. Returns True when Zabbix processed it, False when it refused it.

    Raises UnreachableError when no server could be reached.
    """

    def send(self, host: str, key: str, value: str, clock: int, ns: int) -> bool: ...


def destination(config: ZabbixConfig) -> Destination:
    """Returns where to send, from `zabbix.server`/`port`/`host` or, when given, `zabbix.agent_config`
    (its `ServerActive` and `Hostname`, as `zabbix_sender -c` reads them; explicit settings win).

    Raises ConfigError when the agent config cannot be read or names no server or host.
    """
    clusters: tuple[tuple[str, ...], ...] = ()
    host = config.host
    if config.server:
        nodes = tuple(_node(part, config.port) for part in re.split(r"[;,]", config.server) if part.strip())
        clusters = (nodes,)
    if config.agent_config is not None and (not clusters or not host):
        agent_clusters, agent_host = _read_agent_config(config.agent_config)
        clusters = clusters or agent_clusters
        host = host or agent_host
    if not clusters:
        raise ConfigError("zabbix: no server: set zabbix.server or ServerActive in the agent config")
    if not host:
        raise ConfigError("zabbix: no host name: set zabbix.host or Hostname in the agent config")
    return Destination(clusters=clusters, host=host, timeout=config.timeout)


class ZabbixSender:
    """The real transport: `zabbix_utils.Sender` to every cluster of a destination. With a `deadline`
    (the monotonic clock) no send lasts past it, however slowly a server trickles its answer."""

    def __init__(self, target: Destination, *, deadline: float | None = None) -> None:
        self.target = target
        self._sender = Sender(
            clusters=[list(cluster) for cluster in target.clusters],
            timeout=max(1, round(target.timeout)),
            chunk_size=1,
            socket_wrapper=None if deadline is None else _bounded_by(deadline),
        )

    def send(self, host: str, key: str, value: str, clock: int, ns: int) -> bool:
        """Returns True when every cluster processed the value, False when one refused it.

        Raises UnreachableError when a cluster could not be reached or did not answer.
        """
        try:
            response = self._sender.send([ItemValue(host, key, value, clock, ns)])
        except (ProcessingError, OSError, ValueError) as error:
            raise UnreachableError(_described(error)) from None
        if response.failed:
            logger.warning("Zabbix refused %s on host %s", key, host)
            return False
        return bool(response.processed)


class DeadlineSocket:
    """A connected socket whose every read and write ends by `deadline` (the monotonic clock): the
    per-read timeout alone lets a server that sends one byte every few seconds hold a send forever."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self._connection = connection
        self._deadline = deadline
        self._per_operation = connection.gettimeout()

    def sendall(self, data: bytes) -> None:
        """Sends `data`. Raises TimeoutError once the deadline has passed."""
        self._bound()
        try:
            self._connection.sendall(data)
        except TimeoutError:
            self._bound()
            raise

    def recv(self, size: int) -> bytes:
        """Returns up to `size` bytes. Raises TimeoutError once the deadline has passed."""
        self._bound()
        try:
            return self._connection.recv(size)
        except TimeoutError:
            self._bound()  # names the run's deadline when that is what ended the wait
            raise

    def close(self) -> None:
        """Closes the connection."""
        self._connection.close()

    def _bound(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(RAN_OUT) from None
        per_operation = self._per_operation if self._per_operation is not None else remaining
        self._connection.settimeout(min(per_operation, remaining))


def _bounded_by(deadline: float) -> Callable[[socket.socket, object], DeadlineSocket]:
    def wrap(connection: socket.socket, _tls: object) -> DeadlineSocket:
        return DeadlineSocket(connection, deadline)

    return wrap


def _node(text: str, default_port: int) -> str:
    text = text.strip()
    if text.startswith("["):  # [ipv6]:port
        return text if "]:" in text else f"{text}:{default_port}"
    return text if ":" in text else f"{text}:{default_port}"


def _read_agent_config(path: Path) -> tuple[tuple[tuple[str, ...], ...], str | None]:
    """Returns (clusters from ServerActive, first Hostname) of a Zabbix agent config. Raises ConfigError."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    try:
        parser.read_string("[agent]\n" + path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"zabbix.agent_config: cannot read {path}: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigError(f"zabbix.agent_config: {path} is not an agent config: {_described(error)}") from None
    section = parser["agent"]
    server_active = section.get("ServerActive", "").strip()
    clusters = tuple(
        tuple(_node(node, 10051) for node in cluster.split(";") if node.strip())
        for cluster in server_active.split(",")
        if cluster.strip()
    )
    hostname = section.get("Hostname", "").split(",")[0].strip() or None
    return clusters, hostname


def _described(error: BaseException) -> str:
    """Returns the error's first line, saying "timed out" for a timeout that does not say so itself."""
    text = one_line(error, first_line=True)
    if isinstance(error, socket.timeout | TimeoutError) and text != RAN_OUT:
        text = f"timed out ({text})"
    return text
