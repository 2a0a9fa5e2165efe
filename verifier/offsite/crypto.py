"""GPG through the `gpg` program (a small adapter rather than python-gnupg, whose helpers buffer
whole files and log argv): every run gets a throwaway GNUPGHOME holding only the configured public
keys (and, for a restore drill, the private key, imported from stdin), removed with its gpg-agent
when the run ends.

Encryption streams: plaintext is read in chunks and written into gpg's stdin while its sha256 is
taken, gpg writes the ciphertext straight to its file; no plaintext temp file, never a whole file
in memory. A directory-format dump travels as a tar stream.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from verifier import process as programs
from verifier.config_offsite import GpgConfig
from verifier.errors import VerifierError
from verifier.offsite.tar_safe import UnsafeArchive, extract_stream
from verifier.postgres.throwaway.cluster import TEMP_PREFIX

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class EncryptionError(VerifierError):
    """gpg could not import a key, encrypt or decrypt (exit 3: the config or the keys need fixing)."""


@dataclass(frozen=True)
class Sealed:
    """What `encrypt` measured: the plaintext's size and sha256 (the bytes a restore gets back)."""

    plaintext_size: int
    plaintext_sha256: str


@contextmanager
def keyring(gpg: GpgConfig, *, with_private_key: bool = False) -> Iterator[Keyring]:
    """Yields a throwaway keyring with `gpg.public_keys` (and the private key when asked and configured);
    removes it, and stops its gpg-agent, on the way out. Raises EncryptionError when a key cannot be imported."""
    home = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}gnupg-"))
    home.chmod(0o700)
    passphrase = gpg.private_key_passphrase.get_secret_value() if gpg.private_key_passphrase else None
    ring = Keyring(home, gpg.recipients, passphrase)
    try:
        ring.import_keys(gpg.public_keys.read_bytes() if gpg.public_keys.is_file() else None, str(gpg.public_keys))
        if with_private_key and gpg.private_key is not None:
            ring.import_keys(gpg.private_key.get_secret_value().encode(), "encryption.gpg.private_key")
            ring.prove_private_key()
        yield ring
    finally:
        programs.run(["gpgconf", "--homedir", home, "--kill", "all"], timeout=30)
        shutil.rmtree(home, ignore_errors=True)


