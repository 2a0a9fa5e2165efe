"""The errors a user can cause, each carrying the exit code and one line that says what to fix.

`verifier.cli.main` catches `VerifierError` once and prints `str(error)`; nothing else prints tracebacks
unless `--debug` is given.
"""

from __future__ import annotations

COULD_NOT_RUN = 3
"""The exit code of a run that could not run (config, lock, a program missing, a crash): see
docs/ARCHITECTURE.md "Exit codes"."""


class VerifierError(Exception):
    """Base of every error the agent reports as one line. `exit_code` follows docs/ARCHITECTURE.md "Exit codes"."""

    exit_code = COULD_NOT_RUN

    @property
    def could_not_run(self) -> bool:
        """Returns True when this error means the run could not run (exit 3), not a finding about a backup."""
        return self.exit_code == COULD_NOT_RUN


class ConfigError(VerifierError):
    """The configuration is missing, unreadable or invalid."""


class BinaryMissing(VerifierError):
    """A PostgreSQL program of the right major version could not be found."""


class LockHeld(VerifierError):
    """Another run holds the repository lock."""


class SandboxError(VerifierError):
    """The sandbox (temporary cluster, container or scratch database) could not be set up."""


class SourceUnreachable(VerifierError):
    """The production database cannot be reached or refused the connection."""

    exit_code = 2


class DumpFailed(VerifierError):
    """pg_dump (or writing its output) failed; the partial file has been removed."""

    exit_code = 2


class BackupNotFound(VerifierError):
    """There is no backup to verify, or the named file does not exist."""

    exit_code = 2


class DockerUnavailable(VerifierError):
    """The Docker engine cannot be reached."""


class RepositoryError(VerifierError):
    """The repository cannot be used: not writable, or it holds another database's backups."""


class RunTimedOut(VerifierError):
    """The run went on longer than `run_timeout`: the step it was in was abandoned and cleaned up."""

    exit_code = 2


class ContainerError(VerifierError):
    """The configured container cannot be used: not found, ambiguous, or unreadable (exit 3)."""


class ContainerNotRunning(SourceUnreachable):
    """The production container exists but is stopped: the source is down (exit 2)."""


class SystemdError(VerifierError):
    """The units could not be written or enabled."""


class ZabbixSetupError(VerifierError):
    """The Zabbix API refused a step of the setup, or could not be reached."""


class NothingToReportError(VerifierError):
    """The history holds no run (or not the one asked for)."""


def one_line(error: object, *, first_line: bool = False) -> str:
    """Returns the error's text on one line: its lines joined (libpq, the engine and the APIs spread
    theirs over several), or with `first_line` only its first non-empty line, stripped ("" when none;
    for tools whose later lines repeat or trace the first); an exception without text: its type's name."""
    if first_line:
        text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    else:
        text = " ".join(str(error).split())
    return text or (type(error).__name__ if isinstance(error, BaseException) else "")
