"""A REFRESH that failed only because the sandbox reaches no other server is named "not verifiable in the
sandbox", never a failed restore; any other failure still is one."""

from __future__ import annotations

from verifier.postgres.restore.restore_errors import failures, outside_need, unverifiable_views
from verifier.postgres.restore.run import parse_pg_restore_errors
from verifier.report import RestoreIssue

# pg_restore --verbose in a sandbox without network, for a view over a foreign table and one whose
# function calls dblink, next to a table that really failed
STDERR = """\
pg_restore: from TOC entry 3401; 0 16433 MATERIALIZED VIEW DATA remote_count app
pg_restore: error: could not execute query: ERROR:  could not connect to server "remote"
DETAIL:  connection to server at "10.0.0.7", port 5432 failed: Network is unreachable
\tIs the server running on that host and accepting TCP/IP connections?
Command was: REFRESH MATERIALIZED VIEW public.remote_count;
pg_restore: from TOC entry 3402; 0 16437 MATERIALIZED VIEW DATA audit_feed app
pg_restore: error: could not execute query: ERROR:  could not establish connection
DETAIL:  connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory
Command was: REFRESH MATERIALIZED VIEW public.audit_feed;
pg_restore: from TOC entry 215; 1259 16390 TABLE orders app
pg_restore: error: could not execute query: ERROR:  type "citext" does not exist
Command was: CREATE TABLE public.orders (...);
"""


def test_refreshes_that_needed_a_server_outside_are_not_failures() -> None:
    issues = parse_pg_restore_errors(STDERR)

    assert unverifiable_views(issues) == {
        "remote_count": "foreign server remote",
        "audit_feed": "a connection out of the sandbox",
    }
    assert [issue.object for issue in failures(issues)] == ["TABLE orders"]


def test_a_connection_failure_outside_a_materialized_view_is_still_a_failure() -> None:
    issue = RestoreIssue("SQL before the first object", 'could not connect to server "remote"')
    assert outside_need(issue) == "foreign server remote"
    assert unverifiable_views([issue]) == {}
    assert failures([issue]) == [issue]


def test_a_view_that_failed_for_another_reason_is_a_failure() -> None:
    issue = RestoreIssue("MATERIALIZED VIEW DATA totals", "division by zero", 3400)
    assert outside_need(issue) is None
    assert failures([issue]) == [issue]


def test_a_plain_dumps_refresh_is_named_by_its_section() -> None:
    issue = RestoreIssue(
        "MATERIALIZED VIEW DATA public.leaky (line 4104)",
        'ERROR: could not connect to server "remote" DETAIL: connection to server failed: Connection refused',
    )
    assert unverifiable_views([issue]) == {"public.leaky": "foreign server remote"}
    assert failures([issue]) == []
