"""`verifier check --offsite [TARGET]`: the newest copy on each target is downloaded and every object's
sha256 compared with its index (one byte changed is CRITICAL, naming target and object); with
`encryption.gpg.private_key` the copy is decrypted (its plaintext sha256 compared too) into a private
directory in the repository's state/ and handed to the usual verification: integrity against the
decrypted manifest, restore into the sandbox, the full comparison. The directory is removed after.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from verifier.config_offsite import EncryptionConfig, OffsiteTargetConfig, offsite_target_name
from verifier.errors import ConfigError
from verifier.offsite import crypto
from verifier.offsite.index import Copy, read_copies, record_proof
from verifier.offsite.storage import Target, TargetError, open_target
from verifier.offsite.upload import staging_dir
from verifier.report import CheckResult, Command, Status
from verifier.repository.backups import Backup, backup_from_file

logger = logging.getLogger(__name__)


@contextmanager
def fetch_newest(
    targets: Sequence[OffsiteTargetConfig],
    encryption: EncryptionConfig | None,
    target_name: str | None,
    state_dir: Path,
    results: list[CheckResult],
) -> Iterator[Backup | None]:
    """Proves the newest copy on each chosen target of `targets` (all when `target_name` is None) and appends one
    `offsite <target>` result each to `results`. Yields the backup decrypted from the first target whose
    copy is whole (None without a private key, or when none is); it is removed on the way out.

    Raises ConfigError for an unknown target name or no off-site configuration."""
    chosen = [target for target in targets if target_name in (None, offsite_target_name(target))]
    if not chosen:
        known = ", ".join(offsite_target_name(target) for target in targets) or "none configured"
        raise ConfigError(f"check --offsite: no off-site target named {target_name!r} (known: {known})")
    assert encryption is not None, "validated: offsite needs encryption"
    gpg = encryption.gpg
    with staging_dir(state_dir) as staging, crypto.keyring(gpg, with_private_key=True) as keyring:
        restored: Backup | None = None
        for target_config in chosen:
            now = datetime.now(UTC)
            try:
                target = open_target(target_config)
                copies, _ = read_copies(target, staging)
                if not copies:
                    raise TargetError(f"off-site target {target.name}: no copy there")
                copy = copies[-1]
                problems = _download(target, copy, staging / target.name)
            except TargetError as error:
                results.append(
                    CheckResult(
                        f"offsite {offsite_target_name(target_config)}",
                        Status.CRITICAL,
                        str(error),
                        metrics={"target": offsite_target_name(target_config), "proof_status": 0},
                    )
                )
                continue
            age = max(0, int((now - copy.created_at).total_seconds()))
            metrics: dict[str, int | float | str] = {
                "target": target.name,
                "proof_status": 0 if problems else 1,
                "count": len(copies),
                "age_seconds": age,
                "newest": copy.name,
                "last_upload": copy.index.uploaded_at.isoformat(),
            }
            record_proof(state_dir, target.name, copy.name, ok=not problems, how=Command.CHECK_OFFSITE, at=now)
            if problems:
                summary = f"newest copy {copy.name} on {target.name} is damaged: {problems[0]}"
                results.append(
                    CheckResult(f"offsite {target.name}", Status.CRITICAL, summary, tuple(problems), metrics)
                )
                continue
            summary = f"newest copy {copy.name} on {target.name}: every object matches its sha256"
            if restored is None and gpg.private_key is not None:
                restored, problem = _decrypt(keyring, copy, staging / target.name)
                if problem is not None:
                    metrics["proof_status"] = 0
                    results.append(CheckResult(f"offsite {target.name}", Status.CRITICAL, problem, (), metrics))
                    continue
                summary += "; decrypted to the recorded plaintext, restored below"
            elif gpg.private_key is None:
                summary += "; not restored (encryption.gpg.private_key is not configured)"
            results.append(CheckResult(f"offsite {target.name}", Status.OK, summary, (), metrics))
        yield restored


def _download(target: Target, copy: Copy, directory: Path) -> list[str]:
    """Downloads every object of `copy` into `directory` and compares sha256s. Returns the problems, each
    naming the object. Raises TargetError when the target cannot be read."""
    directory.mkdir(mode=0o700, exist_ok=True)
    problems = [f"{key}: missing on {target.name}" for key in copy.missing]
    for entry in copy.index.files:
        if entry.key in copy.missing:
            continue
        local = directory / entry.key
        target.download(entry.key, local)
        found = crypto.sha256_of(local)
        if found != entry.sha256:
            problems.append(f"{entry.key}: sha256 {found[:12]}… differs from the uploaded {entry.sha256[:12]}…")
    return problems


def _decrypt(keyring: crypto.Keyring, copy: Copy, directory: Path) -> tuple[Backup | None, str | None]:
    """Decrypts every object of `copy` beside it. Returns the backup, or None and the problem."""
    plain = directory / "plain"
    plain.mkdir(mode=0o700)
    for entry in copy.index.files:
        try:
            opened = keyring.decrypt(directory / entry.key, plain / entry.local_name, directory=entry.directory)
        except crypto.EncryptionError as error:
            return None, f"{copy.name}: {error}"
        (directory / entry.key).unlink()
        if opened.plaintext_sha256 != entry.plaintext_sha256:
            return (
                None,
                f"{entry.key}: decrypted to sha256 {opened.plaintext_sha256[:12]}…, recorded "
                f"{entry.plaintext_sha256[:12]}…",
            )
    dump_name = next(entry.local_name for entry in copy.index.files if entry.key == copy.index.dump_key)
    return backup_from_file(plain / dump_name), None
