"""How schema differences are named once the sandbox has said which printed definitions parse to the
same thing (the parsing itself runs against real PostgreSQL in tests/integration/test_schema_roundtrip.py)."""

from __future__ import annotations

from verifier.postgres.evidence.fingerprint import object_hash, schema_differences


def test_a_definition_that_parses_to_the_same_thing_is_no_difference() -> None:
    expected = {"constraint app.t.t_check": "1", "index app.t_idx": "2", "table app.t": "3", "view app.v": "4"}
    actual = {"constraint app.t.t_check": "9", "index app.t_idx": "8", "table app.t": "3", "view app.w": "4"}
    assert schema_differences(expected, actual, frozenset({"constraint app.t.t_check"})) == [
        "missing: view app.v",
        "unexpected: view app.w",
        "differs: index app.t_idx",
    ]


def test_a_parsed_again_key_never_hides_a_missing_or_unexpected_object() -> None:
    expected = {"constraint app.t.t_check": "1"}
    assert schema_differences(expected, {}, frozenset({"constraint app.t.t_check"})) == [
        "missing: constraint app.t.t_check"
    ]


def test_an_object_hash_is_the_hash_of_its_definition_text() -> None:
    assert object_hash("CHECK ((price >= (0)::numeric))") == object_hash("CHECK ((price >= (0)::numeric))")
    assert len(object_hash("x")) == 16 and object_hash("x") != object_hash("y")
