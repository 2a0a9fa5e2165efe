"""A pristine data directory, made by initdb once per PostgreSQL version and copied for each new
temporary cluster: a copy takes a tenth of initdb's time, so the sandbox is ready in well under a
second. The template belongs to the agent (root) and is never started: the sandbox account, whose
server runs a backup's SQL, can read a copy but never change the template future sandboxes start from.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from verifier import process
from verifier.errors import SandboxError
from verifier.postgres.binaries import Installation

TEMPLATE_PREFIX = "pgbv-template-"  # not the temporary clusters' prefix: the orphan sweep leaves it alone
SUPERUSER = "postgres"  # as in cluster.py, which imports this module
STALE_SECONDS = 3600.0
_COMPLETE = "template-complete"  # written last: a directory without it is an interrupted creation


def initdb(installation: Installation, data_dir: Path, user: process.User | None, cwd: Path) -> None:
    """Creates a cluster in `data_dir` (UTF8, C.UTF-8, trust, no fsync) as `user`. Raises SandboxError."""
    completed = process.run(
        [
            installation.program("initdb"),
            "--pgdata",
            data_dir,
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ],
        user=user,
        cwd=cwd,
        timeout=300,
        sandboxed=True,
    )
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        raise SandboxError(f"initdb failed: {lines[-1] if lines else 'no message'}")


def template_for(installation: Installation, base_dir: Path | None, user: process.User | None) -> Path:
    """Returns the pristine data directory for `installation` in `base_dir` (default: the temp dir),
    creating it first when there is none. Raises SandboxError."""
    root = Path(base_dir or tempfile.gettempdir())
    owner = os.geteuid()
    final = root / f"{TEMPLATE_PREFIX}{installation.version}-{owner}"
    if (final / _COMPLETE).is_file():
        return final / "data"
    for stale in root.glob(f"{final.name}.*"):  # a creation killed half-way (SIGKILL) long ago
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(stale)
    building = root / f"{TEMPLATE_PREFIX}{installation.version}-{owner}.{secrets.token_hex(4)}"
    building.mkdir(mode=0o700)
    try:
        if user is not None:
            os.chown(building, user.uid, user.gid)  # initdb runs as the unprivileged account
        initdb(installation, building / "data", user, building)
        if user is not None:  # the agent's from now on: the sandbox account may read copies, not this
            _chown_tree(building, os.geteuid(), os.getegid())
        (building / _COMPLETE).write_text(f"{installation.version}\n")
        try:
            building.rename(final)
        except OSError:  # another run made it first (or a broken one is in the way): use ours this once
            if (final / _COMPLETE).is_file():
                shutil.rmtree(building, ignore_errors=True)
                return final / "data"
            shutil.rmtree(final, ignore_errors=True)
            building.rename(final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final / "data"


def copy_template(template: Path, data_dir: Path, user: process.User | None) -> None:
    """Copies the pristine `template` to `data_dir`, owned by `user` when given. Raises SandboxError."""
    try:
        shutil.copytree(template, data_dir, symlinks=True)
        if user is not None:
            _chown_tree(data_dir, user.uid, user.gid)
        data_dir.chmod(0o700)
    except OSError as error:
        raise SandboxError(f"copying the sandbox template {template} failed: {error.strerror or error}") from None


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for directory, subdirectories, files in os.walk(top):
        for name in (*subdirectories, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(Path(directory) / name, uid, gid, follow_symlinks=False)
