"""End-to-end: the installed `verifier` console script, run as a user runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.integration.conftest import nothing_left_behind, source_db  # noqa: F401 - shared fixtures

VERIFIER = Path(sys.executable).parent / "verifier"


def verifier(*arguments: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script with no terminal and returns what it printed."""
    if not VERIFIER.exists():
        pytest.fail(f"{VERIFIER} is missing: install the package into this environment (pip install -e .)")
    return subprocess.run(
        [str(VERIFIER), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def verifier_on_terminal(*arguments: str | Path, columns: int = 80, timeout: float = 300) -> tuple[int, str]:
    """Runs the console script with stdout and stderr on a pseudo-terminal `columns` wide, as a
    person at a terminal runs it. Returns (exit code, everything the terminal showed, with
    carriage returns and ANSI escapes kept)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [str(VERIFIER), *map(str, arguments)],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)},
    )
    os.close(secondary)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    try:
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"verifier {' '.join(map(str, arguments))} did not finish in {timeout}s")
    return code, shown.decode(errors="replace")


def plain(terminal_output: str) -> str:
    """Returns terminal output without ANSI escapes and with carriage-return overwrites resolved
    line by line (what remains visible), with '\\r\\n' as '\\n'."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", terminal_output).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
