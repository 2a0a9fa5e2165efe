"""The directory-format dump's tar stream unpacks safely on every Python the package claims, including
Debian 12's own /usr/bin/python3 (3.11.2, before `extractall(filter=...)` existed), and refuses members
that would write outside the directory, links and devices.

Each case runs in a child interpreter: the one running the tests, and /usr/bin/python3 when it is a
different, older one (the module under test needs only the standard library)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
UNPACK = """
import json, sys, tarfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from verifier.offsite.tar_safe import UnsafeArchive, extract_stream
destination = Path(sys.argv[3])
with open(sys.argv[2], "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
    try:
        written = extract_stream(archive, destination)
        print(json.dumps({"written": sorted(str(p.relative_to(destination.resolve())) for p in written)}))
    except UnsafeArchive as error:
        print(json.dumps({"refused": str(error)}))
"""


def interpreters() -> list[str]:
    """Returns the Pythons to test under: this one, and the system's own when it is another version."""
    found = [sys.executable]
    if SYSTEM_PYTHON.exists():
        version = subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:3])"], capture_output=True, text=True
        ).stdout.strip()
        if version != str(tuple(sys.version_info[:3])):
            found.append(str(SYSTEM_PYTHON))
    return found


def unpack(python: str, members: list[tuple[tarfile.TarInfo, bytes | None]], tmp_path: Path) -> dict[str, object]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, content in members:
            info.size = len(content or b"")
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    tar_path = tmp_path / "dump.tar"
    tar_path.write_bytes(buffer.getvalue())
    destination = tmp_path / "out"
    destination.mkdir()
    completed = subprocess.run(
        [python, "-c", UNPACK, str(REPOSITORY), str(tar_path), str(destination)], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


def member(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.mark.parametrize("python", interpreters())
def test_a_directory_dump_unpacks(python: str, tmp_path: Path) -> None:
    result = unpack(
        python,
        [
            (member("20261207T0330Z.dir", tarfile.DIRTYPE, mode=0o700), None),
            (member("20261207T0330Z.dir/toc.dat", mode=0o4755), b"toc"),
            (member("20261207T0330Z.dir/3456.dat.gz"), b"rows"),
        ],
        tmp_path,
    )
    assert result == {"written": ["20261207T0330Z.dir", "20261207T0330Z.dir/3456.dat.gz", "20261207T0330Z.dir/toc.dat"]}
    assert (tmp_path / "out/20261207T0330Z.dir/3456.dat.gz").read_bytes() == b"rows"
    assert not (tmp_path / "out/20261207T0330Z.dir/toc.dat").stat().st_mode & 0o4000, "a setuid bit came through"


@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize(
    "bad",
    [
        member("../escaped"),
        member("/tmp/absolute"),
        member("dir/../../escaped"),
        member("dir/link", tarfile.SYMTYPE, link="/etc"),
        member("dir/hard", tarfile.LNKTYPE, link="/etc/passwd"),
        member("dir/null", tarfile.CHRTYPE),
        member("dir/pipe", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "device", "fifo"],
)
def test_a_member_that_could_leave_the_directory_is_refused(python: str, bad: tarfile.TarInfo, tmp_path: Path) -> None:
    content = b"x" if bad.isreg() else None
    result = unpack(python, [(member("dir", tarfile.DIRTYPE, mode=0o700), None), (bad, content)], tmp_path)
    assert "refused" in result and bad.name in str(result["refused"]), result
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "out/dir/link").exists() and not (tmp_path / "out/dir/null").exists()