class Keyring:
    """A GNUPGHOME of one run."""

    def __init__(self, home: Path, recipients: list[str], passphrase: str | None = None) -> None:
        self.home = home
        self.recipients = recipients
        self._passphrase = passphrase

    def prove_private_key(self) -> None:
        """Encrypts a few bytes to the recipients and decrypts them with the imported private key, so that
        a wrong or missing passphrase, or a private key no recipient's, shows before anything is fetched.
        Raises EncryptionError naming the config key to fix."""
        probe = self.home / "probe"
        probe.write_bytes(b"pg-backup-verifier: can the private key open what is sealed to the recipients?\n")
        self.encrypt(probe, self.home / "probe.gpg")
        opened = self.decrypt(self.home / "probe.gpg", self.home / "probe.opened", directory=False)
        if opened.plaintext_sha256 != sha256_of(probe):
            raise EncryptionError("encryption.gpg.private_key: the probe decrypted to different bytes")

    def import_keys(self, armored: bytes | None, origin: str) -> None:
        """Imports keys given on stdin (never on argv). Raises EncryptionError when none could be imported."""
        if armored is None:
            raise EncryptionError(f"encryption.gpg: cannot read {origin}")
        with tempfile.TemporaryFile(dir=self.home) as errors:
            process = programs.start(
                [*self._gpg(), "--import"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors.fileno()
            )
            assert process.stdin is not None
            process.stdin.write(armored)
            process.stdin.close()
            if process.wait() != 0:
                raise EncryptionError(f"encryption.gpg: no key could be imported from {origin}: {_last_line(errors)}")

    def encrypt(self, source: Path, destination: Path) -> Sealed:
        """Encrypts `source` (a file, or a directory sent as a tar stream) to the recipients into `destination`.

        Returns the plaintext's size and sha256. Raises EncryptionError (an unknown or unusable recipient)."""
        recipients = [argument for recipient in self.recipients for argument in ("--recipient", recipient)]
        argv = [*self._gpg(), "--trust-model", "always", "--compress-algo", "none", *recipients, "--encrypt"]
        with destination.open("wb") as ciphertext, tempfile.TemporaryFile(dir=self.home) as errors:
            process = programs.start(argv, stdin=subprocess.PIPE, stdout=ciphertext.fileno(), stderr=errors.fileno())
            assert process.stdin is not None
            counter = _HashingWriter(process.stdin)
            try:
                if source.is_dir():
                    with tarfile.open(fileobj=counter, mode="w|") as archive:  # type: ignore[call-overload]
                        archive.add(source, arcname=source.name)
                else:
                    with source.open("rb") as plaintext:
                        while chunk := plaintext.read(CHUNK):
                            counter.write(chunk)
                process.stdin.close()
            except BrokenPipeError:
                pass  # gpg ended early: its status and stderr say why
            finally:
                if process.wait() != 0:
                    raise EncryptionError(f"gpg could not encrypt {source.name}: {_last_line(errors)}")
        return Sealed(counter.size, counter.sha256.hexdigest())

    def decrypt(self, ciphertext: Path, destination: Path, *, directory: bool) -> Sealed:
        """Decrypts `ciphertext` into `destination` (a file, or for a tar stream a directory made in
        `destination`'s parent). Returns the plaintext's size and sha256. Raises EncryptionError.

        A protected private key is unlocked with the passphrase written to gpg's stdin (--passphrase-fd 0,
        loopback pinentry): never on argv, never in a file; the ciphertext is named on argv instead."""
        unlock = ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--status-fd", "2"]
        with tempfile.TemporaryFile(dir=self.home) as errors:
            process = programs.start(
                [*self._gpg(quiet=False), *unlock, "--decrypt", ciphertext],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors.fileno(),
            )
            assert process.stdin is not None and process.stdout is not None
            try:
                if self._passphrase is not None:
                    process.stdin.write(self._passphrase.encode() + b"\n")
                process.stdin.close()
            except BrokenPipeError:
                pass  # gpg ended early: its status and stderr say why
            reader = _HashingReader(process.stdout)
            unsafe: UnsafeArchive | None = None
            try:
                if directory:
                    try:
                        with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
                            extract_stream(archive, destination.parent)
                    except UnsafeArchive as error:
                        unsafe = error
                        process.kill()  # gpg would block on a pipe nobody reads any more
                    else:
                        reader.drain()
                else:
                    with destination.open("wb") as plaintext:
                        while chunk := reader.read(CHUNK):
                            plaintext.write(chunk)
            finally:
                if unsafe is not None:
                    process.wait()
                    raise EncryptionError(f"{ciphertext.name} was not unpacked: {unsafe}")
                if process.wait() != 0:
                    problem = _unlock_problem(errors, passphrase_given=self._passphrase is not None)
                    raise EncryptionError(problem or f"gpg could not decrypt {ciphertext.name}: {_last_line(errors)}")
        return Sealed(reader.size, reader.sha256.hexdigest())

    def _gpg(self, *, quiet: bool = True) -> list[str | Path]:
        # gpg reports why a private key did not unlock (status ERROR pkdecrypt_failed) only when not --quiet
        return ["gpg", "--homedir", self.home, "--batch", *(["--quiet"] if quiet else []), "--no-tty", "--yes",
                "--output", "-"]  # fmt: skip


def sha256_of(path: Path) -> str:
    """Returns the sha256 of the file at `path`, read in chunks. Raises OSError."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through it into `sink`."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)


class _HashingReader:
    """A read-only stream that hashes and counts what is read from `source`."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Reads to the end (tar's zero padding counts in the sha256)."""
        while self.read(CHUNK):
            pass


_BAD_PASSPHRASE, _NO_PASSPHRASE = 11, 177  # libgpg-error codes (the low 16 bits of gpg's status ERROR value)


def _unlock_problem(errors: IO[bytes], *, passphrase_given: bool) -> str | None:
    """Returns what to fix when gpg's status lines say the private key could not be unlocked or is not a
    recipient's key, else None."""
    errors.seek(0)
    status = [
        line.split()[1:] for line in errors.read().decode(errors="replace").splitlines() if line.startswith("[GNUPG:] ")
    ]
    codes = {
        int(words[2]) & 0xFFFF
        for words in status
        if words[:2] == ["ERROR", "pkdecrypt_failed"] and len(words) > 2 and words[2].isdigit()
    }
    if _BAD_PASSPHRASE in codes:
        if not passphrase_given:
            return MISSING_PASSPHRASE
        return "encryption.gpg.private_key_passphrase does not unlock encryption.gpg.private_key (gpg: bad passphrase)"
    if _NO_PASSPHRASE in codes or (not passphrase_given and any(words[:1] == ["NEED_PASSPHRASE"] for words in status)):
        return MISSING_PASSPHRASE
    if any(words[:1] == ["NO_SECKEY"] for words in status):
        return "encryption.gpg.private_key is not the private key of any of encryption.gpg.recipients"
    return None


MISSING_PASSPHRASE = (
    "encryption.gpg.private_key is protected by a passphrase: set encryption.gpg.private_key_passphrase "
    "(file:/path or ${ENV_VAR})"
)


def _last_line(errors: IO[bytes]) -> str:
    errors.seek(0)
    text = errors.read().decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[GNUPG:]")]
    return lines[-1] if lines else "no message"
