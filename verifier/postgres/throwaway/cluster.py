"""A temporary PostgreSQL cluster: initdb in a fresh directory, started, and always removed.

The product's `local` sandbox and the test suite use this same module (as pghoard's tests do).
The server listens on a unix socket in its own directory only (unless a TCP port is asked for),
is tuned for a throwaway restore, runs as an unprivileged user when the agent runs as root, and
sees none of the agent's environment but PATH, locale and time zone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psycopg

from verifier import netjail, process
from verifier.errors import SandboxError, one_line
from verifier.postgres.binaries import Installation
from verifier.postgres.connection import every_byte_readable
from verifier.postgres.throwaway.cluster_template import SUPERUSER as SUPERUSER  # the one initdb makes
from verifier.postgres.throwaway.cluster_template import chown_tree, copy_template, initdb, template_for

logger = logging.getLogger(__name__)

TEMP_PREFIX = "pg-backup-verifier-"
OWNER_FILE = "owner"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# what a connection attempt is told while the server starts, recovers or stops: never why it stopped
_REFUSALS = (
    "the database system is starting up",
    "is not accepting connections",
    "is shutting down",
    "the database system is in recovery mode",
)


def throwaway_settings() -> dict[str, str]:
    """Returns server settings for a cluster whose data may be lost at any time: speed over safety."""
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    maintenance_megabytes = max(64, min(2048, memory_bytes // (16 * 1024 * 1024)))
    return {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "archive_mode": "off",
        "autovacuum": "off",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "30min",
        "maintenance_work_mem": f"{maintenance_megabytes}MB",
        "shared_buffers": "128MB",
        "max_connections": "40",
        "jit": "off",
    }


def resolve_user(name: str | None) -> process.User | None:
    """Returns the account the server must run as, or None when the agent is not root.

    Raises SandboxError when running as root and the account does not exist: no system user is
    ever created silently.
    """
    if os.geteuid() != 0 or not name:
        if os.geteuid() == 0:
            raise SandboxError("initdb refuses to run as root: set verify.run_as to an unprivileged user")
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(
            f"verify.run_as: user {name!r} does not exist; create it (apt-get install postgresql-common "
            f"creates 'postgres') or name another unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise SandboxError(f"verify.run_as: {name!r} is root; initdb needs an unprivileged user")
    return process.User(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def free_tcp_port() -> int:
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TemporaryCluster:
    """A PostgreSQL cluster that exists between `start()` and `stop()` (or the `with` block).

    `host` is the socket directory (or 127.0.0.1 with `tcp=True`); the superuser is `postgres`
    with trust authentication, reachable only by whoever can reach the socket directory.
    """

    def __init__(
        self,
        installation: Installation,
        *,
        run_as: str | None = SUPERUSER,
        settings: dict[str, str] | None = None,
        tcp: bool = False,
        base_dir: Path | None = None,
        copy_of: Path | None = None,
        templates: Path | None = None,
        isolated: bool = False,
        populate: Callable[[Path], None] | None = None,
        superuser: str = SUPERUSER,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        """`populate` fills the (existing, empty) data directory instead of initdb (a physical backup
        restored into it: its configuration files are then the caller's to replace), and the tree is
        given to the account afterwards; `superuser` is whom `connect` connects as; `start_timeout` bounds
        the wait until it accepts connections (a recovery may take long);
        `copy_of` starts the cluster from a copy of that stopped data directory instead of initdb;
        `templates` from a copy of a pristine initdb kept in that directory for the next time
        (`cluster_template`); `isolated` runs the server in `netjail` (no network, no other server's
        socket: what a restored dump does cannot leave it)."""
        self.installation = installation
        self.copy_of = copy_of
        self.populate = populate
        self.superuser = superuser
        self.start_timeout = start_timeout
        self.templates = templates
        self.user = resolve_user(run_as)
        self.settings = {**throwaway_settings(), **(settings or {})}
        self.tcp = tcp
        self.isolated = isolated and not tcp
        self.base_dir = base_dir
        self.port = free_tcp_port() if tcp else 5432
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- public interface ---------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """Returns the data directory. Raises SandboxError before start()."""
        return self._path("data")

    @property
    def socket_dir(self) -> Path:
        """Returns the directory holding the server's unix socket. Raises SandboxError before start()."""
        return self._path("socket")

    @property
    def log_file(self) -> Path:
        """Returns the server's log file. Raises SandboxError before start()."""
        return self._path("postgres.log")

    @property
    def host(self) -> str:
        """Returns what libpq takes as host: 127.0.0.1 for TCP, else the socket directory."""
        return "127.0.0.1" if self.tcp else str(self.socket_dir)

    def connection_kwargs(self, dbname: str = "postgres") -> dict[str, str | int]:
        """Returns psycopg.connect keyword arguments for `dbname` as the superuser."""
        return {"host": self.host, "port": self.port, "user": self.superuser, "dbname": dbname}

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
        """Returns a new connection to `dbname` as the superuser. Raises psycopg.Error."""
        connection = psycopg.connect(**self.connection_kwargs(dbname), autocommit=autocommit)  # type: ignore[arg-type]
        return every_byte_readable(connection)

    def start(self) -> TemporaryCluster:
        """Creates and starts the cluster. Returns self. Raises SandboxError, cleaning up first."""
        try:
            self._create()
            self._launch()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the server (fast shutdown, then immediate, then kill) and deletes the directory.

        Safe to call twice and after a failed start; never raises for a server that already died.
        """
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            for stop_signal, wait_seconds in (
                (signal.SIGINT, STOP_TIMEOUT_SECONDS),
                (signal.SIGQUIT, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(stop_signal)
                try:
                    process.wait(timeout=wait_seconds)
                    break
                except subprocess.TimeoutExpired:
                    logger.warning("temporary cluster did not stop after %s; escalating", stop_signal.name)
        directory, self.directory = self.directory, None
        if directory is not None:
            if process is None:  # interrupted between starting the server and learning its pid
                _kill_postmaster(directory / "data" / "postmaster.pid")
            _remove_directory(directory)

    def __enter__(self) -> TemporaryCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers ------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.directory is None:
            raise SandboxError("temporary cluster is not started")
        return self.directory / name

    def _create(self) -> None:
        # name first, create second: a SIGTERM landing between the two still leaves stop() the path to
        # remove (with mkdtemp, one landing inside it would leak a directory nobody knows about)
        self.directory = Path(self.base_dir or tempfile.gettempdir()) / f"{TEMP_PREFIX}{secrets.token_hex(6)}"
        self.directory.mkdir(mode=0o700)
        # who owns it (pid and start time): a directory whose owner died is an orphan (remove_orphans)
        (self.directory / OWNER_FILE).write_text(f"{os.getpid()} {_start_ticks(os.getpid())}\n")
        self.socket_dir.mkdir(mode=0o700)
        if self.user is not None:
            for path in (self.directory, self.socket_dir):
                os.chown(path, self.user.uid, self.user.gid)
        if self.populate is not None:
            self.data_dir.mkdir(mode=0o700)
            self.populate(self.data_dir)
            if self.user is not None:
                chown_tree(self.directory, self.user.uid, self.user.gid)
        elif self.copy_of is not None:
            copied = process.run(["cp", "-a", self.copy_of, self.data_dir], timeout=600)
            if copied.returncode != 0:
                raise SandboxError(f"copying {self.copy_of} failed: {_last_line(copied.stderr)}")
        else:
            template = self._template()
            if template is not None:
                copy_template(template, self.data_dir, self.user)
            else:
                initdb(self.installation, self.data_dir, self.user, self.directory)
        self._write_settings()

    def _template(self) -> Path | None:
        """Returns the pristine data directory to copy, or None: none asked, or it cannot be kept
        (a full or read-only state directory: initdb then, as without one)."""
        if self.templates is None:
            return None
        try:
            return template_for(self.installation, self.templates, self.user)
        except (SandboxError, OSError) as error:
            logger.warning("sandbox: initdb instead of a template: %s", one_line(error))
            return None

    def _write_settings(self) -> None:
        settings = {
            **self.settings,
            "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "logging_collector": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# pg-backup-verifier: throwaway cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _launch(self) -> None:
        log = self.log_file.open("ab")
        try:
            server = [str(self.installation.program("postgres")), "-D", str(self.data_dir)]
            self.process = process.start(
                self._jailed(server) if self.isolated else server,
                user=None if self.isolated else self.user,  # the jail drops to the account itself
                cwd=self.directory,
                stdout=log.fileno(),
                stderr=log.fileno(),
                new_session=True,
                sandboxed=True,  # code in a restored dump runs with the server's environment: none of ours
            )
        finally:
            log.close()

    def _jailed(self, argv: list[str]) -> list[str]:
        """Returns `argv` run inside `netjail`, which keeps the cluster's directory and binaries in sight."""
        assert self.directory is not None
        account = [str(self.user.uid), str(self.user.gid)] if self.user else ["-", "-"]
        keep = [str(self.directory), str(Path(argv[0]).resolve().parent.parent)]
        return [sys.executable, "-I", "-S", netjail.__file__, *account, *keep, "--", *argv]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SandboxError(f"temporary PostgreSQL exited at start: {self._log_tail()}")
            try:
                with self.connect():
                    return
            except psycopg.OperationalError as error:
                last_error = str(error).strip()
            time.sleep(0.05)
        raise SandboxError(f"temporary PostgreSQL not ready after {self.start_timeout:.0f}s: {last_error}")

    def _log_tail(self) -> str:
        """Returns the log's last FATAL or PANIC line (why the server stopped), else its last line."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "no log"
        fatal = [
            line
            for line in text.splitlines()
            if ("FATAL:" in line or "PANIC:" in line) and not any(refusal in line for refusal in _REFUSALS)
        ]
        return fatal[-1].strip() if fatal else _last_line(text)


def remove_orphans(base_dir: Path | None) -> list[str]:
    """Stops the servers and deletes the directories of temporary clusters whose agent died (SIGKILL, power
    cut, OOM killer: no `finally` ran) in `base_dir` (default: the temp dir). A cluster whose owner still
    runs, or whose directory does not name an owner, is left alone.

    Returns one line per orphan removed; never raises.
    """
    removed = []
    for directory in sorted(Path(base_dir or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*")):
        try:
            pid, ticks = (int(part) for part in (directory / OWNER_FILE).read_text().split())
        except (OSError, ValueError):
            continue  # not ours to judge (or created a moment ago)
        if _start_ticks(pid) == ticks:
            continue  # its agent still runs
        server = _stop_orphan_server(directory / "data")
        _remove_directory(directory)
        removed.append(f"{directory} (agent pid {pid}{', server pid ' + str(server) if server else ''})")
        logger.warning("removed an orphan sandbox left by a killed run: %s", removed[-1])
    return removed


def _remove_directory(directory: Path) -> None:
    """Deletes a cluster's directory, its owner file last: an agent killed while deleting leaves an orphan
    that the next run still recognises. Never raises."""
    with contextlib.suppress(OSError):
        for child in list(directory.iterdir()):
            if child.name == OWNER_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)


def _stop_orphan_server(data_dir: Path) -> int | None:
    """Stops the server running from `data_dir` (immediate shutdown, then kill) and waits until it is
    gone. Returns its pid, or None when none ran."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if str(data_dir).encode() not in command:
        return None  # the pid was reused by another program
    for stop_signal, wait_seconds in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, stop_signal)
        deadline = time.monotonic() + wait_seconds
        while _start_ticks(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _start_ticks(pid) is None:
            break
    return pid


def _start_ticks(pid: int) -> int | None:
    """Returns when process `pid` started (clock ticks since boot), or None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _kill_postmaster(pid_file: Path) -> None:
    """Kills the server named by a postmaster.pid and reaps it; never raises."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
