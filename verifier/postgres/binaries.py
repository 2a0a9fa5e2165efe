"""Finding PostgreSQL programs of the right major version.

Search order: the configured directory, `PATH`, then `/usr/lib/postgresql/*/bin` (Debian's layout),
newest first. A `pg_dump` must be at least the server's major version; a restore server must be at
least the source's, preferably the same.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier import process
from verifier.errors import BinaryMissing

CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "psql")
SERVER_PROGRAMS = ("initdb", "postgres")
DEBIAN_PATTERN = "/usr/lib/postgresql/*/bin"
DEBIAN_12_MAJOR = 15  # the only major in Debian 12's own archive
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Installation:
    """One directory of PostgreSQL programs and the major version they belong to."""

    bin_dir: Path
    major: int
    version: str

    def program(self, name: str) -> Path:
        """Returns the path of `name` in this installation. Raises BinaryMissing if it is not there."""
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise BinaryMissing(
                f"{name} not found in {self.bin_dir} (PostgreSQL {self.major}); {how_to_install((name,), self.major)}"
            )
        return path

    def has(self, names: Iterable[str]) -> bool:
        """Returns True when every program in `names` is executable here."""
        return all(os.access(self.bin_dir / name, os.X_OK) for name in names)


def installations(configured_dir: Path | None = None) -> list[Installation]:
    """Returns every installation found, configured directory first, then PATH, then Debian's, deduplicated."""
    candidates: list[Path] = []
    if configured_dir is not None:
        candidates.append(configured_dir)
    for program in (*CLIENT_PROGRAMS, *SERVER_PROGRAMS):
        found = shutil.which(program)
        if found:
            candidates.append(Path(found).resolve().parent)
    candidates.extend(sorted(Path("/").glob(DEBIAN_PATTERN.lstrip("/")), key=_directory_major, reverse=True))
    seen: set[Path] = set()
    found_installations: list[Installation] = []
    for directory in candidates:
        resolved = directory.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        installation = _probe(resolved)
        if installation is not None:
            found_installations.append(installation)
    return found_installations


def choose(
    programs: Sequence[str],
    *,
    configured_dir: Path | None = None,
    minimum_major: int | None = None,
    prefer_major: int | None = None,
    purpose: str,
) -> Installation:
    """Returns the installation that has all `programs` with major >= `minimum_major`.

    The configured directory wins if it qualifies; otherwise `prefer_major` if present, else the
    lowest qualifying major (closest to the server). Raises BinaryMissing with the versions seen.
    """
    found = [i for i in installations(configured_dir) if i.has(programs)]
    qualifying = [i for i in found if minimum_major is None or i.major >= minimum_major]
    if not qualifying:
        seen = ", ".join(f"{i.major} ({i.bin_dir})" for i in found) or "none"
        need = f" {minimum_major} or newer" if minimum_major else ""
        raise BinaryMissing(
            f"{purpose} needs {'/'.join(programs)} of PostgreSQL{need}; found: {seen}. "
            + how_to_install(programs, minimum_major)
        )
    if configured_dir is not None and qualifying[0].bin_dir == configured_dir.resolve():
        return qualifying[0]
    preferred = [i for i in qualifying if i.major == prefer_major]
    if preferred:
        return preferred[0]
    return min(qualifying, key=lambda installation: installation.major)


def how_to_install(programs: Sequence[str], major: int | None) -> str:
    """Returns one sentence saying how to get `programs` of PostgreSQL `major` (default 15) on Debian/Ubuntu.

    A distribution's own archive carries one major (Debian 12: 15); every other comes from the PostgreSQL
    project's apt repository, which postgresql-common's script adds."""
    wanted = major or DEBIAN_12_MAJOR
    package = f"postgresql-{wanted}" if set(programs) & set(SERVER_PROGRAMS) else f"postgresql-client-{wanted}"
    repository = "" if wanted == DEBIAN_12_MAJOR else (
        f"Debian 12's archive has only {DEBIAN_12_MAJOR}: add the PostgreSQL apt repository first "
        f"(apt-get install postgresql-common && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y), then "
    )  # fmt: skip
    return f"{repository}apt-get install {package}; or set postgres.bin_dir to a directory that holds them"


def parse_major(version_output: str) -> tuple[int, str]:
    """Returns (major, full version) from `pg_dump --version`-style output. Raises ValueError if absent."""
    match = _VERSION.search(version_output)
    if match is None:
        raise ValueError(f"no PostgreSQL version in {version_output!r}")
    return int(match.group(1)), version_output.split(")", 1)[-1].strip().split()[0]


@functools.lru_cache(maxsize=32)
def _probe(bin_dir: Path) -> Installation | None:
    for program in (*CLIENT_PROGRAMS, *SERVER_PROGRAMS):
        path = bin_dir / program
        if os.access(path, os.X_OK):
            try:
                completed = process.run([path, "--version"], timeout=30)
                major, version = parse_major(completed.stdout)
            except (OSError, ValueError):
                continue
            return Installation(bin_dir=bin_dir, major=major, version=version)
    return None


def _directory_major(directory: Path) -> int:
    try:
        return int(directory.parent.name)
    except ValueError:
        return 0
