"""What the agent asks of a physical backup tool: its backups and WAL window, a restore of one backup into
a directory, one archived WAL segment. pgBackRest implements it (`pgbackrest.py`); Barman or WAL-G can follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from verifier.errors import VerifierError

BackupKind = Literal["full", "diff", "incr"]


class PhysicalError(VerifierError):
    """A physical backup could not be listed, restored or recovered; the message is one line naming what
    (a damaged file, a missing WAL segment, recovery short of its target). A finding about the backup: exit 2.
    `backup` is the backup it is about, once one was chosen (the report and `list --physical` name it)."""

    exit_code = 2
    backup: PhysicalBackup | None = None


class EngineFailed(PhysicalError):
    """The backup tool itself could not run (missing, misconfigured, its repository unreachable)."""

    exit_code = 3


@dataclass(frozen=True)
class PhysicalBackup:
    """One backup in the tool's repository. LSNs as PostgreSQL writes them ('0/2000028'); `wal_start` and
    `wal_stop` are the WAL segments a restore of it needs at least; `prior`, the backup it builds on."""

    label: str
    kind: BackupKind
    started: datetime
    stopped: datetime
    start_lsn: str
    stop_lsn: str
    wal_start: str
    wal_stop: str
    size_bytes: int
    repository_bytes: int
    prior: str | None


@dataclass(frozen=True)
class WalWindow:
    """The archived WAL: its oldest and newest segment and when the newest arrived (None: empty archive)."""

    oldest: str | None
    newest: str | None
    newest_archived_at: datetime | None


@dataclass(frozen=True)
class Inventory:
    """What the repository holds: backups oldest first, the WAL window, the cluster's major version."""

    backups: tuple[PhysicalBackup, ...]
    wal: WalWindow
    major: int | None


@dataclass(frozen=True)
class RecoveryTarget:
    """Where recovery stops: before an LSN (`lsn`), at a restore point (`name`), as soon as consistent
    (`immediate`), or at the end of the archive (`latest`)."""

    kind: Literal["lsn", "name", "immediate", "latest"]
    value: str | None = None

    def describe(self) -> str:
        """Returns e.g. 'LSN 0/41203C0' or 'the end of the archive'."""
        return {
            "lsn": f"LSN {self.value}",
            "name": f"restore point {self.value}",
            "immediate": "the backup's consistent point",
            "latest": "the end of the archive",
        }[self.kind]


class Engine(Protocol):
    """A physical backup tool, as the proof uses it."""

    name: str

    def inventory(self) -> Inventory:
        """Returns the backups and the WAL window. Raises EngineFailed."""

    def restore(self, backup: PhysicalBackup, target: RecoveryTarget, data_dir: Path) -> None:
        """Restores `backup` into the existing empty `data_dir` (tablespaces beside it, never at their
        production paths) with recovery settings for `target`. Raises PhysicalError naming a damaged file."""

    def fetch_wal(self, segment: str, destination: Path) -> bool:
        """Copies archived WAL `segment` to `destination`. Returns False when the archive lacks it.
        Raises PhysicalError when it is there but cannot be read."""
