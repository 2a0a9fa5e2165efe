"""Programs inside a container: `docker exec` with stdin, streamed stdout, captured stderr and the exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from docker.utils import socket as docker_socket

from verifier.docker.engine import engine_errors, reason
from verifier.errors import ContainerNotRunning

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5432

EXIT_CODE_WAIT_SECONDS = 30.0

KILLED_WAIT_SECONDS = 5.0

QUEUED_CHUNKS = 16

STDERR_KEEP_BYTES = 1024 * 1024


class DockerProgram:
    """A program running inside a container through `docker exec` (the low-level API).

    A reader thread demultiplexes the attach stream: stdout goes to a bounded queue (so a slow
    consumer slows the program down instead of filling memory), stderr to a capped buffer. The
    exit code comes from `exec_inspect`, which `exec_run(stream=True)` would lose.
    """

    def __init__(self, client: docker.DockerClient, exec_id: str, argv: Sequence[str], *, stream_stdout: bool) -> None:
        self._client = client
        self._exec_id = exec_id
        self._argv = list(argv)
        self._stream_stdout = stream_stdout
        attached = client.api.exec_start(exec_id, socket=True)
        self._socket: socket.socket = getattr(attached, "_sock", attached)
        self._socket.settimeout(None)  # a dump may be silent for a long time (waiting on a lock)
        self._attached = attached
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._stderr = bytearray()
        self._discard = threading.Event()
        self._killed = threading.Event()
        self._output = threading.Event()  # the first stdout frame (or the stream's end) arrived
        self._reader = threading.Thread(target=self._pump, name=f"docker-exec-{argv[0]}", daemon=True)
        self._reader.start()

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields stdout in chunks (as the engine frames them) until EOF."""
        while (chunk := self._chunks.get()) is not None:
            yield chunk

    def output_started(self) -> bool:
        """Returns True once the program wrote to its streamed stdout (or the stream ended), without
        taking anything from it; always False when stdout is not streamed."""
        return self._stream_stdout and self._output.is_set()

    def write_stdin(self, data: bytes) -> None:
        """Writes `data` to the program's stdin. Raises BrokenPipeError when it stopped reading."""
        try:
            self._socket.sendall(data)
        except (ConnectionResetError, BrokenPipeError, OSError) as error:
            raise BrokenPipeError(str(error)) from None

    def close_stdin(self) -> None:
        """Signals end of input (half-closes the attach connection; the engine closes stdin)."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)

    def wait(self) -> int:
        """Waits until the output ends and the engine reports the exit code; returns it (-1 if unknown).

        Unread stdout is discarded. Raises DockerUnavailable when the engine stops answering.
        """
        self._discard_unread()
        self._reader.join()
        # A killed program whose process we could not signal may run on: do not wait long for it.
        patience = KILLED_WAIT_SECONDS if self._killed.is_set() else EXIT_CODE_WAIT_SECONDS
        deadline = time.monotonic() + patience
        while True:
            with engine_errors():
                state = self._client.api.exec_inspect(self._exec_id)
            if not state.get("Running") or time.monotonic() > deadline:
                code = state.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.05)

    def stderr_text(self) -> str:
        """Returns what the program wrote to stderr (the last 1 MiB)."""
        return self._stderr.decode("utf-8", errors="replace")

    def kill(self) -> None:
        """Stops the program: signals it when its process is visible from here, and drops the stream.

        The engine has no exec-kill call. When the agent shares the host's process namespace, the
        exec's host pid is signalled (after checking it still runs our argv); otherwise closing the
        attach connection makes the program fail on its next write. Safe after it exited.
        """
        self._killed.set()
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            state = self._client.api.exec_inspect(self._exec_id)
            pid = int(state.get("Pid") or 0)
            if state.get("Running") and pid > 0 and self._is_ours(pid):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._discard_unread()

    def _pump(self) -> None:
        try:
            for stream, data in docker_socket.frames_iter(self._socket, tty=False):
                if stream == docker_socket.STDOUT and self._stream_stdout:
                    self._output.set()
                    self._deliver(data)
                else:
                    self._stderr.extend(data)
                    del self._stderr[:-STDERR_KEEP_BYTES]
        except OSError as error:
            if not self._killed.is_set():
                self._stderr.extend(f"\n(docker exec stream broke: {error})".encode())
        finally:
            with contextlib.suppress(OSError):
                self._attached.close()
            self._output.set()
            self._deliver(None)

    def _deliver(self, chunk: bytes | None) -> None:
        """Queues a stdout chunk (None: the end), waiting for room unless stdout is being discarded."""
        while True:
            if chunk is not None and self._discard.is_set():
                return
            try:
                self._chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                if self._discard.is_set():
                    self._discard_unread()

    def _discard_unread(self) -> None:
        """Drops queued stdout; the end marker stays for a consumer still iterating."""
        self._discard.set()
        with contextlib.suppress(queue.Empty):
            while True:
                if self._chunks.get_nowait() is None:
                    self._chunks.put(None)
                    return

    def _is_ours(self, pid: int) -> bool:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return [part.decode(errors="replace") for part in command if part] == self._argv


class DockerExecutor:
    """Runs PostgreSQL programs inside one container with `docker exec`.

    Programs reach the container's server over its own unix socket: PGHOST from the caller (the
    address the agent uses from outside) is dropped and PGPORT set to the server's port inside.
    """

    shares_filesystem = False

    def __init__(
        self, client: docker.DockerClient, container_id: str, name: str, *, server_port: int = DEFAULT_PORT
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.name = name
        self.server_port = server_port

    def start(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str],
        stdin: bool = False,
        stdout: bool = True,
    ) -> DockerProgram:
        """Starts `argv` in the container. Returns the running program.

        Raises DockerUnavailable when the engine does not answer, ContainerNotRunning when the
        container stopped.
        """
        inside = {key: value for key, value in environment.items() if key != "PGHOST"}
        inside["PGPORT"] = str(self.server_port)
        inside.setdefault("LC_MESSAGES", "C")
        with engine_errors():
            try:
                created = self.client.api.exec_create(
                    self.container_id, list(argv), stdin=stdin, stdout=True, stderr=True, environment=inside
                )
            except docker.errors.APIError as error:
                if error.status_code == 409:
                    raise ContainerNotRunning(f"container {self.name} is not running: {reason(error)}") from None
                raise
            logger.debug("docker exec in %s: %s", self.name, " ".join(argv))
            return DockerProgram(self.client, created["Id"], argv, stream_stdout=stdout)

    def output(self, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
        """Runs `argv` to completion and returns its stdout ('' when it failed)."""
        program = self.start(argv, environment=environment or {})
        text = b"".join(program.stdout_chunks()).decode("utf-8", errors="replace")
        return text if program.wait() == 0 else ""
