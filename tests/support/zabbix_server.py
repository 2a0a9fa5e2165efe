"""A real Zabbix 6.0 server with its API, started in a private directory for one test session.

What runs, all on 127.0.0.1 and all under one temporary directory:
- a PostgreSQL cluster for Zabbix's own database (`verifier.postgres.throwaway.cluster.TemporaryCluster`,
  the module the product uses), started from a pristine copy of an imported Zabbix schema that
  is cached under `/var/cache/pg-backup-verifier-tests/` (or `$PGBV_TEST_CACHE_DIR`): importing
  the schema takes 10-20 s, copying the cached data directory about a second;
- `zabbix_server -f` (foreground, so the pid we hold is the server's) with `AllowRoot=1`,
  `CacheUpdateFrequency=1` and a handful of processes;
- the API: `php -S` over a copy of `/usr/share/zabbix` whose config-file path is patched to
  point into the copy, because the packaged frontend reads the machine-wide
  `/etc/zabbix/zabbix.conf.php`.

`stop()` tears everything down (server and its workers, PHP and its workers, the cluster, the
directory); it is safe to call twice and after a failed start.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier import process
from verifier.postgres.binaries import Installation
from verifier.postgres.throwaway.cluster import TEMP_PREFIX, TemporaryCluster

logger = logging.getLogger(__name__)

ZABBIX_SERVER = Path("/usr/sbin/zabbix_server")
FRONTEND_DIR = Path("/usr/share/zabbix")
SCHEMA_DIR = Path("/usr/share/zabbix-server-pgsql")
SCHEMA_FILES = ("schema.sql.gz", "images.sql.gz", "data.sql.gz")
CONFIG_CLASS = Path("include/classes/core/CConfigFile.php")
DEFAULT_CACHE_DIR = Path("/var/cache/pg-backup-verifier-tests")
ADMIN_USER = "Admin"
ADMIN_PASSWORD = "zabbix"
DATABASE = "zabbix"
READY_TIMEOUT_SECONDS = 60.0


def zabbix_installed() -> bool:
    """Returns True when the Zabbix server, its PostgreSQL schema, the frontend and php are installed."""
    return (
        os.access(ZABBIX_SERVER, os.X_OK)
        and all((SCHEMA_DIR / name).is_file() for name in SCHEMA_FILES)
        and (FRONTEND_DIR / CONFIG_CLASS).is_file()
        and shutil.which("php") is not None
    )


@dataclass(frozen=True)
class StartTimes:
    """How long the last start took, in seconds, and whether the schema came from the cache."""

    database_seconds: float
    server_seconds: float
    api_seconds: float
    from_cache: bool

    @property
    def total_seconds(self) -> float:
        """Returns the whole start time."""
        return self.database_seconds + self.server_seconds + self.api_seconds


class ZabbixServer:
    """A Zabbix server + API for tests. `trapper_port` takes sender data, `api_url` the JSON-RPC API."""

    def __init__(self, installation: Installation, *, cache_dir: Path | None = None) -> None:
        self.installation = installation
        self.cache_dir = cache_dir if cache_dir is not None else _cache_dir_from_environment()
        self.directory: Path | None = None
        self.cluster: TemporaryCluster | None = None
        self.server_process: subprocess.Popen[bytes] | None = None
        self.php_process: subprocess.Popen[bytes] | None = None
        self.trapper_port = 0
        self.api_port = 0
        self.times: StartTimes | None = None

    # -- public interface ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Returns the URL of the JSON-RPC API."""
        return f"http://127.0.0.1:{self.api_port}/api_jsonrpc.php"

    @property
    def frontend_url(self) -> str:
        """Returns the frontend's base URL (what a user gives `verifier zabbix setup --url`)."""
        return f"http://127.0.0.1:{self.api_port}/"

    @property
    def server_config(self) -> Path:
        """Returns the server's config file (for `zabbix_server -c … -R …`)."""
        return self._path("zabbix_server.conf")

    @property
    def server_log(self) -> Path:
        """Returns the server's log file."""
        return self._path("zabbix_server.log")

    def start(self) -> ZabbixServer:
        """Starts database, server and API. Returns self. Raises RuntimeError (after cleaning up)."""
        try:
            self.directory = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}zabbix-"))
            os.chmod(self.directory, 0o711)  # the database cluster's own user must reach its directory
            began = time.monotonic()
            from_cache = self._start_database()
            database_done = time.monotonic()
            self.trapper_port, self.api_port = _two_free_ports()
            self._write_server_config()
            self.start_server()
            server_done = time.monotonic()
            self._start_api()
            api_done = time.monotonic()
            self.times = StartTimes(
                database_seconds=database_done - began,
                server_seconds=server_done - database_done,
                api_seconds=api_done - server_done,
                from_cache=from_cache,
            )
            logger.info("zabbix test server ready: %s", self.times)
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self) -> None:
        """Starts `zabbix_server -f` and waits until the trapper port accepts connections.

        Raises RuntimeError when it exits or does not listen within a minute.
        """
        log = self._path("zabbix_server.stdout").open("ab")
        try:
            self.server_process = process.start(
                [ZABBIX_SERVER, "-f", "-c", self.server_config],
                stdout=log.fileno(),
                stderr=log.fileno(),
                new_session=True,
                cwd=self.directory,
            )
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.server_process.poll() is not None:
                raise RuntimeError(f"zabbix_server exited at start: {self._server_log_tail()}")
            if _listening(self.trapper_port) and self._server_log_says_started():
                return
            time.sleep(0.1)
        raise RuntimeError(f"zabbix_server not listening after {READY_TIMEOUT_SECONDS:.0f}s")

    def stop_server(self) -> None:
        """Stops `zabbix_server` and every process it forked; safe when it is not running."""
        process, self.server_process = self.server_process, None
        _stop_process_group(process, signal.SIGTERM, wait_seconds=30.0)

    def reload_config_cache(self) -> None:
        """Asks the server to reload its configuration cache now (`zabbix_server -R config_cache_reload`)."""
        completed = process.run([ZABBIX_SERVER, "-c", self.server_config, "-R", "config_cache_reload"], timeout=30)
        if completed.returncode != 0:
            raise RuntimeError(f"config_cache_reload failed: {completed.stderr or completed.stdout}")

    def cached(self) -> tuple[int, int]:
        """Returns the monitored hosts and enabled items in the server's configuration cache, as its
        trapper's `zabbix.stats` request tells them. Raises OSError, ValueError."""
        payload = json.dumps({"request": "zabbix.stats"}).encode()
        with socket.create_connection(("127.0.0.1", self.trapper_port), timeout=10) as connection:
            connection.sendall(b"ZBXD\x01" + struct.pack("<II", len(payload), 0) + payload)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        data = json.loads(answer[13:])["data"]
        return int(data["hosts"]), int(data["items"])

    def wait_for_config_sync(self, before: tuple[int, int] | None = None) -> None:
        """Reloads the configuration cache and waits until it holds what was created since `before` (what
        `cached` said then): the cache's item count has changed (its host count alone may change one sync
        before the new host's items: the host is known, its heartbeat still refused). Without `before`, or when they
        never change (nothing was created: up to 20 s), waits 3 s: `config_cache_reload` only signals the
        server, and on a loaded machine its sync may take a while."""
        self.reload_config_cache()
        deadline = time.monotonic() + (20.0 if before is not None else 3.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                if before is not None and self.cached()[1] != before[1]:
                    return
            time.sleep(0.2)

    def stop(self) -> None:
        """Stops server, API and database and deletes the directory. Never raises for dead processes."""
        self.stop_server()
        php, self.php_process = self.php_process, None
        _stop_process_group(php, signal.SIGTERM, wait_seconds=10.0)
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.stop()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> ZabbixServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- database -----------------------------------------------------------------------------

    def _start_database(self) -> bool:
        """Starts the Zabbix database cluster. Returns True when it came from the pristine cache."""
        pristine = self._pristine_dir()
        from_cache = pristine is not None and (pristine / "PG_VERSION").is_file()
        if not from_cache:
            self._build_pristine(pristine)
        copy_of = pristine if pristine is not None and (pristine / "PG_VERSION").is_file() else None
        self.cluster = TemporaryCluster(
            self.installation, tcp=True, copy_of=copy_of, settings={"max_connections": "100"}
        )
        self.cluster.start()
        if copy_of is None:
            self._import_schema(self.cluster)
        return from_cache

    def _pristine_dir(self) -> Path | None:
        """Returns where the pristine data directory is cached, or None when caching is impossible."""
        if self.cache_dir is None:
            return None
        identity = hashlib.sha256()
        identity.update(str(self.installation.version).encode())
        for name in SCHEMA_FILES:
            stat = (SCHEMA_DIR / name).stat()
            identity.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
        return self.cache_dir / f"zabbix-db-pg{self.installation.major}-{identity.hexdigest()[:16]}"

    def _build_pristine(self, pristine: Path | None) -> None:
        """Imports the schema into a fresh cluster and keeps a copy of its stopped data directory."""
        if pristine is None:
            return
        try:
            pristine.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            logger.warning("no pristine Zabbix database cache (%s): importing every session", error)
            return
        builder = TemporaryCluster(self.installation, tcp=True)  # not nested: socket paths stop at 107 bytes
        builder.start()
        try:
            self._import_schema(builder)
            process, builder.process = builder.process, None
            assert process is not None
            process.send_signal(signal.SIGINT)  # fast shutdown: a clean data directory to copy
            process.wait(timeout=60)
            staging = pristine.with_name(pristine.name + f".partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            _copy_tree(builder.data_dir, staging)
            try:
                staging.rename(pristine)
            except OSError:  # another session built it meanwhile (and may be copying it): keep theirs
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            builder.stop()

    def _import_schema(self, cluster: TemporaryCluster) -> None:
        with cluster.connect() as connection:
            connection.execute(f"CREATE DATABASE {DATABASE} ENCODING 'UTF8' TEMPLATE template0")
        assert self.directory is not None
        for name in SCHEMA_FILES:
            plain = self.directory / name.removesuffix(".gz")
            with gzip.open(SCHEMA_DIR / name, "rb") as source, plain.open("wb") as target:
                shutil.copyfileobj(source, target)
            os.chmod(plain, 0o644)
            completed = process.run(
                [
                    self.installation.program("psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    cluster.host,
                    "-p",
                    str(cluster.port),
                    "-U",
                    "postgres",
                    "-d",
                    DATABASE,
                    "-f",
                    plain,
                ],
                timeout=600,
            )
            plain.unlink()
            if completed.returncode != 0:
                raise RuntimeError(f"importing {name} failed: {completed.stderr.strip()[-500:]}")

    # -- server and API -----------------------------------------------------------------------

    def _write_server_config(self) -> None:
        assert self.cluster is not None and self.directory is not None
        settings = {
            "ListenIP": "127.0.0.1",
            "ListenPort": str(self.trapper_port),
            "LogType": "file",
            "LogFile": str(self.server_log),
            "LogFileSize": "0",
            "DebugLevel": "3",
            "PidFile": str(self._path("zabbix_server.pid")),
            "SocketDir": str(self.directory),
            "DBHost": self.cluster.host,
            "DBPort": str(self.cluster.port),
            "DBName": DATABASE,
            "DBUser": "postgres",
            "AllowRoot": "1",
            "CacheUpdateFrequency": "1",
            "StartPollers": "1",
            "StartPollersUnreachable": "1",
            "StartPreprocessors": "1",
            "StartHistoryPollers": "1",
            "StartTrappers": "2",
            "StartPingers": "0",
            "StartDiscoverers": "0",
            "StartHTTPPollers": "0",
            "StartAlerters": "1",
            "StartDBSyncers": "1",
            "StartProxyPollers": "0",
            "StartLLDProcessors": "2",  # Zabbix 6.0's default: one host's rules, a night's many, in parallel
            "StartODBCPollers": "0",
            "StartTimers": "1",
            "StartEscalators": "1",
            "Timeout": "4",
            "StatsAllowedIP": "127.0.0.1",
        }
        self.server_config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))

    def _start_api(self) -> None:
        """Copies the frontend, points it at our database and serves it with `php -S`."""
        assert self.cluster is not None
        frontend = self._path("frontend")
        shutil.copytree(FRONTEND_DIR, frontend, symlinks=True)
        config_class = frontend / CONFIG_CLASS
        original = "const CONFIG_FILE_PATH = '/etc/zabbix/zabbix.conf.php';"
        text = config_class.read_text()
        if original not in text:
            raise RuntimeError(f"cannot patch {config_class}: the frontend changed its config path")
        config_class.write_text(
            text.replace(original, "const CONFIG_FILE_PATH = __DIR__.'/../../../conf/zabbix.conf.php';")
        )
        (frontend / "conf" / "zabbix.conf.php").write_text(
            "<?php\n"
            "$DB['TYPE'] = 'POSTGRESQL';\n"
            f"$DB['SERVER'] = '{self.cluster.host}';\n"
            f"$DB['PORT'] = '{self.cluster.port}';\n"
            f"$DB['DATABASE'] = '{DATABASE}';\n"
            "$DB['USER'] = 'postgres';\n"
            "$DB['PASSWORD'] = '';\n"
            "$DB['SCHEMA'] = '';\n"
            "$DB['ENCRYPTION'] = false;\n"
            "$DB['DOUBLE_IEEE754'] = true;\n"
            "$ZBX_SERVER = '127.0.0.1';\n"
            f"$ZBX_SERVER_PORT = '{self.trapper_port}';\n"
            "$ZBX_SERVER_NAME = 'pg-backup-verifier tests';\n"
            "$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;\n"
        )
        log = self._path("php.log").open("ab")
        try:
            self.php_process = process.start(
                ["php", "-S", f"127.0.0.1:{self.api_port}", "-t", frontend],
                environment={"PHP_CLI_SERVER_WORKERS": "2"},
                stdout=log.fileno(),
                stderr=log.fileno(),
                new_session=True,
                cwd=frontend,
            )
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error = ""
        while time.monotonic() < deadline:
            if self.php_process.poll() is not None:
                raise RuntimeError(f"php -S exited at start: {self._path('php.log').read_text()[-500:]}")
            try:
                if api_call(self.api_url, "apiinfo.version", {}):
                    return
            except (OSError, ValueError) as error:
                last_error = str(error)
            time.sleep(0.1)
        raise RuntimeError(f"Zabbix API not answering after {READY_TIMEOUT_SECONDS:.0f}s: {last_error}")

    # -- helpers ------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.directory is None:
            raise RuntimeError("the Zabbix test server is not started")
        return self.directory / name

    def _server_log_says_started(self) -> bool:
        try:
            return "server #0 started [main process]" in self.server_log.read_text(errors="replace")
        except OSError:
            return False

    def _server_log_tail(self) -> str:
        try:
            return " | ".join(self.server_log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "no log"


def api_call(url: str, method: str, params: dict[str, Any] | list[Any], auth: str | None = None) -> Any:
    """Returns the `result` of one JSON-RPC call.

    Raises ValueError for an API error, OSError when the API is unreachable.
    """
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    if auth is not None:
        body["auth"] = auth
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json-rpc"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise ValueError(f"{method}: {answer['error']}")
    return answer["result"]


def _copy_tree(source: Path, target: Path) -> None:
    """Copies a data directory keeping owner and modes (`cp -a`). Raises RuntimeError on failure."""
    completed = process.run(["cp", "-a", source, target], timeout=300)
    if completed.returncode != 0:
        raise RuntimeError(f"copying {source} failed: {completed.stderr.strip()}")


def _cache_dir_from_environment() -> Path | None:
    configured = os.environ.get("PGBV_TEST_CACHE_DIR")
    if configured == "":
        return None
    return Path(configured) if configured else DEFAULT_CACHE_DIR


def _two_free_ports() -> tuple[int, int]:
    """Returns two distinct free ports in 20000-32767 (zabbix_server's ListenPort stops at 32767)."""
    chosen: list[int] = []
    candidates = random.sample(range(20000, 32768), 200)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == 2:
            return chosen[0], chosen[1]
    raise RuntimeError("no free TCP port in 20000-32767")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop_process_group(process: subprocess.Popen[bytes] | None, first: signal.Signals, wait_seconds: float) -> None:
    """Signals a process's whole group (it was started in its own session), then kills what is left."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, first)
    try:
        process.wait(timeout=wait_seconds)
    except subprocess.TimeoutExpired:
        logger.warning("pid %s ignored %s; killing its group", process.pid, first.name)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
