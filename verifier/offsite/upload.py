"""The off-site step of `verifier run`: every verified backup not yet on a target goes there, oldest
first (so a target that was down catches up), encrypted, each object read back and its sha256
compared before the copy's index is written; then the target's retention plan is applied.

A target that is down is a WARNING for that target (`pgbackup.offsite.status` 0); it never touches
the night's verdict. A copy that reads back different from what was sent is CRITICAL.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from verifier.config import RetentionConfig
from verifier.config_offsite import EncryptionConfig, OffsiteTargetConfig
from verifier.errors import VerifierError
from verifier.offsite import crypto
from verifier.offsite.index import Copy, OffsiteFile, OffsiteIndex, read_copies, record_proof, write_index
from verifier.offsite.retention import apply_plan, plan_copies
from verifier.offsite.storage import Target, TargetError, open_target
from verifier.report import CheckResult, Status
from verifier.repository.backups import Backup

logger = logging.getLogger(__name__)


class ProofFailed(TargetError):
    """An object read back from a target differs from what was sent."""

    exit_code = 2


@dataclass
class TargetOutcome:
    """What one run did with one target."""

    target: Target
    uploaded: list[str] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    error: str | None = None
    proof_failed: bool = False
    listed: bool = False


def upload_verified(
    backups: Sequence[Backup],
    verified: Collection[str],
    state_dir: Path,
    *,
    targets: Sequence[OffsiteTargetConfig],
    encryption: EncryptionConfig | None,
    retention: RetentionConfig,
    now: datetime,
    timezone: tzinfo = UTC,
) -> list[CheckResult]:
    """Uploads every verified backup (of `backups`, oldest first) missing on each of `targets`, proves
    each upload by reading it back, then applies the off-site `retention`. Returns one `offsite <target>`
    result per target. Raises EncryptionError (exit 3) when the public keys cannot be used."""
    assert encryption is not None, "validated: offsite needs encryption"
    outcomes = []
    for target_config in targets:
        try:
            outcomes.append(TargetOutcome(open_target(target_config)))
        except TargetError as error:
            logger.error("%s", error)
    candidates = [backup for backup in backups if backup.name in verified and _uploadable(backup)]
    with staging_dir(state_dir) as staging, crypto.keyring(encryption.gpg) as keyring:
        for outcome in outcomes:
            _list(outcome, staging)
        for backup in candidates:
            needing = [o for o in outcomes if o.listed and o.error is None and backup.name not in _names(o.copies)]
            if needing:
                _upload_backup(backup, needing, keyring, staging, state_dir, now)
        for outcome in outcomes:
            if outcome.error is None and outcome.listed:
                retention_plan = plan_copies(outcome.copies, retention, now=now, timezone=timezone)
                outcome.pruned, failures = apply_plan(outcome.target, outcome.copies, retention_plan)
                outcome.copies = [copy for copy in outcome.copies if copy.name not in outcome.pruned]
                if failures:
                    outcome.error = failures[0]
    return [target_result(outcome, now) for outcome in outcomes]


def target_result(outcome: TargetOutcome, now: datetime) -> CheckResult:
    """Returns the `offsite <target>` result with the metrics Zabbix's per-target items are sent from."""
    name = outcome.target.name
    metrics: dict[str, int | float | str] = {
        "target": name,
        "upload_status": 0 if outcome.error else 1,
        "proof_status": 0 if outcome.proof_failed else 1,
    }
    details = [f"uploaded and read back: {backup}" for backup in outcome.uploaded]
    details += [f"pruned: {backup}" for backup in outcome.pruned]
    if outcome.listed:
        metrics["count"] = len(outcome.copies)
        if outcome.copies:
            newest_copy = outcome.copies[-1]
            metrics["age_seconds"] = max(0, int((now - newest_copy.created_at).total_seconds()))
            metrics["newest"] = newest_copy.name
            metrics["last_upload"] = newest_copy.index.uploaded_at.isoformat()
    status = Status.CRITICAL if outcome.proof_failed else Status.WARNING if outcome.error else Status.OK
    if outcome.error:
        summary = outcome.error
    else:
        newest = outcome.copies[-1].name if outcome.copies else "none"
        summary = f"{len(outcome.copies)} copies on {outcome.target.location}, newest {newest}"
        if outcome.uploaded:
            summary += f"; uploaded {len(outcome.uploaded)}"
    return CheckResult(f"offsite {name}", status, summary, tuple(details), metrics)


