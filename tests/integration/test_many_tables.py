"""A multi-tenant database of thousands of small tables, each with a serial primary key (so a sequence
and an index beside every table): counted, hashed and fingerprinted without exhausting the lock table
(the sandbox keeps PostgreSQL's 64 locks per transaction), every table proven."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SourceDatabase
from verifier.pipeline import commands
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status

# more sequences than the sandbox's lock table holds (64 x 52 slots and the shared memory's slack: a
# query locking every sequence at once fails from about 6,000 on), so nothing may touch all at once
TABLES = 6000


def test_six_thousand_tables_with_sequences_verify(
    postgres_installation: binaries.Installation, tmp_path: Path
) -> None:
    # production must hold pg_dump's lock on every table and sequence (and the snapshot's on every table)
    # for the dump: raised as its DBA would, to what the field report had (issue 21)
    settings = {"max_locks_per_transaction": "1024"}
    with TemporaryCluster(postgres_installation, tcp=True, settings=settings) as production:
        with production.connect() as connection:
            connection.execute("CREATE DATABASE tenants")
        with production.connect("tenants") as connection:
            connection.execute(
                f"""DO $$ BEGIN
                  FOR n IN 1..{TABLES} LOOP
                    IF n % 100 = 0 OR n = 1 THEN EXECUTE format('CREATE SCHEMA tenant_%s', n / 100); END IF;
                    EXECUTE format('CREATE TABLE tenant_%s.items_%s (id serial PRIMARY KEY, name text)', n / 100, n);
                    EXECUTE format('INSERT INTO tenant_%s.items_%s (name) VALUES (%L), (NULL)', n / 100, n, 'x' || n);
                    IF n % 500 = 0 THEN COMMIT; END IF;  -- the creating transaction's locks stay few
                  END LOOP;
                END $$"""
            )
        source = SourceDatabase(production, "tenants")
        report = commands.run(source.config(tmp_path / "repo", verify={"content": "full"}))
    failed = [(result.name, result.summary) for result in report.results if result.status is not Status.OK]
    assert report.exit_code == 0, failed
    assert report.verification is not None and report.verification_passed
    assert len(report.verification.tables) == TABLES
    assert report.verification.finding("contents").compared == TABLES
