"""pg_amcheck on the restored physical copy: what only a copy of the files can have wrong (a torn or
damaged page, an index that no longer matches its table), one finding a line.

`full`: every table's heap and every B-tree index, with `--heapallindexed` (each heap tuple looked up in
every index). `sample`: every B-tree's structure, heap pages already all-frozen skipped, no
heapallindexed: far cheaper, and blind to an index that lost an entry. `off`: nothing.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from typing import Literal

from verifier import process
from verifier.errors import VerifierError
from verifier.physical.restored import RestoredCluster

AMCHECK_TIMEOUT_SECONDS = 24 * 3600.0
MODE_OPTIONS = {
    "full": ["--heapallindexed"],
    "sample": ["--skip=all-frozen"],
}
# --progress's last line on stderr (not a terminal: one line per report), e.g. '12/12 relations (100%),
# 84/84 pages (100%)': how much was checked
PROGRESS = re.compile(r"^\s*(\d+)/(\d+) relations \(\d+%\), *(\d+)/(\d+) pages \(\d+%\)")


class AmcheckFailed(VerifierError):
    """pg_amcheck could not run on the restored copy (not the same as finding corruption)."""


@dataclass(frozen=True)
class AmcheckResult:
    """What pg_amcheck found (one line each, empty when nothing), how long it took, and how many relations
    (tables, TOAST tables, B-tree indexes) and pages it checked (None when it did not say)."""

    mode: str
    findings: tuple[str, ...]
    seconds: float
    relations: int | None = None
    pages: int | None = None


def run_amcheck(restored: RestoredCluster, mode: Literal["full", "sample", "off"]) -> AmcheckResult | None:
    """Returns pg_amcheck's findings on every database of the restored copy (installing the amcheck
    extension there where missing), or None for `off`. Raises AmcheckFailed when it could not run."""
    if mode == "off":
        return None
    installation = restored.cluster.installation
    argv = [
        str(installation.program("pg_amcheck")),
        f"--host={restored.socket_dir}",
        f"--port={restored.cluster.port}",
        f"--username={restored.cluster.superuser}",
        "--all",
        "--install-missing",
        "--progress",
        *MODE_OPTIONS[mode],
    ]
    started = time.monotonic()
    try:
        completed = process.run(argv, timeout=AMCHECK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise AmcheckFailed(f"pg_amcheck did not finish within {AMCHECK_TIMEOUT_SECONDS:.0f}s") from None
    seconds = time.monotonic() - started
    findings = parse_findings(completed.stdout)
    said = [line.strip() for line in (completed.stderr or "").splitlines() if line.strip()]
    progress = [found for line in said if (found := PROGRESS.match(line))]
    if completed.returncode != 0 and not findings:
        lines = [line for line in said if not PROGRESS.match(line)] or [
            line.strip() for line in completed.stdout.splitlines() if line.strip()
        ]
        raise AmcheckFailed(f"pg_amcheck failed: {lines[-1] if lines else f'exit code {completed.returncode}'}")
    relations, pages = (int(progress[-1][1]), int(progress[-1][3])) if progress else (None, None)
    return AmcheckResult(mode, tuple(findings), seconds, relations, pages)


def parse_findings(output: str) -> list[str]:
    """Returns one line per pg_amcheck finding: its heading (the relation, block and offset) and the first
    line of what it says, e.g. 'btree index "app.public.t_pkey": ERROR: item order invariant violated …'."""
    findings: list[str] = []
    heading = ""
    said: list[str] = []

    def flush() -> None:
        if heading:
            detail = said[0] if said else "no detail"
            findings.append(f"{heading}: {' '.join(detail.split())}")

    for line in output.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            flush()
            heading, said = line.strip().rstrip(":"), []
        else:
            said.append(line.strip())
    flush()
    return findings
