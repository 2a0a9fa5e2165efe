"""What a test may leave behind: nothing. Finds our temp directories and the postgres servers
running from them, so tests can assert that every path cleaned up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from verifier.postgres.throwaway.cluster import TEMP_PREFIX


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


CLIENT_PROGRAMS = frozenset({"pg_dump", "pg_dumpall", "pg_restore", "psql"})


def become_subreaper() -> None:
    """Makes this process the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`), so a
    pg_restore or psql whose agent was killed stays a descendant that `client_programs` can find."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # 36: PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def client_programs() -> set[int]:
    """Returns the pids of the live (not zombie) pg_dump, pg_dumpall, pg_restore and psql processes that
    descend from this process: by pid, so another developer's programs on the same machine never count."""
    return {pid for pid, name in descendants().items() if name in CLIENT_PROGRAMS}


def descendants() -> dict[int, str]:
    """Returns {pid: program name} of the live (not zombie) processes descending from this process."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            stat = (process / "stat").read_text()
        except OSError:
            continue
        name_end = stat.rindex(")")
        state, parent = stat[name_end + 2 :].split()[:2]
        if state != "Z":
            parents[int(process.name)] = int(parent)
            names[int(process.name)] = stat[stat.index("(") + 1 : name_end]
    me = os.getpid()
    found = {}
    for pid, name in names.items():
        ancestor = parents.get(pid, 0)
        while ancestor not in (0, 1, me):
            ancestor = parents.get(ancestor, 0)
        if ancestor == me:
            found[pid] = name
    return found
