"""Where off-site copies go, behind one small protocol: put a file, download a file, list, delete.

- `S3Target`: AWS S3 or any S3-compatible store through boto3 (AWS's own SDK: the standard credential
  chain when no key is configured, managed multipart transfers that stream from and to files, and
  path-style addressing for self-hosted endpoints). Keys live in the client's memory only.
- `RsyncTarget`: rsync over ssh (`rsync://user@host[:port]/path/`), the ssh key by path (`-i`), the
  host checked against known_hosts (BatchMode: never a prompt). rsync writes to a temp name and renames,
  so a broken upload never leaves a whole-looking object.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from verifier import process
from verifier.config_offsite import OffsiteTargetConfig, offsite_target_name
from verifier.errors import VerifierError, one_line

logger = logging.getLogger(__name__)

_SDK_LOGGERS = ("boto3", "botocore", "s3transfer")
"""botocore's debug log carries the Authorization header (the access key id): never below WARNING."""


class TargetError(VerifierError):
    """A target could not be reached or refused an operation (the message names the target, never a secret)."""

    exit_code = 1


@dataclass(frozen=True)
class RemoteObject:
    """One object on a target: its key (relative to the target's prefix or directory) and size in bytes."""

    key: str
    size: int


class Target(Protocol):
    """What the upload, the proof, the listing and retention need of a target."""

    name: str
    location: str

    def put(self, local: Path, key: str) -> None:
        """Uploads `local` as `key`. Raises TargetError."""

    def download(self, key: str, destination: Path) -> None:
        """Downloads `key` into the file `destination`. Raises TargetError."""

    def objects(self) -> list[RemoteObject]:
        """Returns every object under the target's prefix. Raises TargetError."""

    def delete(self, key: str) -> None:
        """Deletes `key`. Raises TargetError."""


def open_target(config: OffsiteTargetConfig) -> Target:
    """Returns the target `config` describes. Raises TargetError for an unusable url."""
    if config.url.startswith("s3://"):
        return S3Target(config)
    return RsyncTarget(config)


class S3Target:
    """A bucket and prefix on AWS S3 or an S3-compatible store."""

    def __init__(self, config: OffsiteTargetConfig) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        for sdk_logger in _SDK_LOGGERS:
            logging.getLogger(sdk_logger).setLevel(logging.WARNING)
        parts = urlsplit(config.url)
        self.name = offsite_target_name(config)
        self.location = config.url
        self.bucket = parts.netloc
        self.prefix = parts.path.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        settings = BotoConfig(
            connect_timeout=config.timeout,
            read_timeout=config.timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"} if config.endpoint_url else {},
            # many S3-compatible stores reject the newer default checksum trailers
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region or "us-east-1",
            aws_access_key_id=config.access_key_id.get_secret_value() if config.access_key_id else None,
            aws_secret_access_key=config.secret_access_key.get_secret_value() if config.secret_access_key else None,
            config=settings,
        )

    def put(self, local: Path, key: str) -> None:
        """Uploads `local` as `key` (multipart for large files, streamed from the file). Raises TargetError."""
        self._call("upload", key, self.client.upload_file, str(local), self.bucket, self.prefix + key)

    def download(self, key: str, destination: Path) -> None:
        """Downloads `key` into `destination`, streamed. Raises TargetError."""
        self._call("download", key, self.client.download_file, self.bucket, self.prefix + key, str(destination))

    def objects(self) -> list[RemoteObject]:
        """Returns every object under the prefix. Raises TargetError."""
        found: list[RemoteObject] = []

        def collect() -> None:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for entry in page.get("Contents", []):
                    key = str(entry["Key"]).removeprefix(self.prefix)
                    if key and "/" not in key:
                        found.append(RemoteObject(key, int(entry["Size"])))

        self._call("list", "", collect)
        return found

    def delete(self, key: str) -> None:
        """Deletes `key`. Raises TargetError."""
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self.prefix + key)

    def _call(self, action: str, key: str, function: Any, *arguments: Any, **keywords: Any) -> None:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            function(*arguments, **keywords)
        except (BotoCoreError, ClientError, Boto3Error, OSError) as error:
            what = f" {key}" if key else ""
            raise TargetError(
                f"off-site target {self.name}: {action}{what} failed: {one_line(error, first_line=True)}"
            ) from None