@contextmanager
def staging_dir(state_dir: Path) -> Iterator[Path]:
    """Yields a private directory in the repository's state/ for ciphertext in transit; removed after."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="offsite-", dir=state_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def object_key(local_name: str, directory: bool) -> str:
    """Returns the key of an encrypted object: `NAME.dump.gpg`, `NAME.dir.tar.gpg`, …"""
    return f"{local_name}.tar.gpg" if directory else f"{local_name}.gpg"


def _uploadable(backup: Backup) -> bool:
    return backup.manifest is not None and backup.manifest_path is not None and backup.problem is None


def _names(copies: list[Copy]) -> set[str]:
    return {copy.name for copy in copies}


def _list(outcome: TargetOutcome, staging: Path) -> None:
    try:
        outcome.copies, _ = read_copies(outcome.target, staging)
        outcome.listed = True
    except TargetError as error:
        logger.error("%s", error)
        outcome.error = str(error)


def _upload_backup(
    backup: Backup,
    needing: list[TargetOutcome],
    keyring: crypto.Keyring,
    staging: Path,
    state_dir: Path,
    now: datetime,
) -> None:
    """Encrypts the backup's files once, then puts and reads back each on every target that lacks it."""
    assert backup.manifest is not None and backup.manifest_path is not None
    sealed: list[tuple[Path, OffsiteFile]] = []
    try:
        try:
            for path in backup.paths:
                sealed.append(_seal(path, backup, keyring, staging))
        except TargetError as error:
            logger.error("%s", error)
            for outcome in needing:
                outcome.error = f"off-site target {outcome.target.name}: {backup.name}: {error}"
            return
        for outcome in needing:
            try:
                for local, entry in sealed:
                    outcome.target.put(local, entry.key)
                    _read_back(outcome.target, entry, staging)
                index = OffsiteIndex(
                    backup=backup.name,
                    created_at=backup.created_at,
                    format=backup.format,
                    dump_key=sealed[0][1].key,
                    files=[entry for _, entry in sealed],
                    uploaded_at=now,
                    proven_at=datetime.now(UTC),
                )
                write_index(outcome.target, index, staging)
            except TargetError as error:
                logger.error("%s", error)
                outcome.error = str(error)
                outcome.proof_failed = isinstance(error, ProofFailed)
                continue
            outcome.uploaded.append(backup.name)
            outcome.copies.append(Copy(index, ()))
            record_proof(state_dir, outcome.target.name, backup.name, ok=True, how="read back after upload", at=now)
            logger.info("off-site target %s: %s uploaded and read back", outcome.target.name, backup.name)
    finally:
        for local, _ in sealed:
            local.unlink(missing_ok=True)


def _seal(path: Path, backup: Backup, keyring: crypto.Keyring, staging: Path) -> tuple[Path, OffsiteFile]:
    """Encrypts one file of a backup into `staging`. Returns the ciphertext and its entry.

    Raises EncryptionError, and TargetError when the plaintext no longer matches its manifest (the file
    changed since it was verified: it must not leave as if it were the proven backup)."""
    directory = path.is_dir()
    key = object_key(path.name, directory)
    local = staging / key
    plaintext = keyring.encrypt(path, local)
    assert backup.manifest is not None
    recorded = {entry.path: entry.sha256 for entry in backup.manifest.files}
    if not directory and path.name in recorded and recorded[path.name] != plaintext.plaintext_sha256:
        raise TargetError(f"{path.name} no longer matches its manifest's sha256: not uploaded")
    entry = OffsiteFile(
        key=key,
        local_name=path.name,
        directory=directory,
        plaintext_size=plaintext.plaintext_size,
        plaintext_sha256=plaintext.plaintext_sha256,
        size=local.stat().st_size,
        sha256=crypto.sha256_of(local),
    )
    return local, entry


def _read_back(target: Target, entry: OffsiteFile, staging: Path) -> None:
    """Downloads the object just put and compares its sha256. Raises ProofFailed, TargetError."""
    readback = staging / f"readback-{entry.key}"
    try:
        target.download(entry.key, readback)
        found = crypto.sha256_of(readback)
    finally:
        readback.unlink(missing_ok=True)
    if found != entry.sha256:
        raise ProofFailed(
            f"off-site target {target.name}: {entry.key} read back with sha256 {found[:12]}…, sent {entry.sha256[:12]}…"
        )


def offsite_step(
    backups: Sequence[Backup],
    verified: Collection[str],
    state_dir: Path,
    *,
    targets: Sequence[OffsiteTargetConfig],
    encryption: EncryptionConfig | None,
    retention: RetentionConfig,
    timezone: tzinfo = UTC,
) -> list[CheckResult]:
    """The pipeline's off-site step: `upload_verified`, where an error that stops the whole step (keys
    unusable) is one `offsite` WARNING rather than the end of the night's run. Returns the results."""
    if not targets:
        return []
    try:
        return upload_verified(
            backups,
            verified,
            state_dir,
            targets=targets,
            encryption=encryption,
            retention=retention,
            now=datetime.now(UTC),
            timezone=timezone,
        )
    except VerifierError as error:
        logger.error("off-site copies: %s", error)
        return [
            CheckResult("offsite", Status.WARNING, f"off-site copies not made: {error}", metrics={"upload_status": 0})
        ]
