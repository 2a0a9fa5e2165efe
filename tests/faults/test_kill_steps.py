"""The night's facts are recorded before anything is deleted (issue 21 point 4): SIGKILL at every step
boundary of `verifier run` with `retention: {keep_days: 0, keep_min: 1}` (retention deletes all it may)
never costs the newest verified backup, and the history knows it. On the old order (retention before the
history row) a kill at `checks` left the previous verified backup deleted and this night's verification
unrecorded: the next night's retention then deleted the only good backup left."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from tests.e2e.conftest import verifier
from tests.faults.conftest import Fault, config_file
from tests.integration.conftest import SourceDatabase
from tests.support import agent
from verifier.repository.backups import Repository
from verifier.repository.history import History

STEP_STARTED = re.compile(r"step (.+): started")
KEEP_NOTHING_EXTRA = {"keep_days": 0, "keep_min": 1}


def test_25_sigkill_at_every_step_boundary_keeps_the_newest_verified_backup_known(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault
) -> None:
    repository = tmp_path / "repo"
    configured = config_file(tmp_path / "c.yaml", source_db, repository, retention=KEEP_NOTHING_EXTRA)
    completed = verifier("run", "--config", configured)
    assert completed.returncode == 1, completed.stdout + completed.stderr  # Zabbix unreachable: a warning
    boundaries = [match.group(1) for match in STEP_STARTED.finditer(completed.stderr)]
    assert {"retention", "checks", "zabbix", "report"} <= set(boundaries), boundaries
    _assert_newest_verified_kept_and_known(repository, "after a whole run")
    # no waiting between runs: two backups of one second are named `…Z` and `…Z-2` and ordered by their
    # manifests' created_at (microseconds), which is what retention and `newest` go by
    for boundary in boundaries:
        before = _verified_on_disk(repository)
        process = agent.start("run", "--config", configured)
        _kill_when_started(process, boundary)
        fault.inject(f"SIGKILL at step {boundary}: started (keep_min 1)")
        newest = _assert_newest_verified_kept_and_known(repository, f"SIGKILL at step {boundary}")
        assert newest >= before[-1], (boundary, before, newest)  # never back to an older one
    completed = verifier("run", "--config", configured)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    _assert_newest_verified_kept_and_known(repository, "the night after")
    fault.watch(repository)


def _kill_when_started(process: subprocess.Popen[str], boundary: str) -> None:
    """SIGKILLs the agent as soon as it logs `step <boundary>: started`; fails when it ends first."""
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        match = STEP_STARTED.search(line)
        if match and match.group(1) == boundary:
            process.send_signal(signal.SIGKILL)
            break
    else:
        raise AssertionError(f"the run ended before step {boundary}: {''.join(seen)}")
    process.communicate(timeout=60)


def _verified_on_disk(repository: Path) -> list[str]:
    """Returns the names of the backups on disk the history says passed their newest verification, oldest first."""
    verified = History(Repository(repository).history_path).verified_backups()
    return [backup.name for backup in Repository(repository).backups() if backup.name in verified]


def _assert_newest_verified_kept_and_known(repository: Path, when: str) -> str:
    """Asserts that the newest backup the history calls verified is on disk. Returns its name."""
    history = History(Repository(repository).history_path)
    verified = history.verified_backups()
    assert verified, f"{when}: the history knows no verified backup"
    on_disk = {backup.name: backup for backup in Repository(repository).backups()}
    newest_known = max(verified, key=lambda name: name.rsplit("_", 2)[-2:])
    left = sorted(on_disk)
    assert newest_known in on_disk, f"{when}: the newest verified backup {newest_known} was deleted; left: {left}"
    return newest_known
