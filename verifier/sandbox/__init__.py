"""Where a backup is restored for proof: behind one small interface, always torn down.

`local` (default): a temporary cluster from this host's binaries (`verifier.postgres.throwaway.cluster`).
`server`: a scratch database the agent creates on a server the user names, and drops.
`docker`: a throwaway container of the production image (see `verifier.sandbox.docker`).
Each is a context manager; leaving it (normally, by error, Ctrl-C or SIGTERM) removes everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from verifier.config import PostgresConfig, VerifyConfig
from verifier.errors import SandboxError
from verifier.manifest import SourceInfo
from verifier.postgres import binaries
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import Source
from verifier.postgres.restore.run import detect_source
from verifier.process import Executor
from verifier.report import RestoreIssue
from verifier.repository.backups import Backup, Repository
from verifier.units import mebibytes

if TYPE_CHECKING:
    from verifier.sandbox.local import LocalSandbox

_DISK_FULL = ("No space left on device", "could not extend file")  # PostgreSQL says either
_SERVER_GONE = "server closed the connection"
SANDBOX_TEMPLATES = "sandbox-templates"  # see postgres/throwaway/cluster_template
CACHE_NAME = "pg-backup-verifier"
ROOT_CACHE = Path("/var/cache") / CACHE_NAME  # the units' CacheDirectory=


class Sandbox(Protocol):
    """A database a backup can be restored into and counted in."""

    kind: str
    executor: Executor
    dbname: str

    def restore_environment(self) -> dict[str, str]:
        """Returns the PG* environment that points the executor's pg_restore/psql at the database."""

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path as the executor sees it."""

    def connect(self) -> Connection:
        """Returns an autocommit connection to the restored database. Raises SandboxError."""

    def describe(self) -> str:
        """Returns a one-line description for the report."""


def template_root(verify: VerifyConfig, repository: Path) -> Path:
    """Returns where the local sandbox's pristine initdb is kept: `verify.template_dir`, else the agent's
    cache (systemd's $CACHE_DIRECTORY, /var/cache/pg-backup-verifier for root, ~/.cache/pg-backup-verifier
    otherwise) — never the repository, whose space the dump needs. Templates an older version kept in the
    repository's state/ are removed (the agent's own, 39 MiB and more)."""
    shutil.rmtree(Repository(repository).state_dir / SANDBOX_TEMPLATES, ignore_errors=True)
    if verify.template_dir is not None:
        return verify.template_dir
    systemd_cache = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd_cache:
        return Path(systemd_cache) / SANDBOX_TEMPLATES
    if os.geteuid() == 0:
        return ROOT_CACHE / SANDBOX_TEMPLATES
    user_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(user_cache) / CACHE_NAME / SANDBOX_TEMPLATES


def required_major(backup: Backup, detected_source_major: int | None) -> tuple[int | None, int | None]:
    """Returns (minimum major, preferred major) of the server a backup must be restored into.

    The server must be at least the source's major and at least the pg_dump's that wrote the
    archive (pg_restore cannot read newer archives); the source's own major is preferred.
    """
    source_major = backup.manifest.source.major if backup.manifest else detected_source_major
    dump_major = None
    if backup.manifest is not None:
        with contextlib.suppress(ValueError):
            dump_major = int(backup.manifest.pg_dump_version.split(".")[0])
    majors = [major for major in (source_major, dump_major) if major is not None]
    return (max(majors) if majors else None), source_major


@contextlib.contextmanager
def open_sandbox(
    verify: VerifyConfig,
    postgres: PostgresConfig,
    backup: Backup,
    source: Source | None,
    detected_source_major: int | None = None,
    *,
    repository: Path,
    docker_host: str | None = None,
) -> Iterator[Sandbox]:
    """Yields a ready sandbox of the kind `verify.sandbox` names and removes it on exit. A docker sandbox
    reaches the engine at `docker_host` and labels its container with `repository`.

    Raises SandboxError, BinaryMissing, DockerUnavailable.
    """
    minimum, preferred = required_major(backup, detected_source_major)
    if verify.sandbox == "local":
        source_info = backup.manifest.source if backup.manifest else detect_source(backup.dump_path, backup.format)
        with open_local_sandbox(
            verify,
            postgres,
            source_info,
            minimum_major=minimum,
            preferred_major=preferred,
            repository=repository,
            expected_bytes=backup.size_bytes,
        ) as sandbox:
            yield sandbox
    elif verify.sandbox == "server":
        assert verify.server is not None
        if backup.manifest is None:  # a real server: only what the agent itself dumped
            raise SandboxError(
                f"verify.sandbox server restores only backups the agent made (with a manifest); "
                f"{backup.dump_path.name} has none: verify it with verify.sandbox local"
            )
        installation = binaries.choose(
            ("pg_restore", "psql"),
            configured_dir=postgres.bin_dir,
            minimum_major=minimum,
            prefer_major=preferred,
            purpose="restoring into the scratch server",
        )
        from verifier.sandbox.server import ServerSandbox

        with ServerSandbox(verify.server, installation, source) as sandbox:
            yield sandbox
    else:
        from verifier.sandbox import docker  # the Docker SDK is imported only when a container sandbox is configured

        with docker.open_docker_sandbox(
            verify.docker,
            backup,
            source,
            repository=repository,
            docker_host=docker_host,
            allow_network=verify.allow_network,
        ) as sandbox:
            yield sandbox


@contextlib.contextmanager
def open_local_sandbox(
    verify: VerifyConfig,
    postgres: PostgresConfig,
    source: SourceInfo | None,
    *,
    minimum_major: int | None,
    preferred_major: int | None,
    repository: Path,
    expected_bytes: int = 0,
    create_database: bool = True,
) -> Iterator[LocalSandbox]:
    """Yields a started local sandbox (its programs of at least `minimum_major`, `preferred_major` if
    installed; its pristine initdb kept under `template_root`) and removes it on exit. The database is
    created with `source`'s locale unless `create_database` is False (the caller calls
    `create_database`: a restore reading along with the dump starts before the dump's facts are known).
    `open_sandbox` opens the local kind through here, and so does the restore that reads along.

    Raises SandboxError, BinaryMissing.
    """
    installation = binaries.choose(
        ("initdb", "postgres", "pg_restore", "psql"),
        configured_dir=postgres.bin_dir,
        minimum_major=minimum_major,
        prefer_major=preferred_major,
        purpose="the local sandbox",
    )
    from verifier.sandbox.local import LocalSandbox

    templates = template_root(verify, repository)
    with LocalSandbox(
        installation,
        verify,
        source,
        expected_bytes=expected_bytes,
        create_database=create_database,
        templates=templates,
    ) as sandbox:
        yield sandbox


def _log_tail(path: Path, size: int = 65536) -> str:
    """Returns the last `size` bytes of the server log at `path` as text, or "" when unreadable."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def out_of_space(sandbox: Sandbox, issues: list[RestoreIssue]) -> SandboxError | None:
    """Returns the error for a restore that filled the sandbox's disk (the machine's problem, not the
    backup's), or None when no issue says so."""
    full = [issue for issue in issues if any(sign in issue.message for sign in _DISK_FULL)]
    cluster = getattr(sandbox, "cluster", None)
    if not full and any(_SERVER_GONE in issue.message for issue in issues) and cluster is not None:
        # the server stopped (a PANIC writing WAL): its own log says whether the disk was full
        log = _log_tail(cluster.log_file)
        sign = next((sign for sign in _DISK_FULL if sign in log), None)
        if sign is not None:
            line = next(line for line in reversed(log.splitlines()) if sign in line)
            full = [RestoreIssue("sandbox server", line.split(":  ", 1)[-1].strip())]
    if not full:
        return None
    where = ""
    directory = getattr(getattr(sandbox, "cluster", None), "directory", None)
    if isinstance(directory, Path):  # a local sandbox: its cluster's disk
        free = shutil.disk_usage(directory).free
        where = f"; {mebibytes(free)} free in {directory.parent}"
    return SandboxError(
        f"the sandbox ran out of disk space ({full[0].object}: {full[0].message}){where}; "
        "point verify.temp_dir at a larger disk"
    )
