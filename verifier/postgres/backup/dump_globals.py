"""The roles and tablespaces of the source's server (`pg_dumpall --globals-only`), saved beside the dump
so the sandbox can create production's roles before it restores."""

from __future__ import annotations

import logging
from pathlib import Path

from verifier.archive.files import HashingFile
from verifier.manifest import FileEntry
from verifier.postgres.backup.dump_errors import pg_error
from verifier.postgres.connection import Source
from verifier.process import Executor

logger = logging.getLogger(__name__)


def dump_globals(executor: Executor, source: Source, path: Path) -> tuple[FileEntry | None, str | None, bool]:
    """Dumps roles and tablespaces. Returns (entry, None, whether without the roles' passwords), or
    (None, warning, False) when not permitted."""
    attempts = (["--globals-only"], ["--globals-only", "--no-role-passwords"])
    last_error = ""
    for options in attempts:
        program = executor.start(
            ["pg_dumpall", "--no-password", *options, f"--database={source.params.dbname}"],
            environment=source.params.libpq_environment(),
        )
        target = HashingFile(path)
        try:
            for chunk in program.stdout_chunks():
                target.write(chunk)
        except OSError as error:
            program.kill()
            target.abandon()
            return None, f"roles not saved: writing {path.name} failed: {error.strerror}", False
        if program.wait() == 0:
            note = "" if options == attempts[0] else " (without role passwords: not a superuser)"
            logger.info("roles saved to %s%s", path.name, note)
            return target.finish(path.name), None, options != attempts[0]
        target.abandon()
        last_error = pg_error(program.stderr_text())
    return None, f"roles not saved (pg_dumpall --globals-only): {last_error}", False
