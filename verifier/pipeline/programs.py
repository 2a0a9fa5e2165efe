"""Which PostgreSQL programs a night would use, found before the first night: the source is asked its
version, then the same choice the dump and the sandbox make is made here (`binaries.choose`), so `doctor`
can say "PostgreSQL 18.6: pg_dump 18.6 from …, the sandbox 18.6 from …" or how to get what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from verifier.config import Config
from verifier.errors import BinaryMissing, VerifierError, one_line
from verifier.pipeline.source import resolve_source
from verifier.postgres import binaries
from verifier.postgres.connection import DatabaseError
from verifier.postgres.snapshot import server_info

SANDBOX_PROGRAMS = {"local": ("initdb", "postgres", "pg_restore", "psql"), "server": ("pg_restore", "psql")}


@dataclass(frozen=True)
class ProgramsFact:
    """One line of the answer; `missing` marks programs the night cannot run without."""

    name: str
    value: str
    missing: bool = False


def programs_plan(config: Config) -> list[ProgramsFact]:
    """Returns what the source runs and which programs would dump it and run its sandbox.

    Never raises for what the config or the host causes: an unreachable source is a fact ("unknown")."""
    try:
        source = resolve_source(config.source)
        with source.params.connect() as session:
            info = server_info(session)
    except (VerifierError, DatabaseError) as error:
        return [ProgramsFact("production server", f"unknown: {one_line(error)}")]
    facts = [ProgramsFact("production server", f"PostgreSQL {info.version} ({source.params.label})")]
    if source.executor is not None:
        facts.append(ProgramsFact("pg_dump", f"inside {source.description}, beside the server"))
    else:
        facts.append(_chosen("pg_dump", ("pg_dump",), config, info.major, f"dumping PostgreSQL {info.version}"))
    programs = SANDBOX_PROGRAMS.get(config.verify.sandbox)
    if programs is None:
        facts.append(ProgramsFact("sandbox programs", "a container of the production image (verify.sandbox docker)"))
    else:
        facts.append(_chosen("sandbox programs", programs, config, info.major, f"the {config.verify.sandbox} sandbox"))
    return facts


def _chosen(name: str, programs: tuple[str, ...], config: Config, major: int, purpose: str) -> ProgramsFact:
    try:
        installation = binaries.choose(
            programs, configured_dir=config.postgres.bin_dir, minimum_major=major, prefer_major=major, purpose=purpose
        )
    except BinaryMissing as error:
        return ProgramsFact(name, f"MISSING: {error}", missing=True)
    return ProgramsFact(name, f"PostgreSQL {installation.version} from {installation.bin_dir} ({', '.join(programs)})")
