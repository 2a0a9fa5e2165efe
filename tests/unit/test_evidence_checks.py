"""Each check of a kind of evidence, on plain data (issue 23): a Verification holding findings, as the proof
leaves it, and the status and summary the check makes of it. No database: the findings are written here as
the comparison writes them (its own tests are test_content_compare, test_object_compare, ...)."""

from __future__ import annotations

from pg_backup_verifier_checks import contents, database, objects, row_counts, schema, sequences

from tests.support.check_context import judged, proof_context, restored
from verifier.findings import Findings
from verifier.report import Status, TableComparison, Verification


def test_no_restored_copy_no_evidence_checks() -> None:
    nothing = Verification("b", exact=True, restored=False, sandbox="local", error="pg_restore failed")
    for check in (
        contents.check, sequences.check, schema.check, objects.large_objects, objects.materialized_views,
        objects.constraints, database.database_properties, database.replication, row_counts.check,
    ):  # fmt: skip
        assert check(proof_context(nothing)) is None, check


# contents


def test_contents_match() -> None:
    found = Findings(compared=3, measures={"modes": "full/sample", "production_seconds": 1.25, "restored_seconds": 0.5})
    assert judged(contents.check(proof_context(restored(contents=found)))) == (
        Status.OK,
        "contents of all 3 tables match the snapshot (full/sample; hashing took 1.2s on production, 0.5s restored)",
    )


def test_contents_differ() -> None:
    lines = ["public.orders: restored contents differ from the snapshot", "public.items: 2 rows fewer"]
    result = contents.check(proof_context(restored(contents=Findings(lines, compared=5))))
    assert judged(result) == (Status.CRITICAL, f"2 tables differ: {lines[0]}")
    assert result is not None and result.details == tuple(lines) and result.metrics["differing"] == 2


def test_contents_not_compared() -> None:
    found = Findings(not_compared="no checksums in the manifest (verify.content off, or an older agent)")
    assert judged(contents.check(proof_context(restored(contents=found)))) == (
        Status.OK,
        "contents not compared: no checksums in the manifest (verify.content off, or an older agent)",
    )


# sequences

BEHIND = "sequence public.users_id_seq restarts at 1, the snapshot's next value was 3"
PRODUCTION = "production's sequence public.users_id_seq gives 1 while public.users.id holds 2: inserts fail there too"


def test_sequences_ahead() -> None:
    assert judged(sequences.check(proof_context(restored(sequences=Findings(compared=4))))) == (
        Status.OK,
        "all 4 sequences restored at or after the snapshot's values",
    )
    legacy = restored(exact=False, sequences=Findings(compared=2))
    assert judged(sequences.check(proof_context(legacy))) == (
        Status.OK,
        "all 2 owned sequences restored ahead of their columns",
    )


def test_sequences_behind_fail_and_productions_own_warns() -> None:
    assert judged(sequences.check(proof_context(restored(sequences=Findings([BEHIND], [PRODUCTION], compared=2))))) == (
        Status.CRITICAL,
        BEHIND,
    )
    assert judged(sequences.check(proof_context(restored(sequences=Findings(warnings=[PRODUCTION], compared=2))))) == (
        Status.WARNING,
        PRODUCTION,
    )


def test_no_sequence_judged_no_result() -> None:
    assert sequences.check(proof_context(restored())) is None


# schema

DIFFERENCE = "constraint public.subscriptions.subscriptions_state_check: definition differs"
EXTENSION = "extension citext is 1.5 in the sandbox, 1.6 in production"


def test_schema_matches() -> None:
    assert judged(schema.check(proof_context(restored(schema=Findings())))) == (
        Status.OK,
        "schema matches the snapshot",
    )


def test_schema_differs_from_the_snapshot() -> None:
    result = schema.check(proof_context(restored(schema=Findings([DIFFERENCE], [EXTENSION]))))
    assert judged(result) == (Status.CRITICAL, f"1 schema difference from the snapshot: {DIFFERENCE}")
    assert result is not None and result.details == (DIFFERENCE, EXTENSION)


def test_schema_differs_from_production_now_warns() -> None:
    legacy = restored(exact=False, schema=Findings([DIFFERENCE, DIFFERENCE], verdict=False))
    legacy.tables = [TableComparison("public", "orders", None, 3, 3, Status.OK)]
    assert judged(schema.check(proof_context(legacy))) == (
        Status.WARNING,
        f"2 schema differences from production now: {DIFFERENCE}",
    )


def test_schema_extension_version_warns() -> None:
    assert judged(schema.check(proof_context(restored(schema=Findings(warnings=[EXTENSION]))))) == (
        Status.WARNING,
        f"schema matches the snapshot, but {EXTENSION}",
    )


