"""A repository root the agent may write but not chmod (a Kubernetes volume's root belongs to root; fsGroup
changes only its group): one WARNING line and on, when it is closed to others; refused, in one line, when
it would expose the backups. Real directories owned by another uid, the agent's code run as a test uid
through a subprocess that drops root (the way the container runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requirements import need

pytestmark = pytest.mark.integration

AGENT_UID = 47_101  # no account needed: the kernel checks numbers
VOLUME_GID = 47_102  # the pod's fsGroup

EXPOSURE = """
import sys
from pathlib import Path
from verifier.repository.exposure import found_open
{drop}
print("\\n".join(found_open(Path(sys.argv[1]))))
"""

OPEN = """
import logging, sys
from pathlib import Path
from verifier.errors import RepositoryError
from verifier.repository.backups import Repository
logging.basicConfig(format="%(levelname)s %(message)s", stream=sys.stderr)
{drop}
try:
    print("created" if Repository(Path(sys.argv[1])).ensure() else "existed")
except RepositoryError as error:
    print(error, file=sys.stderr)
    sys.exit(error.exit_code)
"""


@pytest.fixture
def volume() -> Iterator[Path]:
    """Returns a directory owned by root, group VOLUME_GID, that the agent's uid can reach."""
    need(os.geteuid() == 0, "root (to own a directory as another user and drop to a test uid)")
    with tempfile.TemporaryDirectory(prefix="pgbv-owner-") as parent:
        Path(parent).chmod(0o755)
        root = Path(parent) / "volume"
        root.mkdir()
        os.chown(root, 0, VOLUME_GID)
        yield root


# the agent's code is imported as root (the checkout, its venv included, may be closed to other users: a
# fresh clone in a 0700 directory is), then the process becomes AGENT_UID in group VOLUME_GID, like fsGroup
DROP = f"import os; os.setgroups([{VOLUME_GID}]); os.setgid({AGENT_UID}); os.setuid({AGENT_UID})"


def open_as_agent(path: Path, script: str = OPEN) -> subprocess.CompletedProcess[str]:
    """Runs `script` (Repository.ensure) on `path` as AGENT_UID (in group VOLUME_GID, like fsGroup), its
    imports done first as root, and returns it."""
    return subprocess.run(
        [sys.executable, "-c", script.format(drop=DROP), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def test_a_volume_root_closed_to_others_is_one_warning_and_used(volume: Path) -> None:
    volume.chmod(0o2770)  # what fsGroup makes of a volume's root, without the world bits

    opened = open_as_agent(volume)

    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "existed"
    warnings = [line for line in opened.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        f"WARNING repository {volume} belongs to uid 0 (mode 2770) and cannot be made 0700 by the agent: "
        f"used as it is, since only its owner and group {VOLUME_GID} (one of the agent's) can enter it"
    ], opened.stderr
    assert opened.stderr.count("\n") == 1  # that one line, no traceback
    assert volume.stat().st_mode & 0o7777 == 0o2770
    for inside in ("reports", "state"):
        made = (volume / inside).stat()
        assert made.st_uid == AGENT_UID and made.st_mode & 0o777 == 0o700


def test_a_group_writable_volume_root_is_not_said_to_be_tightened(volume: Path) -> None:
    volume.chmod(0o2770)

    found = open_as_agent(volume, EXPOSURE)

    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == (
        f"repository {volume} was writable by its group (mode 2770), and stays so (not the agent's to chmod); "
        "nothing inside belongs to another user; check that nothing was planted or replaced"
    )


def test_a_volume_root_others_can_read_is_refused_and_left_untouched(volume: Path) -> None:
    volume.chmod(0o2775)  # fsGroup's default: readable by everyone

    opened = open_as_agent(volume)

    assert opened.returncode == 3
    assert opened.stderr.strip() == (
        f"repository {volume} belongs to uid 0 and others can enter it (mode 2775); the agent cannot make "
        "it 0700 and will not put backups where others can read them: have its owner run "
        f"chmod o-rwx {volume}, or point repository.path to a directory below it"
    )
    assert list(volume.iterdir()) == []


def test_a_volume_root_of_a_group_not_the_agents_is_refused(volume: Path) -> None:
    os.chown(volume, 0, VOLUME_GID + 1)
    volume.chmod(0o777)  # everyone may write: the agent can, but so can the world

    opened = open_as_agent(volume)

    assert opened.returncode == 3
    assert "others can enter it (mode 0777)" in opened.stderr
    assert list(volume.iterdir()) == []


def test_a_subdirectory_the_agent_made_is_still_tightened(volume: Path) -> None:
    volume.chmod(0o2775)
    below = volume / "pg-backup-verifier"
    below.mkdir(mode=0o755)
    os.chown(below, AGENT_UID, VOLUME_GID)
    below.chmod(0o755)

    opened = open_as_agent(below)

    assert opened.returncode == 0 and opened.stderr == ""
    assert below.stat().st_mode & 0o777 == 0o700
