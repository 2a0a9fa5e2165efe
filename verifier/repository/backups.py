"""Listing and naming the backups of a repository.

A backup is a dump (`NAME.dump.zst`, `NAME.dump`, `NAME.sql.gz` or the directory `NAME.dir`) plus its manifest
`NAME.json`, and optionally `NAME.globals.sql`. Dumps without a manifest (a cron'd
`pg_dump | gzip`) are listed as legacy backups: they can be verified, but not exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from verifier.errors import RepositoryError
from verifier.manifest import Manifest, read_manifest
from verifier.repository.ownership import make_private

logger = logging.getLogger(__name__)

DUMP_SUFFIX = {"custom": ".dump", "directory": ".dir", "plain": ".sql.gz"}
ZSTD_SUFFIX = ".zst"  # a custom archive compressed by the agent (archive/zstd.py)
LEGACY_SUFFIXES = (".sql.gz", ".sql", ".dump.zst", ".dump", ".backup")
PARTIAL_SUFFIX = ".partial"
NAME_TIME_FORMAT = "%Y-%m-%d_%H-%M-%SZ"
AGENT_DUMP_NAME = re.compile(
    r"^(?P<name>.+_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\dZ(?:-\d+)?)(?:\.dump\.zst|\.dump|\.dir|\.sql\.gz)$"
)
"""How the agent names its dumps (UTC, with a Z): such a file without its manifest is not a legacy dump."""
MANIFEST_MISSING = "manifest missing: nothing proves this backup whole or says what it held"


@dataclass(frozen=True)
class Backup:
    """One backup in (or handed to) the repository."""

    name: str
    dump_path: Path
    manifest_path: Path | None
    manifest: Manifest | None
    created_at: datetime
    size_bytes: int
    format: str
    problem: str | None = None  # why its manifest cannot be trusted (missing, unreadable, paths outside)

    @property
    def legacy(self) -> bool:
        """Returns True for a dump the agent did not make (no manifest): no exact comparison possible."""
        return self.manifest is None

    @property
    def paths(self) -> list[Path]:
        """Returns every path that belongs to this backup (dump, manifest, globals)."""
        paths = [self.dump_path]
        if self.manifest_path is not None:
            paths.append(self.manifest_path)
        if self.manifest is not None and self.manifest.globals_path:
            paths.append(self.dump_path.parent / self.manifest.globals_path)
        return paths


class Repository:
    """The directory holding backups, `reports/`, `state/` (history, spool) and the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def reports_dir(self) -> Path:
        """Returns the directory of per-run JSON/HTML reports."""
        return self.path / "reports"

    @property
    def state_dir(self) -> Path:
        """Returns the directory of the history database and the Zabbix spool."""
        return self.path / "state"

    @property
    def history_path(self) -> Path:
        """Returns the SQLite run history."""
        return self.state_dir / "history.sqlite"

    @property
    def spool_path(self) -> Path:
        """Returns the file of values not yet delivered to Zabbix."""
        return self.state_dir / "zabbix-spool.jsonl"

    @property
    def lock_path(self) -> Path:
        """Returns the lock file."""
        return self.path / ".lock"

    def ensure(self) -> bool:
        """Creates the repository directories with mode 0700 (tightening an existing root where the agent
        may: `ownership.make_private`). Returns True when the repository itself did not exist before.
        Raises RepositoryError (a root that would expose the backups), OSError."""
        created = not self.path.exists()
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(self.path)
        for directory in (self.reports_dir, self.state_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
        return created

    def must_exist(self) -> None:
        """For the commands that only read: a missing repository is never created (a typo'd
        repository.path would silently become an empty repository, with all its parents).

        Raises RepositoryError (exit 3) when the directory does not exist or is not a directory.
        """
        if not self.path.is_dir():
            what = "is not a directory" if self.path.exists() else "does not exist"
            raise RepositoryError(
                f"repository {self.path} {what}: check repository.path in the config "
                "(`verifier run` creates a missing repository)"
            )

    def backups(self) -> list[Backup]:
        """Returns every complete backup, oldest first. Partial files and foreign files are ignored.

        A manifest is trusted only where it is right: one naming a path outside the repository, and
        a dump named as the agent names its own whose manifest is missing or unreadable, are listed
        with their `problem` (never as legacy dumps, which would be compared approximately).
        """
        if not self.path.is_dir():
            return []
        found: dict[str, Backup] = {}
        claimed: set[Path] = set()
        unreadable: dict[str, str] = {}
        for manifest_path in sorted(self.path.glob("*.json")):
            try:
                manifest = read_manifest(manifest_path)
            except ValueError as error:
                logger.warning("%s", error)
                unreadable[manifest_path.name.removesuffix(".json")] = f"manifest unreadable: {error}"
                continue
            outside = self._outside(manifest)
            dump_path = self.path / manifest.dump_path
            if outside is None and not dump_path.exists():
                logger.warning("manifest %s names %s, which is missing", manifest_path.name, dump_path.name)
                continue
            claimed.add(dump_path)
            found[manifest.name] = Backup(
                name=manifest.name,
                dump_path=dump_path if outside is None else manifest_path,
                manifest_path=manifest_path,
                manifest=manifest,
                created_at=manifest.created_at,
                size_bytes=manifest.size_bytes,
                format=manifest.format,
                problem=None if outside is None else f"its manifest names a path outside the repository: {outside}",
            )
        for candidate in sorted(self.path.iterdir()):
            if candidate in claimed or candidate.name.endswith(PARTIAL_SUFFIX):
                continue
            agent_name = AGENT_DUMP_NAME.match(candidate.name)
            if agent_name is not None and agent_name.group("name") not in found:
                name = agent_name.group("name")
                backup = legacy_backup(candidate)
                problem = unreadable.get(name, MANIFEST_MISSING)
                found[name] = dataclasses.replace(backup, name=name, problem=problem)
            elif (
                agent_name is None
                and candidate.is_file()
                and candidate.name.endswith(LEGACY_SUFFIXES)
                and not candidate.name.endswith(".globals.sql")
            ):
                legacy = legacy_backup(candidate)
                found.setdefault(legacy.name, legacy)
        return sorted(found.values(), key=lambda backup: backup.created_at)

    def newest(self, now: datetime | None = None) -> Backup | None:
        """Returns the most recent backup (not dated in the future when `now` is given), or None."""
        return newest_backup(self.backups(), now)

    def databases(self) -> set[str]:
        """Returns the names of the databases whose backups (with a manifest) the repository holds."""
        return {backup.manifest.source.dbname for backup in self.backups() if backup.manifest is not None}

    def _outside(self, manifest: Manifest) -> str | None:
        """Returns the first path of `manifest` that leaves the repository, or None."""
        root = self.path.resolve()
        for relative in (manifest.dump_path, manifest.globals_path, *(entry.path for entry in manifest.files)):
            if relative is None:
                continue
            if Path(relative).is_absolute() or not (self.path / relative).resolve().is_relative_to(root):
                return relative
        return None

    def remove_partials(self) -> list[Path]:
        """Deletes `*.partial` files, and manifests whose dump never got its final name, left by a killed
        run (call only while holding the lock).

        Returns what was removed.
        """
        removed = []
        for manifest_path in self.path.glob("*.json"):  # written before its dump's rename: the run died between
            dump_name = AGENT_DUMP_NAME.match(_manifest_dump_name(manifest_path))
            if dump_name is not None and not (self.path / dump_name.group(0)).exists():
                for path in (manifest_path, self.globals_path_for(dump_name.group("name"))):
                    path.unlink(missing_ok=True)
                    removed.append(path)
        for partial in self.path.glob(f"*{PARTIAL_SUFFIX}"):
            if partial.is_dir() and not partial.is_symlink():  # a symlink is removed, never followed
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)
            removed.append(partial)
        return removed

    def new_backup_name(self, dbname: str, at: datetime) -> str:
        """Returns `DBNAME_YYYY-mm-dd_HH-MM-SSZ` (UTC), a name no backup in the repository uses yet."""
        base = f"{_safe(dbname)}_{at.astimezone(UTC).strftime(NAME_TIME_FORMAT)}"
        name, counter = base, 1
        while any(self.path.glob(f"{name}.*")):
            counter += 1
            name = f"{base}-{counter}"
        return name

    def dump_path_for(self, name: str, dump_format: str, *, zstd: bool = False) -> Path:
        """Returns where the dump of backup `name` in `dump_format` lives (compressed by the agent with
        `zstd`: `.dump.zst`)."""
        return self.path / f"{name}{DUMP_SUFFIX[dump_format]}{ZSTD_SUFFIX if zstd else ''}"

    def manifest_path_for(self, name: str) -> Path:
        """Returns where the manifest of backup `name` lives."""
        return self.path / f"{name}.json"

    def globals_path_for(self, name: str) -> Path:
        """Returns where the roles dump (`pg_dumpall --globals-only`) of backup `name` lives."""
        return self.path / f"{name}.globals.sql"


