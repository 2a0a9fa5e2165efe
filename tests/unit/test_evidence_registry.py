"""The one list of kinds of evidence (issue 23): the verdict's order and the self-test's judgement come from
it, and every kind's checks are built-in checks."""

from __future__ import annotations

from verifier.findings import Findings
from verifier.postgres import evidence
from verifier.postgres.evidence.damage import Damage
from verifier.report import Verification


def test_the_kinds_name_the_proof_checks_in_the_verdicts_order() -> None:
    assert evidence.CHECKS == (
        "row_counts", "schema", "contents", "sequences", "table_settings", "large_objects", "materialized_views",
        "constraints", "database_properties", "replication",
    )  # fmt: skip


def test_findings_are_put_in_the_kinds_order() -> None:
    verification = Verification("b", exact=True, restored=True, sandbox="local")
    verification.findings = {"database_properties": Findings(), "contents": Findings(), "schema": Findings()}
    evidence.in_order(verification)
    assert list(verification.findings) == ["schema", "contents", "database_properties"]


def test_each_kind_judges_whether_its_damage_was_caught() -> None:
    verification = Verification("b", exact=True, restored=True, sandbox="local")
    verification.findings = {
        "row_counts": Findings(["public.orders: restored 9 rows, the snapshot had 10"]),
        "contents": Findings(["public.items: restored contents differ from the snapshot"]),
        "sequences": Findings(["sequence public.orders_id_seq restarts at 1, the snapshot's next value was 3"]),
        "schema": Findings(["missing: index public.orders_created"]),
        "constraints": Findings(["constraint public.t.t_check is not valid after the restore"]),
    }
    caught = [
        Damage("deleted a row", "row_counts", "public.orders"),
        Damage("changed a value", "contents", "public.items"),
        Damage("reset a sequence", "sequences", "public.orders_id_seq"),
        Damage("dropped an index", "schema", "missing: index public.orders_created"),
        Damage("made a constraint NOT VALID", "constraints", "constraint public.t.t_check"),
    ]
    assert [evidence.caught(damage, verification) for damage in caught] == [True] * len(caught)
    missed = [
        Damage("deleted a row", "row_counts", "public.items"),
        Damage("changed a value", "contents", "public.item"),  # a prefix of another table's name
        Damage("reset a sequence", "sequences", "public.orders_id"),
        Damage("dropped an index", "schema", "index public.orders_created"),  # a part of a line is not enough
        Damage("emptied a view", "materialized_views", "materialized view public.v"),
    ]
    assert [evidence.caught(damage, verification) for damage in missed] == [False] * len(missed)


def test_the_selftest_damages_every_kind_it_knows_once() -> None:
    steps = [step for kind in evidence.KINDS for step in kind.damages]
    assert sorted(steps, key=id) == sorted(evidence.SELFTEST_DAMAGES, key=id)
    assert len(set(evidence.SELFTEST_DAMAGES)) == len(evidence.SELFTEST_DAMAGES)
    assert {kind.name for kind in evidence.KINDS if not kind.damages} == set()
