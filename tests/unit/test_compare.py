"""Row-count comparison rules: exact against the snapshot, tolerant against production now."""

from __future__ import annotations

from verifier.config import DriftConfig
from verifier.postgres.evidence.row_counts import compare_exact, compare_legacy, within_drift
from verifier.report import Status

DRIFT = DriftConfig(max_percent=5.0, max_rows=0)


def by_name(comparisons):  # type: ignore[no-untyped-def]
    return {c.qualified_name: c for c in comparisons}


def test_exact_match_is_ok_and_production_moving_on_is_a_drift_sentence() -> None:
    result = by_name(compare_exact({("public", "t"): 100}, {("public", "t"): 100}, {("public", "t"): 103}, DRIFT))
    assert result["public.t"].status is Status.OK and result["public.t"].note == ""
    assert not result["public.t"].drifted
    assert result["public.t"].drift_note == "production now has 103 rows, 3 more than the backup's 100"


def test_one_row_missing_after_restore_is_critical_and_names_both_numbers() -> None:
    result = by_name(compare_exact({("s", "t"): 1000}, {("s", "t"): 999}, None, DRIFT))
    assert result["s.t"].status is Status.CRITICAL
    assert result["s.t"].note == "restored 999 rows, the snapshot had 1,000"


def test_table_missing_after_restore_or_not_in_the_snapshot_is_critical() -> None:
    result = by_name(compare_exact({("s", "gone"): 5}, {("s", "extra"): 1}, None, DRIFT))
    assert result["s.gone"].status is Status.CRITICAL
    assert "missing after the restore" in result["s.gone"].note
    assert result["s.extra"].status is Status.CRITICAL


def test_production_beyond_tolerance_is_drift_never_the_verdict() -> None:
    result = by_name(
        compare_exact(
            {("s", "t"): 100, ("s", "gone"): 3},
            {("s", "t"): 100, ("s", "gone"): 3},
            {("s", "t"): 20},
            DRIFT,
            estimated=True,
        )
    )
    assert result["s.t"].status is Status.OK and result["s.t"].drifted
    assert result["s.t"].drift_note == "production now has about 20 rows, 80 fewer than the backup's 100"
    assert result["s.gone"].status is Status.OK and result["s.gone"].drifted
    assert result["s.gone"].drift_note == "no longer in production"


def test_drift_tolerance_takes_the_larger_of_rows_and_percent() -> None:
    assert within_drift(100, 105, DRIFT)
    assert not within_drift(100, 106, DRIFT)
    assert within_drift(10, 60, DriftConfig(max_percent=5.0, max_rows=50))


def test_legacy_table_missing_or_empty_is_critical_other_drift_a_warning() -> None:
    restored = {("p", "empty"): 0, ("p", "old"): 50, ("p", "fine"): 100}
    production = {("p", "empty"): 10, ("p", "old"): 100, ("p", "fine"): 101, ("p", "new"): 7}
    result = by_name(compare_legacy(restored, production, DRIFT))
    assert result["p.empty"].status is Status.CRITICAL
    assert result["p.new"].status is Status.CRITICAL
    assert result["p.old"].status is Status.WARNING
    assert result["p.fine"].status is Status.OK
    assert all(c.snapshot_rows is None for c in result.values())


def test_extension_versions_are_compared_apart_from_the_schema() -> None:
    from verifier.postgres.evidence.fingerprint import extension_differences

    assert extension_differences({"pgcrypto": "1.3", "citext": "1.6"}, {"pgcrypto": "1.3", "citext": "1.5"}) == [
        "extension citext is 1.6 in production but 1.5 in the sandbox (the sandbox's packages provide another version)"
    ]


def test_pg_dump_failures_say_what_to_do() -> None:
    from verifier.postgres.backup.dump_errors import pg_dump_error

    lock = (
        "pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout\n"
        "pg_dump: detail: Query was: LOCK TABLE app.payments IN ACCESS SHARE MODE\n"
    )
    assert "could not lock table app.payments within dump.lock_wait_timeout" in pg_dump_error(lock)
    standby = (
        'pg_dump: error: Dumping the contents of table "orders" failed: PQgetResult() failed.\n'
        "pg_dump: detail: Error message from server: ERROR:  canceling statement due to conflict with recovery\n"
    )
    assert "hot_standby_feedback" in pg_dump_error(standby)
