"""A repository found open to other users: while it was group- or world-writable anyone could have planted
or replaced a file the agent later reads (a dump, a manifest, its history), so tightening it is not enough
on its own: the run says so, naming the directory and what inside it belongs to someone else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SHOWN = 10  # names listed in the warning; the rest are counted


def found_open(path: Path) -> list[str]:
    """Returns the warning about the repository at `path` as it is now (call it before `Repository.ensure`
    tightens it): [] when it does not exist yet or only its owner can write it."""
    try:
        found = path.stat()
    except OSError:
        return []
    mode = found.st_mode
    ours = found.st_uid == os.geteuid()  # else the agent cannot chmod it (a volume's root): it stays so
    warning = open_repository_warning(path, mode, tightened=ours) if stat.S_ISDIR(mode) else None
    return [warning] if warning else []


def open_repository_warning(path: Path, mode: int, *, tightened: bool = True) -> str | None:
    """Returns the warning for a repository root whose `mode` (as found, before tightening) lets its group or
    others write, naming what inside is not the agent's own and whether it is now 0700 (`tightened`) or
    stays as it is; None when only its owner could write."""
    if not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    who = "everyone" if mode & stat.S_IWOTH else "its group"
    foreign = not_written_by_the_agent(path)
    found = "nothing inside belongs to another user"
    if foreign:
        listed = ", ".join(str(entry.relative_to(path)) for entry in foreign[:SHOWN])
        more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        found = f"inside, not written by the agent: {listed}{more}"
    now = "now 0700" if tightened else "and stays so (not the agent's to chmod)"
    return (
        f"repository {path} was writable by {who} (mode {stat.S_IMODE(mode):04o}), {now}; {found}; "
        "check that nothing was planted or replaced"
    )


def not_written_by_the_agent(path: Path) -> list[Path]:
    """Returns the entries under `path` owned by another user than the one running, sorted (links not followed)."""
    agent = os.geteuid()
    foreign: list[Path] = []
    for directory, subdirectories, files in os.walk(path):
        for name in (*subdirectories, *files):
            entry = Path(directory) / name
            try:
                if entry.lstat().st_uid != agent:
                    foreign.append(entry)
            except OSError:
                continue
    return sorted(foreign)
