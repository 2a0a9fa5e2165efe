"""The repository of several databases (`source.databases`): one subdirectory per database under
`databases/`, each a repository of its own (backups, manifests, `state/` with its history, `reports/`,
retention), and at the root the one lock, the nights' roles (`globals/`) and their summaries
(`reports/`). A repository of one database (`source.dbname`) keeps its backups at the root as it
always did: nothing is moved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

from verifier.errors import RepositoryError
from verifier.repository.backups import NAME_TIME_FORMAT, Repository

DATABASES_DIR = "databases"
GLOBALS_DIR = "globals"
GLOBALS_SUFFIX = ".globals.sql"


def directory_name(dbname: str) -> str:
    """Returns the subdirectory name of database `dbname`: the name itself where it is a plain file
    name, else percent-encoded (a '/', a leading '.', a '%'), so that every name has one directory and
    `database_name` reads it back."""
    encoded = quote(dbname, safe="-_.+@=,")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def database_name(directory: str) -> str:
    """Returns the database name of a subdirectory made by `directory_name`."""
    return unquote(directory)


class Databases:
    """The per-database repositories under one root."""

    def __init__(self, root: Path) -> None:
        self.root = Repository(root)

    @property
    def directory(self) -> Path:
        """Returns the directory holding one subdirectory per database."""
        return self.root.path / DATABASES_DIR

    @property
    def globals_dir(self) -> Path:
        """Returns the directory of the nights' `pg_dumpall --globals-only` files."""
        return self.root.path / GLOBALS_DIR

    def repository(self, dbname: str) -> Repository:
        """Returns the repository of database `dbname` (it may not exist yet)."""
        return Repository(self.directory / directory_name(dbname))

    def held(self) -> list[str]:
        """Returns the names of the databases with a subdirectory, in name order."""
        if not self.directory.is_dir():
            return []
        return sorted(database_name(path.name) for path in self.directory.iterdir() if path.is_dir())

    def chosen(self, dbname: str | None) -> list[str]:
        """Returns the databases a command about the repository covers: `dbname` (`--db`), else every
        database held. Raises RepositoryError when `dbname` is not held."""
        held = self.held()
        if dbname is None or dbname in held:
            return held if dbname is None else [dbname]
        raise RepositoryError(
            f"--db {dbname}: the repository {self.root.path} holds no such database "
            f"({'it holds ' + ', '.join(held) if held else 'it holds none yet'})"
        )

    def globals_path(self, at: datetime) -> Path:
        """Returns where the roles read at `at` (UTC) are kept."""
        return self.globals_dir / f"{at.strftime(NAME_TIME_FORMAT)}{GLOBALS_SUFFIX}"

    def prune_globals(self) -> list[Path]:
        """Deletes the roles files no backup needs any more: those older than the one read on (or last
        before) the night of the oldest backup any database still holds. Returns what was deleted."""
        oldest = min(
            (backup.created_at for name in self.held() for backup in self.repository(name).backups()), default=None
        )
        if oldest is None:
            return []
        dated = [(path, _taken_at(path)) for path in sorted(self.globals_dir.glob(f"*{GLOBALS_SUFFIX}"))]
        before = [path for path, taken in dated if taken is not None and taken <= oldest]
        for path in before[:-1]:
            path.unlink(missing_ok=True)
        return before[:-1]


def _taken_at(path: Path) -> datetime | None:
    """Returns the time a roles file's name carries (UTC), None for a foreign name."""
    try:
        return datetime.strptime(path.name.removesuffix(GLOBALS_SUFFIX), NAME_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
