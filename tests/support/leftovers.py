"""What a test may leave behind: nothing. Finds our temp directories and the postgres servers
running from them, so tests can assert that every path cleaned up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from verifier.postgres.cluster import TEMP_PREFIX


def temp_dirs() -> set[Path]:
    """Returns the temp directories whose names carry our prefix (in this test session's temp dir)."""
    return set(Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"))


def postgres_servers() -> set[str]:
    """Returns the command lines (`postgres -D <data dir>`) of the running postgres servers whose data
    lives in this session's temp dir."""
    found = set()
    where = f"{tempfile.gettempdir()}/{TEMP_PREFIX}"
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            command = (process / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(part.decode(errors="replace") for part in command if part)
        if command and command[0].endswith(b"postgres") and where in text:
            found.add(text)  # not the pid: a backend just forked still shows its postmaster's command line
    return found
