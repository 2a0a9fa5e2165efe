"""The pure comparisons of large objects, materialized views and constraints with the snapshot."""

from __future__ import annotations

from verifier.postgres.evidence import constraints, objects
from verifier.postgres.evidence.objects import LargeObjects, MaterializedView


def view(name: str, *, populated: bool = True, rows: int | None = 10, volatile: bool = False) -> MaterializedView:
    return MaterializedView(schema="app", name=name, populated=populated, rows=rows, volatile=volatile)


def test_view_counts_differing_are_the_verdict_unless_its_query_reads_the_clock() -> None:
    expected = [view("totals"), view("recent", volatile=True), view("gone"), view("unfilled", populated=False)]
    restored = {
        "app.totals": view("totals", rows=9),
        "app.recent": view("recent", rows=12),
        "app.unfilled": view("unfilled", populated=False, rows=None),
    }
    problems, notes = objects.compare_views(expected, restored)
    assert problems == [
        "materialized view app.totals holds 9 rows, its query returned 10 in the snapshot",
        "materialized view app.gone is missing after the restore",
    ]
    assert notes == [
        "materialized view app.recent holds 12 rows, its query returned 10 in the snapshot "
        "(its query reads the clock or randomness: not the verdict)",
        "materialized view app.unfilled was not populated in production",
    ]


def test_volatile_text_is_recognised() -> None:
    assert objects._VOLATILE_TEXT.search(" SELECT id FROM t WHERE at > (now() - '1 day'::interval);")
    assert objects._VOLATILE_TEXT.search(" SELECT id FROM t WHERE day = CURRENT_DATE;")
    assert not objects._VOLATILE_TEXT.search(" SELECT known_now, id FROM t;")


def large(count: int, checksum: str, hashes: dict[str, str] | None = None) -> LargeObjects:
    return LargeObjects(count=count, hashed=count, checksum=checksum, hashes=hashes)


def test_many_large_objects_compare_by_checksum_and_count() -> None:
    assert objects.compare_large_objects(large(20_000, "ab"), large(20_000, "ab")) == ([], [])
    problems, _ = objects.compare_large_objects(large(20_000, "ab"), large(20_000, "cd"))
    assert problems == ["the contents of the 20,000 large objects differ from the snapshot"]
    problems, _ = objects.compare_large_objects(large(20_000, "ab"), large(19_999, "cd"))
    assert problems[0] == "19,999 large objects restored, 20,000 in the snapshot"


def test_few_large_objects_are_named() -> None:
    expected = large(3, "x", {"1": "a", "2": "b", "3": "c"})
    problems, notes = objects.compare_large_objects(expected, large(3, "y", {"1": "a", "2": "z", "4": "d"}))
    assert problems == [
        "large object 3 is missing after the restore",
        "large object 2 differs from the snapshot",
        "large object 4 was not in the snapshot",
    ]
    assert notes == []


def test_constraints_missing_or_no_longer_valid_are_problems_not_valid_ones_notes() -> None:
    expected = {"constraint a.t.fk": True, "constraint a.t.check": True, "constraint a.t.old": False}
    restored = {"constraint a.t.fk": False, "constraint a.t.old": False}
    problems, notes = constraints.compare(expected, restored)
    assert problems == [
        "constraint a.t.check is missing after the restore",
        "constraint a.t.fk is NOT VALID after the restore (valid in production)",
    ]
    assert notes == ["constraint a.t.old is NOT VALID in production (rows before it was added are unchecked)"]


def test_large_objects_the_sandbox_role_may_not_read_are_named_not_missing() -> None:
    """A server sandbox whose role is no superuser may not read objects restored with their owners."""
    expected = large(2, "x", {"1": "a", "2": "b"})
    restored = LargeObjects(count=2, hashed=1, checksum="y", hashes={"1": "a"}, unreadable=[2], unreadable_count=1)
    problems, notes = objects.compare_large_objects(expected, restored)
    assert problems == []
    assert notes == ["1 restored large object(s) not readable by the sandbox's role"]