def _manifest_dump_name(manifest_path: Path) -> str:
    """Returns the dump file a manifest names, or "" when it cannot be read."""
    try:
        return read_manifest(manifest_path).dump_path
    except ValueError:
        return ""


FUTURE_TOLERANCE = timedelta(minutes=5)
"""A backup dated further ahead than this is from a wrong clock: reported, never counted as fresh."""


def newest_backup(backups: list[Backup], now: datetime | None = None) -> Backup | None:
    """Returns the newest of `backups` (oldest first) that is not dated in the future, or None."""
    usable = backups if now is None else [backup for backup in backups if backup.created_at <= now + FUTURE_TOLERANCE]
    return usable[-1] if usable else None


def future_backups(backups: list[Backup], now: datetime) -> list[Backup]:
    """Returns the backups dated in the future (a wrong clock when they were taken, or now)."""
    return [backup for backup in backups if backup.created_at > now + FUTURE_TOLERANCE]


def backup_from_file(path: Path) -> Backup:
    """Returns the backup at `path`: with its manifest when one lies beside it, else as legacy.

    Raises FileNotFoundError when `path` does not exist.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    for manifest_path in path.parent.glob("*.json"):
        try:
            manifest = read_manifest(manifest_path)
        except ValueError:
            continue
        if manifest.dump_path == path.name:
            return Backup(
                name=manifest.name,
                dump_path=path,
                manifest_path=manifest_path,
                manifest=manifest,
                created_at=manifest.created_at,
                size_bytes=manifest.size_bytes,
                format=manifest.format,
            )
    return legacy_backup(path)


def legacy_backup(path: Path) -> Backup:
    """Returns a manifest-less backup for a dump file; its time is the file's modification time."""
    stat = path.stat()
    name = path.name
    for suffix in LEGACY_SUFFIXES:
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    dump_format = "plain" if path.name.endswith((".sql", ".sql.gz")) else "custom"
    if path.is_dir():
        dump_format = "directory"
    return Backup(
        name=name,
        dump_path=path,
        manifest_path=None,
        manifest=None,
        created_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        size_bytes=stat.st_size,
        format=dump_format,
    )


def _safe(name: str) -> str:
    return "".join(character if character.isalnum() or character in "-_" else "_" for character in name)
