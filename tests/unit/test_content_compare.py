"""The pure comparisons behind the contents and sequences checks."""

from __future__ import annotations

from verifier.pipeline.selftest import SelfTest
from verifier.postgres.evidence.contents import TableChecksum, TableContent, TableSpec, differences
from verifier.postgres.evidence.damage import Damage
from verifier.postgres.evidence.sequences import SequenceState, compare
from verifier.report import Status


def entry(table: str, checksum: str, hashed: int = 10, mode: str = "full") -> TableChecksum:
    return TableChecksum.model_validate(
        {
            "schema": "public",
            "table": table,
            "mode": mode,
            "rows": 10,
            "hashed_rows": hashed,
            "checksum": checksum,
            "seconds": 0.1,
            "sample_percent": 5 if mode == "sample" else 100,
        }
    )


def restored(checksum: str, hashed: int = 10, mode: str = "full") -> TableContent:
    return TableContent(
        TableSpec(mode, ("id",) if mode == "sample" else (), 5 if mode == "sample" else 100),  # type: ignore[arg-type]
        10,
        hashed,
        checksum,
        0.1,
    )


def test_a_differing_checksum_names_the_table_and_the_sample() -> None:
    expected = [entry("same", "a"), entry("Changed", "b", mode="sample"), entry("gone", "c")]
    found = {("public", "same"): restored("a"), ("public", "Changed"): restored("x", mode="sample")}
    assert differences(expected, found) == [
        'public."Changed": restored contents differ from the snapshot (5% sample by primary key)'
    ]


def test_fewer_rows_hashed_differ_even_with_an_equal_sum() -> None:
    assert differences([entry("t", "0")], {("public", "t"): restored("0", hashed=9)}) != []


def test_a_sequence_behind_the_snapshot_is_named_one_ahead_is_concurrent_writes() -> None:
    states = [
        SequenceState("public", "ahead", 120, 1),
        SequenceState("public", "behind", 1, 1),
        SequenceState("public", "down", -50, -1),
    ]
    problems = compare({"public.ahead": 101, "public.behind": 501, "public.down": -40, "public.gone": 3}, states)
    assert problems == [
        "sequence public.behind restarts at 1, the snapshot's next value was 501",
        "sequence public.gone is missing after the restore",
    ]


def test_a_missed_damage_makes_the_selftest_critical() -> None:
    outcome = SelfTest(
        "b",
        [
            Damage("deleted one row of t", "row_counts", "t", caught=True),
            Damage("changed t2.x in one row", "contents", "t2"),
        ],
    )
    result = outcome.result()
    assert not outcome.passed and result.status is Status.CRITICAL
    assert result.summary == "1 of 2 damages went unnoticed: changed t2.x in one row"
    assert SelfTest("b").result().status is Status.CRITICAL  # nothing damaged proves nothing
