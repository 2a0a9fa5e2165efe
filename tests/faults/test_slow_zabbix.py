"""A slow Zabbix holds the night hostage no more (issue 21 point 5): a real TCP server on 127.0.0.1 that
accepts and answers one byte every 3 s (so no per-read timeout ever fires) held the Zabbix step for
6+ minutes and `run_timeout` did not cover it. Now the whole run, Zabbix included, ends by
`run_timeout` (plus at most one `zabbix.timeout` for a first attempt), the values not delivered are
spooled, and the history row was written before Zabbix was reached."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import ZABBIX_HOST, Fault, config_file, json_result, spooled
from tests.integration.conftest import SourceDatabase
from tests.support import agent
from verifier.repository.backups import Repository
from verifier.repository.history import History
from verifier.zabbix import keys

RUN_TIMEOUT = 45.0
ZABBIX_TIMEOUT = 5.0
TRICKLE_SECONDS = 3.0
ANSWER = json.dumps({"response": "success", "info": "processed: 1; failed: 0; total: 1; seconds spent: 0.0001"})


class TricklingServer:
    """Accepts Zabbix trapper connections on 127.0.0.1 and answers each one byte every TRICKLE_SECONDS."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connected.set()
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        payload = ANSWER.encode()
        packet = b"ZBXD\x01" + struct.pack("<II", len(payload), 0) + payload
        with connection:
            for index in range(len(packet)):
                if self.stopping.wait(TRICKLE_SECONDS):
                    return
                try:
                    connection.sendall(packet[index : index + 1])
                except OSError:
                    return

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def trickling_zabbix() -> Iterator[TricklingServer]:
    server = TricklingServer()
    yield server
    server.stop()


def test_26_slow_zabbix_is_bounded_by_run_timeout_and_history_does_not_wait(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, trickling_zabbix: TricklingServer
) -> None:
    repository = tmp_path / "repo"
    zabbix = {"server": "127.0.0.1", "port": trickling_zabbix.port, "host": ZABBIX_HOST, "timeout": ZABBIX_TIMEOUT}
    configured = config_file(tmp_path / "c.yaml", source_db, repository, zabbix=zabbix, run_timeout="45s")
    started = time.monotonic()
    process = agent.start("run", "--config", configured, "--json")
    try:
        assert trickling_zabbix.connected.wait(RUN_TIMEOUT), "the run never reached Zabbix"
        fault.inject("Zabbix answering one byte every 3 s")
        newest = History(Repository(repository).history_path).runs(limit=1)
        assert newest and newest[0].verify_ok is True, "the history row waited for Zabbix"
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    elapsed = time.monotonic() - started
    fault.output(stdout, stderr)
    assert elapsed < RUN_TIMEOUT + ZABBIX_TIMEOUT + 10, f"the run took {elapsed:.0f}s"
    assert process.returncode == 1, stdout + stderr  # the values wait in the spool: a warning
    zabbix_result = json_result(json.loads(stdout), "zabbix")
    assert "run_timeout" in zabbix_result["summary"], zabbix_result["summary"]
    assert spooled(repository, keys.HEARTBEAT) and spooled(repository, keys.VERIFY_STATUS)[-1] == "1"
    final = History(Repository(repository).history_path).runs(limit=1)[0]
    assert final.exit_code == 1 and final.finished_at is not None and final.verify_ok is True
    fault.watch(repository)
