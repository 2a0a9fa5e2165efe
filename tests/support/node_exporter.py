"""A real node_exporter (Debian's prometheus-node-exporter, dev/install-prometheus) with only its textfile
collector, on 127.0.0.1, for the test that lets Prometheus's own reader judge the agent's file."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRAM = "prometheus-node-exporter"


def installed() -> bool:
    """Returns True when node_exporter is on PATH."""
    return shutil.which(PROGRAM) is not None


@contextmanager
def node_exporter(textfile_directory: Path, timeout: float = 30) -> Iterator[str]:
    """Runs node_exporter reading `textfile_directory`; yields its /metrics URL; stops it on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [
            PROGRAM, "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={textfile_directory}", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"node_exporter ended: {process.communicate()[1]}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"node_exporter did not answer on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def scrape(url: str) -> str:
    """Returns what Prometheus would read from `url`."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode("utf-8"))
