"""Content checksums and sequences against real PostgreSQL: quiet on a healthy backup, CRITICAL naming
the table or sequence when a plain dump is altered and re-sealed (its sha256 matches again), stable
across types whose text form depends on session settings."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.dumps import alter_and_reseal
from tests.support.reports import newest_manifest, result
from verifier.errors import BackupNotFound
from verifier.manifest import Manifest, read_manifest
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.postgres.evidence import contents
from verifier.report import Status


def test_one_changed_value_in_a_million_rows_is_critical_naming_the_table(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    source_db.execute(
        "CREATE TABLE ledger (id bigint PRIMARY KEY, amount numeric, note text);"
        "INSERT INTO ledger SELECT g, g * 1.5, 'entry ' || g FROM generate_series(1, 1000000) g"
    )
    config = source_db.config(tmp_path / "repo", dump={"format": "plain"})
    healthy = commands.run(config)
    assert healthy.exit_code == 0, [(r.name, r.summary) for r in healthy.results]
    assert "match the snapshot" in result(healthy, "contents").summary
    alter_and_reseal(tmp_path / "repo", ("\n777777\t1166665.5\tentry 777777\n", "\n777777\t1166665.6\tentry 777777\n"))
    damaged = commands.check(config)
    contents = result(damaged, "contents")
    assert damaged.exit_code == 2
    assert contents.status is Status.CRITICAL and "ledger" in contents.summary
    assert result(damaged, "row_counts").status is Status.OK  # the counts cannot see it
    assert damaged.verification is not None and not damaged.verification_passed


def test_sequence_restarting_at_one_is_critical_naming_the_table(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo", dump={"format": "plain"})
    assert commands.run(config).exit_code == 0
    dump_path, _ = newest_manifest(tmp_path / "repo")
    text = gzip.decompress(dump_path.read_bytes()).decode()
    setval = re.search(r"SELECT pg_catalog.setval\('\"Sales\".\"OrderLines_Id_seq\"', 500, true\);", text)
    assert setval is not None
    alter_and_reseal(tmp_path / "repo", (setval.group(0), setval.group(0).replace("500, true", "1, false")))
    damaged = commands.check(config)
    sequences = result(damaged, "sequences")
    assert damaged.exit_code == 2
    assert sequences.status is Status.CRITICAL
    details = "\n".join(sequences.details)
    assert 'inserts into "Sales"."OrderLines" would fail after a recovery' in details
    assert 'sequence "Sales"."OrderLines_Id_seq" restarts at 1, the snapshot\'s next value was 501' in details


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_unstable_text_forms_hash_alike_under_different_settings(
    source_db: SourceDatabase, tmp_path: Path, mode: str
) -> None:
    source_db.execute(
        """
        CREATE EXTENSION citext;
        CREATE TYPE colour AS ENUM ('red', 'green');
        CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
        CREATE TYPE pair AS (label text, weight float8);
        CREATE TABLE awkward (
            id integer PRIMARY KEY, f4 float4, f8 float8, n numeric, at timestamptz, span interval,
            j json, jb jsonb, arr text[], raw bytea, c colour, d positive, p pair, r tstzrange,
            ci citext, coll text COLLATE "C", money_value money, day date);
        INSERT INTO awkward
        SELECT g * 37, g / 3.0, pi() * g, g / 7.0, timestamptz '2024-03-31 01:30+02' + g * interval '1 hour',
               g * interval '1 day 3 hours 4.5 seconds', '{"b": 1,  "a": [1, 2]}', '{"b": 1,  "a": [1, 2]}',
               ARRAY['x', NULL, 'y,z', ''], decode('00ff' || lpad(to_hex(g), 4, '0'), 'hex'), 'green', g + 0.5,
               ROW('a "quoted", label', g / 9.0)::pair,
               tstzrange(timestamptz '2024-01-01 00:00+05', timestamptz '2024-01-02 00:00+05'),
               'MiXeD', 'ß' || g, g * 1.25, date '2024-02-29' + g
        FROM generate_series(1, 300) g;
        CREATE TABLE tagged (tag text PRIMARY KEY, n integer);
        INSERT INTO tagged SELECT 'tag ' || g, g FROM generate_series(1, 300) g;
        """
    )
    # production sessions see other text forms than the sandbox's defaults
    source_db.execute(
        f"""ALTER DATABASE "{source_db.dbname}" SET TimeZone = 'Asia/Kolkata';
            ALTER DATABASE "{source_db.dbname}" SET extra_float_digits = 0;
            ALTER DATABASE "{source_db.dbname}" SET DateStyle = 'SQL, DMY';
            ALTER DATABASE "{source_db.dbname}" SET IntervalStyle = 'sql_standard';
            ALTER DATABASE "{source_db.dbname}" SET bytea_output = 'escape';
            ALTER DATABASE "{source_db.dbname}" SET search_path = 'nowhere';"""
    )
    config = source_db.config(
        tmp_path / "repo", verify={"content": mode, "content_sample_percent": 40}, dump={"format": "custom"}
    )
    report = commands.run(config)
    assert report.exit_code == 0, [(r.name, r.summary, r.details) for r in report.results if r.status != Status.OK]
    assert result(report, "contents").status is Status.OK
    _, manifest = newest_manifest(tmp_path / "repo")
    checksums = contents.SECTION.of(manifest)
    assert checksums is not None
    awkward = next(entry for entry in checksums if entry.table == "awkward")
    assert awkward.rows == 300
    if mode == "sample":
        assert awkward.mode == "sample" and awkward.key == ["id"] and awkward.bucket == "modulo"
        assert 60 < awkward.hashed_rows < 180
        tagged = next(entry for entry in checksums if entry.table == "tagged")
        assert tagged.bucket == "md5" and 60 < tagged.hashed_rows < 180
        cities = next(entry for entry in checksums if entry.table == "cities")
        assert cities.mode == "whole" and cities.hashed_rows == 10  # no primary key: hashed whole
    else:
        assert awkward.mode == "full" and awkward.hashed_rows == 300


def test_older_manifest_without_checksums_still_verifies(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    _, manifest = newest_manifest(tmp_path / "repo")
    data = manifest.model_dump(mode="json", by_alias=True)
    del data["contents"], data["sequences"]
    old = Manifest.model_validate(data)
    old.write(tmp_path / "repo" / f"{manifest.name}.json")
    assert contents.SECTION.of(read_manifest(tmp_path / "repo" / f"{manifest.name}.json")) is None
    report = commands.check(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results]
    assert "contents not compared" in result(report, "contents").summary


def test_selftest_catches_every_damage_it_does(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("CREATE INDEX cities_population ON cities (population)")
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    outcome = run_selftest(config)
    result = outcome.result()
    assert outcome.passed, result.details
    assert result.status is Status.OK
    assert {damage.check for damage in outcome.damages} == {
        "row_counts",
        "contents",
        "sequences",
        "schema",
        "materialized_views",  # city_count emptied
        "constraints",  # a primary key's index marked invalid
        "database_properties",  # a database setting added (the database has none)
        "table_settings",  # a fillfactor set
    }
    assert all(damage.caught for damage in outcome.damages)


def test_selftest_without_a_backup_says_so(source_db: SourceDatabase, tmp_path: Path) -> None:
    with pytest.raises(BackupNotFound, match="no backup with a manifest"):
        run_selftest(source_db.config(tmp_path / "repo"))


def test_older_manifest_with_md5_checksums_is_recomputed_with_md5(source_db: SourceDatabase, tmp_path: Path) -> None:
    """Backups made before the switch to hashtextextended recorded md5-based sums without saying so:
    they still verify (OK when the contents match, CRITICAL when they do not)."""
    config = source_db.config(tmp_path / "repo", verify={"content": "full"})
    assert commands.run(config).exit_code == 0
    _, manifest = newest_manifest(tmp_path / "repo")
    checksums = contents.SECTION.of(manifest)
    assert checksums is not None and {entry.row_hash for entry in checksums} == {"hashtext"}
    specs = {(entry.schema_name, entry.table): contents.TableSpec(entry.mode, row_hash="md5") for entry in checksums}
    md5_sums = contents.fingerprint_tables(specs, lambda: source_db.cluster.connect(source_db.dbname))
    data = manifest.model_dump(mode="json", by_alias=True)
    for entry in data["contents"]:
        del entry["row_hash"]  # as an older agent wrote it
        entry["checksum"] = md5_sums[(entry["schema"], entry["table"])].checksum
    Manifest.model_validate(data).write(tmp_path / "repo" / f"{manifest.name}.json")
    report = commands.check(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results if r.status != Status.OK]
    assert result(report, "contents").status is Status.OK

    data["contents"][0]["checksum"] = checksums[0].checksum  # a hashtext sum read as md5: differs
    Manifest.model_validate(data).write(tmp_path / "repo" / f"{manifest.name}.json")
    report = commands.check(config)
    assert result(report, "contents").status is Status.CRITICAL


def test_an_index_over_a_function_reading_an_unqualified_table_does_not_stop_the_dump(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    """Planning the checksum query inlines the index's SQL function, which names `lookup` without its
    schema: it must resolve with production's own search_path, as the application's queries do."""
    source_db.execute(
        """
        CREATE TABLE lookup (k integer PRIMARY KEY);
        INSERT INTO lookup SELECT generate_series(1, 10);
        CREATE FUNCTION bucket_of(integer) RETURNS integer LANGUAGE sql IMMUTABLE
            AS 'SELECT count(*)::integer FROM lookup WHERE k <= $1';
        CREATE TABLE tagged_rows (id integer);
        INSERT INTO tagged_rows SELECT generate_series(1, 100);
        CREATE INDEX tagged_rows_bucket ON tagged_rows (bucket_of(id));
        """
    )
    report = commands.run(source_db.config(tmp_path / "repo", verify={"content": "full"}))
    assert report.dump is not None and report.dump.ok, report.dump
    _, manifest = newest_manifest(tmp_path / "repo")
    checksums = contents.SECTION.of(manifest)
    assert checksums is not None
    tagged = next(entry for entry in checksums if entry.table == "tagged_rows")
    assert tagged.rows == 100 and tagged.search_path == "public"
