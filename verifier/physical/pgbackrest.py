"""pgBackRest as the physical backup engine: `info --output=json`, `repo-ls`, `restore`, `archive-get`.

Every call is an argv list through `verifier.process` (no shell); pgBackRest reads its secrets (repository
keys, cipher passphrases) from its own config file or its PGBACKREST_* environment, never from our argv.
Errors become one line: pgBackRest's first `ERROR: [code]:` line, without its "raised from local-1 protocol"
relay prefix and with the restore directory's path cut down to the file inside it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier import process
from verifier.config_physical import PhysicalConfig
from verifier.errors import one_line
from verifier.physical.engine import (
    EngineFailed,
    Inventory,
    PhysicalBackup,
    PhysicalError,
    RecoveryTarget,
    WalWindow,
)

PROGRAM = "pgbackrest"
INFO_TIMEOUT_SECONDS = 300.0
RESTORE_TIMEOUT_SECONDS = 24 * 3600.0
ARCHIVE_GET_TIMEOUT_SECONDS = 600.0
ARCHIVE_GET_NOT_FOUND = 1  # archive-get's exit code for a segment the archive does not hold
TABLESPACES = "tablespaces"  # beside the restored data directory: never production's tablespace paths
_ERROR = re.compile(r"^ERROR: \[(\d+)\]: (?:raised from [\w-]+ protocol: )?(.*)$")


class PgBackRest:
    """pgBackRest for one stanza (and optionally one config file and one repository)."""

    name = "pgBackRest"

    def __init__(self, physical: PhysicalConfig) -> None:
        self.physical = physical

    def _argv(self, command: str, *options: str) -> list[str]:
        program = shutil.which(PROGRAM)
        if program is None:
            raise EngineFailed("pgBackRest is not installed: apt-get install pgbackrest (physical.tool: pgbackrest)")
        argv = [program, f"--stanza={self.physical.stanza}", "--log-level-console=off", "--log-level-stderr=error"]
        if self.physical.config is not None:
            argv.append(f"--config={self.physical.config}")
        if self.physical.repo is not None:
            argv.append(f"--repo={self.physical.repo}")
        return [*argv, *options, command]

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return process.run(argv, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineFailed(f"pgBackRest {argv[-1]} did not finish within {timeout:.0f}s") from None

    def inventory(self) -> Inventory:
        """Returns the stanza's backups (oldest first) and WAL window. Raises EngineFailed with pgBackRest's
        reason (no such stanza, repository unreachable)."""
        completed = self._run(self._argv("info", "--output=json"), INFO_TIMEOUT_SECONDS)
        if completed.returncode != 0:
            raise EngineFailed(f"pgBackRest info failed: {error_line(completed.stderr, completed.returncode)}")
        try:
            stanzas = json.loads(completed.stdout)
            inventory = parse_info(stanzas[0])
        except (ValueError, LookupError, TypeError) as error:
            raise EngineFailed(f"pgBackRest info gave output this agent cannot read: {one_line(error)}") from None
        if inventory.wal.newest is None:
            return inventory
        arrived = self._archived_at(stanzas[0], inventory.wal.newest)
        return Inventory(
            inventory.backups, WalWindow(inventory.wal.oldest, inventory.wal.newest, arrived), inventory.major
        )

    def _archived_at(self, stanza: dict[str, Any], segment: str) -> datetime | None:
        """Returns when `segment` arrived in the archive (the repository file's time), None when unknown."""
        archive_id = stanza["archive"][-1]["id"]
        path = f"archive/{self.physical.stanza}/{archive_id}/{segment[:16]}"
        completed = self._run(
            [*self._argv("repo-ls", "--output=json", f"--filter=^{segment}"), path], INFO_TIMEOUT_SECONDS
        )
        if completed.returncode != 0:
            return None
        try:
            times = [entry["time"] for entry in json.loads(completed.stdout).values() if entry.get("type") == "file"]
        except (ValueError, AttributeError, TypeError):
            return None
        return datetime.fromtimestamp(max(times), UTC) if times else None

    def restore(self, backup: PhysicalBackup, target: RecoveryTarget, data_dir: Path) -> None:
        """Restores `backup` into the empty `data_dir`, tablespaces under `data_dir/../tablespaces`, with
        pgBackRest's recovery settings for `target` (promote when reached). Raises PhysicalError naming the
        damaged file (a checksum that does not match), EngineFailed."""
        options = [
            f"--pg1-path={data_dir}",
            f"--set={backup.label}",
            f"--tablespace-map-all={data_dir.parent / TABLESPACES}",
        ]
        if target.kind == "latest":
            options.append("--type=default")
        else:
            options += [f"--type={target.kind}", "--target-action=promote"]
            if target.value is not None:
                options.append(f"--target={target.value}")
            if target.kind == "lsn":
                options.append("--target-exclusive")
        options.append("--job-retry=0")  # a damaged file is named at once, not after retries 15 s apart
        completed = self._run(self._argv("restore", *options), RESTORE_TIMEOUT_SECONDS)
        if completed.returncode != 0:
            reason = error_line(completed.stderr, completed.returncode).replace(f"{data_dir}/", "")
            raise PhysicalError(f"pgBackRest could not restore backup {backup.label}: {reason}")

    def fetch_wal(self, segment: str, destination: Path) -> bool:
        """Copies archived WAL `segment` to `destination` (pg_control of the restored data directory beside
        it is what pgBackRest checks the archive against). Returns False when the archive lacks it.
        Raises PhysicalError when it cannot be read."""
        data_dir = destination.parent.parent
        argv = self._argv("archive-get", f"--pg1-path={data_dir}")
        completed = self._run([*argv, segment, str(destination)], ARCHIVE_GET_TIMEOUT_SECONDS)
        if completed.returncode == ARCHIVE_GET_NOT_FOUND and not completed.stderr.strip():
            return False
        if completed.returncode != 0:
            raise PhysicalError(
                f"pgBackRest could not read WAL segment {segment} from the archive: "
                f"{error_line(completed.stderr, completed.returncode)}"
            )
        return True


def error_line(stderr: str, returncode: int) -> str:
    """Returns pgBackRest's first error as one line ('[026] error restoring …'), or its last output line."""
    for line in stderr.splitlines():
        found = _ERROR.match(line.strip())
        if found:
            return f"[{found.group(1)}] {found.group(2).strip()}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {returncode}, no message"


def parse_info(stanza: dict[str, Any]) -> Inventory:
    """Returns the inventory of one stanza of `pgbackrest info --output=json`. Raises EngineFailed when
    pgBackRest says the stanza is unusable; KeyError/ValueError/TypeError on output of another shape."""
    status = stanza["status"]
    if status["code"] not in (0, 2):  # 2: no backup yet
        raise EngineFailed(f"pgBackRest stanza {stanza['name']}: {status['message']}")
    backups = tuple(_backup(entry) for entry in stanza.get("backup", []))
    archives = stanza.get("archive", [])
    current = archives[-1] if archives else {}
    window = WalWindow(current.get("min"), current.get("max"), None)
    databases = stanza.get("db", [])
    major = int(str(databases[-1]["version"]).split(".")[0]) if databases else None
    return Inventory(backups, window, major)


def _backup(entry: dict[str, Any]) -> PhysicalBackup:
    return PhysicalBackup(
        label=str(entry["label"]),
        kind=entry["type"],
        started=datetime.fromtimestamp(entry["timestamp"]["start"], UTC),
        stopped=datetime.fromtimestamp(entry["timestamp"]["stop"], UTC),
        start_lsn=str(entry["lsn"]["start"]),
        stop_lsn=str(entry["lsn"]["stop"]),
        wal_start=str(entry["archive"]["start"]),
        wal_stop=str(entry["archive"]["stop"]),
        size_bytes=int(entry["info"]["size"]),
        repository_bytes=int(entry["info"]["repository"]["size"]),
        prior=entry.get("prior"),
    )
