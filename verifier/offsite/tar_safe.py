"""Unpacking a directory-format dump's tar stream without trusting it.

`TarFile.extractall(filter="data")` arrived in Python 3.11.4; Debian 12's own Python is 3.11.2, where
the keyword is a TypeError. So every member is checked here first, on every Python: only regular files
and directories, a relative name with no `..` that stays inside the destination, no links, no devices,
no FIFOs; and where the `data` filter exists it is applied too. Standard library only, so the test suite
can run this module under the system's own Python.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from verifier.errors import VerifierError

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


class UnsafeArchive(VerifierError):
    """A tar stream holds a member that could write outside its directory, or is not a file or directory."""


def extract_stream(archive: tarfile.TarFile, destination: Path) -> list[Path]:
    """Extracts every member of `archive` (opened as a stream, mode "r|") under `destination`, one at a
    time, each checked before it is written. Returns the paths written.

    Raises UnsafeArchive for a link, device, FIFO, absolute name or a name that leaves `destination`
    (members already written stay: the caller removes its temporary directory); tarfile.TarError, OSError.
    """
    root = destination.resolve()
    written: list[Path] = []
    for member in archive:
        target = check_member(member, root)
        if _HAS_DATA_FILTER:
            archive.extract(member, root, filter="data")
        else:  # Python < 3.11.4: no filter; the check above stands in for it, and no owner, mode or time is
            archive.extract(member, root, set_attrs=False)  # taken from the archive (files: umask, dirs: 0700)
        written.append(target)
    return written


def check_member(member: tarfile.TarInfo, root: Path) -> Path:
    """Returns where `member` would land under `root` (already resolved). Raises UnsafeArchive when it is
    not a regular file or directory, or its name is absolute or reaches outside `root`."""
    if not (member.isreg() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "device or FIFO"
        raise UnsafeArchive(f"the archive holds a {kind}, {member.name!r}: only files and directories are unpacked")
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise UnsafeArchive(f"the archive names {member.name!r}, outside the directory it unpacks into")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchive(f"the archive names {member.name!r}, outside the directory it unpacks into")
    return target