_LIST_LINE = re.compile(r"^(?P<mode>[-dl][rwxsStT-]{9})\s+(?P<size>[\d,]+)\s+\S+\s+\S+\s+(?P<name>.+)$")


class RsyncTarget:
    """A directory on an ssh host, reached by rsync."""

    def __init__(self, config: OffsiteTargetConfig) -> None:
        parts = urlsplit(config.url)
        if not parts.hostname or not parts.path:
            raise TargetError(f"offsite url {config.url}: expected rsync://user@host[:port]/path/")
        self.name = offsite_target_name(config)
        self.location = config.url
        user = f"{parts.username}@" if parts.username else ""
        directory = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.remote = f"{user}{parts.hostname}:{directory}"
        self.timeout = config.timeout
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(config.timeout)}"]
        if parts.port:
            ssh += ["-p", str(parts.port)]
        if config.ssh_key is not None:
            ssh += ["-i", str(config.ssh_key), "-o", "IdentitiesOnly=yes"]
        if config.known_hosts is not None:
            ssh += ["-o", f"UserKnownHostsFile={config.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        self.ssh = shlex.join(ssh)  # rsync splits -e itself, honouring the quotes

    def put(self, local: Path, key: str) -> None:
        """Uploads `local` as `key` (mode 0600, the directory created when missing). Raises TargetError."""
        self._rsync("upload", key, ["--mkpath", "--chmod=F600,D700", str(local), self.remote + key])

    def download(self, key: str, destination: Path) -> None:
        """Downloads `key` into `destination`. Raises TargetError."""
        self._rsync("download", key, [self.remote + key, str(destination)])

    def objects(self) -> list[RemoteObject]:
        """Returns the files of the directory (none when it does not exist yet). Raises TargetError."""
        result = self._rsync("list", "", ["--list-only", "--no-human-readable", self.remote], missing_ok=True)
        found = []
        for line in result.splitlines():
            match = _LIST_LINE.match(line)
            if match is not None and match.group("mode").startswith("-"):
                found.append(RemoteObject(match.group("name"), int(match.group("size").replace(",", ""))))
        return found

    def delete(self, key: str) -> None:
        """Deletes `key` (an empty directory synced over it with only `key` included). Raises TargetError."""
        with tempfile.TemporaryDirectory() as empty:
            arguments = ["--recursive", "--delete", f"--include=/{key}", "--exclude=*", f"{empty}/", self.remote]
            self._rsync("delete", key, arguments)

    def _rsync(self, action: str, key: str, arguments: list[str], *, missing_ok: bool = False) -> str:
        argv = ["rsync", "--timeout", str(int(self.timeout)), "-e", self.ssh, *arguments]
        try:
            result = process.run(argv, timeout=self.timeout * 10)
        except (FileNotFoundError, subprocess.TimeoutExpired) as error:
            raise TargetError(
                f"off-site target {self.name}: {action} failed: {one_line(error, first_line=True)}"
            ) from None
        if result.returncode == 23 and missing_ok and "No such file or directory" in result.stderr:
            return ""
        if result.returncode != 0:
            what = f" {key}" if key else ""
            message = _rsync_message(result.stderr) or f"rsync exited with {result.returncode}"
            raise TargetError(f"off-site target {self.name}: {action}{what} failed: {message}")
        return result.stdout


def _rsync_message(stderr: str) -> str:
    """Returns the first line of rsync's `stderr` that is not its closing "rsync error" summary ("" when none)."""
    return one_line("\n".join(line for line in stderr.splitlines() if "rsync error" not in line), first_line=True)
