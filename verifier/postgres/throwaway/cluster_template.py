"""A pristine data directory, made by initdb once per PostgreSQL version and copied for each new
temporary cluster: a copy takes half of initdb's time, so the sandbox is ready in well under a
second. The templates live in the agent's cache (`verify.template_dir`, default /var/cache/pg-backup-verifier
for root: see `verifier.sandbox.template_root`), never in the repository, whose space the dump needs;
they belong to the agent (root) and are never started: the sandbox account, whose server runs a backup's
SQL, gets a copy it owns but cannot read or change the template future sandboxes start from.
"""

from __future__ import annotations

import contextlib
import errno
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
SUPERUSER = "postgres"  # the superuser initdb makes: every temporary cluster's (cluster.py imports it)
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


def template_for(installation: Installation, root: Path, user: process.User | None) -> Path:
    """Returns the pristine data directory for `installation` kept in `root`, creating it first when
    there is none. Raises SandboxError."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise SandboxError(f"cannot keep the sandbox template in {root}: {error.strerror or error}") from None
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
        workdir = Path(tempfile.mkdtemp(prefix=TEMPLATE_PREFIX))  # initdb's own, out of reach of the state dir
        try:
            if user is not None:
                os.chown(workdir, user.uid, user.gid)
                workdir.chmod(0o700)
            initdb(installation, workdir / "data", user, workdir)
            shutil.copytree(workdir / "data", building / "data", symlinks=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        # copied by the agent: the template is the agent's (root's), the sandbox account never sees it
        (building / _COMPLETE).write_text(f"{installation.version}\n")
        try:
            building.rename(final)
        except OSError:  # another run made it first (or a broken one is in the way): use ours this once
            if (final / _COMPLETE).is_file():
                shutil.rmtree(building, ignore_errors=True)
                return final / "data"
            shutil.rmtree(final, ignore_errors=True)
            building.rename(final)
    except shutil.Error:
        shutil.rmtree(building, ignore_errors=True)
        raise SandboxError(f"cannot keep the sandbox template in {root}: copying it failed") from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final / "data"


def copy_template(template: Path, data_dir: Path, user: process.User | None) -> None:
    """Copies the pristine `template` to `data_dir`, owned by `user` when given. Raises SandboxError."""
    try:
        shutil.copytree(template, data_dir, symlinks=True)
        if user is not None:
            chown_tree(data_dir, user.uid, user.gid)
        data_dir.chmod(0o700)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            free = shutil.disk_usage(data_dir.parent.parent).free // 1048576
            raise SandboxError(
                f"the sandbox ran out of disk space copying its template ({free} MiB free in "
                f"{data_dir.parent.parent}); point verify.temp_dir at a larger disk"
            ) from None
        raise SandboxError(f"copying the sandbox template {template} failed: {error.strerror or error}") from None


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """Gives `top` and everything under it (symlinks themselves, not their targets) to uid:gid."""
    os.chown(top, uid, gid)
    for directory, subdirectories, files in os.walk(top):
        for name in (*subdirectories, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(Path(directory) / name, uid, gid, follow_symlinks=False)
