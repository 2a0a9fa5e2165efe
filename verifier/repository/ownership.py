"""Making a repository root private (0700) where the agent may, and saying so honestly where it may not.

A Kubernetes volume's root belongs to root (fsGroup changes only its group), so the agent can write in it
but not chmod it. Such a root is used as it is, with one WARNING line, when only its owner and the
agent's group can enter it; it is refused when others could read the backups put there.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from verifier.errors import RepositoryError

logger = logging.getLogger(__name__)

PRIVATE = 0o700


def make_private(path: Path) -> None:
    """Makes the existing directory `path` mode 0700; where it cannot (not the agent's, or a volume that
    refuses chmod), logs one WARNING and leaves it as it is when it is closed to others. Raises
    RepositoryError when it would expose the backups or the agent cannot write in it; OSError when
    `path` cannot be read."""
    try:
        path.chmod(PRIVATE)
        return
    except PermissionError:
        found = path.stat()
    mode = stat.S_IMODE(found.st_mode)
    shown = f"mode {mode:04o}"
    own = f"repository {path} belongs to uid {found.st_uid}"
    advice = f"have its owner run chmod o-rwx {path}, or point repository.path to a directory below it"
    if mode & stat.S_IRWXO:
        raise RepositoryError(
            f"{own} and others can enter it ({shown}); the agent cannot make it 0700 and will not put "
            f"backups where others can read them: {advice}"
        )
    agents_group = found.st_gid in {os.getegid(), *os.getgroups()}
    if mode & stat.S_IRWXG and not agents_group:
        raise RepositoryError(
            f"{own} and its group {found.st_gid}, not the agent's, can enter it ({shown}); the agent cannot "
            f"make it 0700: {advice}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise RepositoryError(f"{own} ({shown}) and the agent cannot write in it: fix repository.path or its owner")
    who = f"its owner and group {found.st_gid} (one of the agent's)" if mode & stat.S_IRWXG else "its owner"
    logger.warning("%s (%s) and cannot be made 0700 by the agent: used as it is, since only %s can enter it",
                   own, shown, who)  # fmt: skip
