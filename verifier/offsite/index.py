"""What lies on a target: per backup, its encrypted objects and one plaintext index `NAME.offsite.json`
(uploaded last, after every object was read back, so an index always describes a whole copy). The
index holds names, times, sizes and sha256s only: no table name, no row, no secret.

Also the local record of proofs (`state/offsite-proofs.json`): when each copy was last proven, and how.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from verifier.offsite.storage import RemoteObject, Target

logger = logging.getLogger(__name__)

INDEX_SUFFIX = ".offsite.json"


class OffsiteFile(BaseModel):
    """One encrypted object: which local file it holds, and the sha256 of both sides of the encryption."""

    key: str
    local_name: str
    directory: bool = False
    plaintext_size: int
    plaintext_sha256: str
    size: int
    sha256: str


class OffsiteIndex(BaseModel):
    """One off-site copy of a backup."""

    backup: str
    created_at: datetime
    format: str
    dump_key: str
    files: list[OffsiteFile]
    uploaded_at: datetime
    proven_at: datetime

    @property
    def size_bytes(self) -> int:
        """Returns the bytes of the copy's encrypted objects."""
        return sum(entry.size for entry in self.files)


@dataclass(frozen=True)
class Copy:
    """A copy as found on a target: its index, and the keys its index names that are missing there."""

    index: OffsiteIndex
    missing: tuple[str, ...]

    @property
    def name(self) -> str:
        """Returns the backup's name (what retention plans by)."""
        return self.index.backup

    @property
    def created_at(self) -> datetime:
        """Returns when the backup was taken."""
        return self.index.created_at

    @property
    def size_bytes(self) -> int:
        """Returns the bytes of its encrypted objects."""
        return self.index.size_bytes

    @property
    def paths(self) -> list[Path]:
        """Returns no local path: nothing of a copy is on this host."""
        return []


def index_key(backup: str) -> str:
    """Returns the key of a backup's index on a target."""
    return backup + INDEX_SUFFIX


def read_copies(target: Target, staging: Path) -> tuple[list[Copy], list[RemoteObject]]:
    """Returns the copies on `target` (oldest first) and every object listed there.

    An unreadable index is logged and skipped. Raises TargetError when the target cannot be listed or read.
    """
    objects = target.objects()
    present = {entry.key for entry in objects}
    copies = []
    for entry in objects:
        if not entry.key.endswith(INDEX_SUFFIX):
            continue
        local = staging / entry.key
        target.download(entry.key, local)
        try:
            index = OffsiteIndex.model_validate_json(local.read_bytes())
        except (OSError, ValidationError) as error:
            logger.warning("off-site target %s: index %s unreadable: %s", target.name, entry.key, error)
            continue
        finally:
            local.unlink(missing_ok=True)
        missing = tuple(file.key for file in index.files if file.key not in present)
        copies.append(Copy(index, missing))
    return sorted(copies, key=lambda copy: copy.created_at), objects


def write_index(target: Target, index: OffsiteIndex, staging: Path) -> None:
    """Uploads the index of a copy. Raises TargetError (or OSError writing the staged file)."""
    local = staging / index_key(index.backup)
    local.write_text(index.model_dump_json(indent=2), encoding="utf-8")
    try:
        target.put(local, index_key(index.backup))
    finally:
        local.unlink(missing_ok=True)


def delete_copy(target: Target, copy: Copy) -> None:
    """Deletes a copy's objects, then its index (an interrupted delete leaves an index naming missing
    objects, which `check --offsite` reports). Raises TargetError."""
    for file in copy.index.files:
        if file.key not in copy.missing:
            target.delete(file.key)
    target.delete(index_key(copy.name))


def proofs_path(state_dir: Path) -> Path:
    """Returns the local record of off-site proofs."""
    return state_dir / "offsite-proofs.json"


def record_proof(state_dir: Path, target: str, backup: str, *, ok: bool, how: str, at: datetime) -> None:
    """Records that `backup` on `target` was proven (or failed) at `at`. Logs an OSError, never raises."""
    path = proofs_path(state_dir)
    proofs = last_proofs(state_dir)
    proofs.setdefault(target, {})[backup] = {"at": at.isoformat(), "ok": ok, "how": how}
    try:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(proofs, indent=2), encoding="utf-8")
        partial.chmod(0o600)
        partial.rename(path)
    except OSError as error:
        logger.error("could not record the off-site proof in %s: %s", path, error)


def last_proofs(state_dir: Path) -> dict[str, dict[str, dict[str, object]]]:
    """Returns {target: {backup: {"at", "ok", "how"}}}; empty when nothing was recorded or it is unreadable."""
    try:
        loaded = json.loads(proofs_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