def test_schema_not_compared() -> None:
    found = Findings(not_compared="the backup was made by an older version of the agent")
    assert judged(schema.check(proof_context(restored(schema=found)))) == (
        Status.OK,
        "schema not compared: the backup was made by an older version of the agent",
    )


# large objects, materialized views, constraints


def test_large_objects() -> None:
    assert judged(objects.large_objects(proof_context(restored(large_objects=Findings(compared=12))))) == (
        Status.OK,
        "all 12 large objects match the snapshot",
    )
    missing = Findings(["large object 16401 is missing"], compared=12)
    assert judged(objects.large_objects(proof_context(restored(large_objects=missing)))) == (
        Status.CRITICAL,
        "large object 16401 is missing",
    )
    assert objects.large_objects(proof_context(restored(large_objects=Findings()))) is None  # none in the database


def test_materialized_views() -> None:
    warning = "materialized view public.remote_totals: not verifiable in the sandbox: needs foreign server remote"
    views = Findings(warnings=[warning], compared=3)
    assert judged(objects.materialized_views(proof_context(restored(materialized_views=views)))) == (
        Status.WARNING,
        warning,
    )
    two = Findings(["materialized view public.a is not populated", "materialized view public.b holds 2 rows"])
    assert judged(objects.materialized_views(proof_context(restored(materialized_views=two)))) == (
        Status.CRITICAL,
        "2 problems: materialized view public.a is not populated",
    )
    older = Findings(not_compared="the backup was made by an older version of the agent")
    assert judged(objects.materialized_views(proof_context(restored(materialized_views=older)))) == (
        Status.OK,
        "materialized views not compared: the backup was made by an older version of the agent",
    )


def test_constraints() -> None:
    note = "constraint public.t.t_check is NOT VALID in production"
    assert judged(objects.constraints(proof_context(restored(constraints=Findings(notes=[note], compared=9))))) == (
        Status.OK,
        f"all 9 constraints are present and valid, foreign keys hold; {note}",
    )
    broken = "constraint public.refunds.refunds_payment_id_fkey is broken by 1 row(s) of public.refunds"
    assert judged(objects.constraints(proof_context(restored(constraints=Findings([broken], compared=9))))) == (
        Status.CRITICAL,
        broken,
    )
    legacy = restored(exact=False, constraints=Findings(not_compared="no manifest"))
    assert judged(objects.constraints(proof_context(legacy))) == (
        Status.OK,
        "foreign keys hold, no index invalid (constraints not compared: no manifest)",
    )


# database properties, replication


def test_database_properties() -> None:
    assert judged(database.database_properties(proof_context(restored(database_properties=Findings(compared=5))))) == (
        Status.OK,
        "all 5 database properties restored as in the snapshot",
    )
    lost = "database setting work_mem = 64MB is missing after the restore"
    legacy = restored(exact=False, database_properties=Findings([lost], compared=5))
    assert judged(database.database_properties(proof_context(legacy))) == (
        Status.CRITICAL,
        f"{lost} (compared with production now: the backup has no manifest)",
    )


def test_replication() -> None:
    left_out = "subscription app_sub is not in the backup: pg_dump needs a superuser to dump subscriptions"
    assert judged(database.replication(proof_context(restored(replication=Findings(warnings=[left_out]))))) == (
        Status.WARNING,
        left_out,
    )
    assert judged(database.replication(proof_context(restored(replication=Findings(compared=2))))) == (
        Status.OK,
        "all 2 publications and subscriptions restored as in the snapshot",
    )
    unread = Findings(not_compared="production's database properties could not be read")
    assert judged(database.replication(proof_context(restored(replication=unread)))) == (
        Status.OK,
        "publications and subscriptions not compared: production's database properties could not be read",
    )
    assert database.replication(proof_context(restored())) is None  # the database has none


# row counts (their findings are the tables)


def test_row_counts() -> None:
    same = restored()
    same.tables = [TableComparison("public", "orders", 10, 10, 10, Status.OK)]
    assert judged(row_counts.check(proof_context(same))) == (Status.OK, "the 1 table matches the snapshot exactly")
    differ = restored()
    differ.tables = [
        TableComparison("public", "orders", 10, 9, 10, Status.CRITICAL, note="restored 9, snapshot 10"),
        TableComparison("public", "items", 5, 5, 5, Status.OK),
    ]
    assert judged(row_counts.check(proof_context(differ))) == (
        Status.CRITICAL,
        "public.orders: restored 9, snapshot 10",
    )
