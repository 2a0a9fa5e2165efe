"""The pure parts of the database-properties evidence: what pg_restore's `--create` output carries and
how it is mapped onto another database's name, the SQL a plain dump carries, where it goes in the
stream, and the comparison's words."""

from __future__ import annotations

from verifier.postgres.evidence import database_properties, database_sql
from verifier.postgres.evidence.database_properties import DatabaseProperties, Publication

# pg_restore --create --schema-only --schema=<none> of a PostgreSQL 15 archive (its SET preamble shortened)
PG_RESTORE_OUTPUT = """--
-- PostgreSQL database dump
--

\\restrict KEY
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: Shop DB; Type: DATABASE; Schema: -; Owner: app
--

CREATE DATABASE "Shop DB" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';


ALTER DATABASE "Shop DB" OWNER TO app;

\\unrestrict KEY
\\connect -reuse-previous=on "dbname='Shop DB'"
\\restrict KEY

--
-- Name: DATABASE "Shop DB"; Type: COMMENT; Schema: -; Owner: app
--

COMMENT ON DATABASE "Shop DB" IS 'orders; and
ALTER DATABASE "Shop DB" SET work_mem TO ''1GB''';


--
-- Name: Shop DB; Type: DATABASE PROPERTIES; Schema: -; Owner: app
--

ALTER DATABASE "Shop DB" SET search_path TO 'app', 'public';
ALTER DATABASE "Shop DB" SET session_preload_libraries TO '/tmp/evil';
ALTER ROLE ro IN DATABASE "Shop DB" SET work_mem TO '8MB';
ALTER DATABASE other SET search_path TO 'x';

--
-- Name: DATABASE "Shop DB"; Type: ACL; Schema: -; Owner: app
--

REVOKE CONNECT,TEMPORARY ON DATABASE "Shop DB" FROM PUBLIC;
SET SESSION AUTHORIZATION boss;
GRANT CONNECT ON DATABASE "Shop DB" TO ro;
RESET SESSION AUTHORIZATION;

--
-- PostgreSQL database dump complete
--

\\unrestrict KEY
"""


def _properties(**changes: object) -> DatabaseProperties:
    base = DatabaseProperties(
        owner="app",
        settings=["search_path=app, public", "statement_timeout=25s"],
        role_settings={"ro": ["work_mem=8MB"]},
        grants=["app:CONNECT", "app:CREATE", "app:TEMPORARY", "ro:CONNECT"],
        default_grants=False,
        comment="orders",
        publications=[Publication(name="pub", actions="insert", tables=["app.orders"])],
        subscriptions=["sub"],
    )
    return base.model_copy(update=changes)


def test_only_the_statements_carrying_the_database_properties_are_kept_under_the_restored_name() -> None:
    carried = database_sql.carried_statements(PG_RESTORE_OUTPUT)
    as_text = [statement.composed("restored").as_string(None) for statement in carried]
    assert as_text == [
        'ALTER DATABASE "restored" OWNER TO app',
        "COMMENT ON DATABASE \"restored\" IS 'orders; and\nALTER DATABASE \"Shop DB\" SET work_mem TO ''1GB'''",
        "ALTER DATABASE \"restored\" SET search_path TO 'app', 'public'",
        "ALTER ROLE ro IN DATABASE \"restored\" SET work_mem TO '8MB'",
        'REVOKE CONNECT,TEMPORARY ON DATABASE "restored" FROM PUBLIC',
        "SET SESSION AUTHORIZATION boss",
        'GRANT CONNECT ON DATABASE "restored" TO ro',
        "RESET SESSION AUTHORIZATION",
    ]  # neither CREATE DATABASE, nor \connect, a preload library, another database or the SET preamble


def test_plain_section_names_no_database_and_turns_a_refusal_into_a_warning() -> None:
    section = database_sql.plain_section(_properties(comment="it's 100% $pgbv$ ours")).decode()
    assert "Shop" not in section and section.count("DO $") == 1 + 2 + 1 + 2 + 4 + 1
    assert "pg_catalog.current_database()" in section
    assert "EXCEPTION WHEN OTHERS THEN RAISE WARNING" in section
    assert "'ALTER DATABASE %1$I SET \"search_path\" TO ''app'', ''public'''" in section
    assert "'ALTER ROLE \"ro\" IN DATABASE %1$I SET \"work_mem\" TO ''8MB'''" in section
    assert "COMMENT ON DATABASE %1$I IS ''it''''s 100%% $pgbv$ ours''" in section
    assert "DO $pgbvx$" in section  # the body holds $pgbv$: another tag


def test_default_privileges_write_no_grant() -> None:
    section = database_sql.plain_section(_properties(default_grants=True)).decode()
    assert "GRANT" not in section and "REVOKE" not in section


def test_section_goes_before_the_last_trailer_inside_the_frame() -> None:
    dump = b"COPY t FROM stdin;\n--\n-- PostgreSQL database dump complete\n\\.\n" + b"x" * 200_000
    dump += b"\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict KEY\n"
    chunks = [dump[start : start + 7000] for start in range(0, len(dump), 7000)]
    written = b"".join(database_sql.insert_before_trailer(chunks, b"SECTION\n"))
    assert written == dump.replace(
        b"x\n--\n-- PostgreSQL database dump complete\n--",
        b"x\nSECTION\n--\n-- Post" + b"greSQL database dump complete\n--",
    )
    assert b"".join(database_sql.insert_before_trailer([b"cut dump"], b"SECTION\n")) == b"cut dump"


def test_list_settings_are_split_as_pg_dump_does() -> None:
    assert database_sql._split_list('app, "My Schema", "a""b"') == ["app", "My Schema", 'a"b']


def test_matching_properties_find_nothing() -> None:
    findings = database_properties.compare(_properties(), _properties())
    assert not any(findings.problems.values()) and not any(findings.warnings.values())
    assert findings.compared == {"database_properties": 2 + 1 + 4 + 1 + 1, "replication": 2}


def test_each_difference_is_named() -> None:
    restored = _properties(
        owner="sandbox",
        settings=["statement_timeout=0"],
        role_settings={},
        grants=["sandbox:CONNECT", "sandbox:CREATE", "sandbox:TEMPORARY", "PUBLIC:CONNECT"],
        comment=None,
        publications=[Publication(name="pub", actions="insert", tables=["app.orders", "app.users"])],
        subscriptions=[],
    )
    findings = database_properties.compare(_properties(), restored)
    assert findings.problems["database_properties"] == [
        "database setting search_path = app, public is missing after the restore",
        "database setting statement_timeout is 0 after the restore, 25s in the snapshot",
        "database privilege CONNECT of ro is missing after the restore",
        "database privilege CONNECT of PUBLIC is in the restored copy but not in the snapshot",
        "the database's comment is missing after the restore",
        "setting work_mem of role ro in the database = 8MB is missing after the restore",
        "the database's owner is sandbox after the restore, app in the snapshot",
    ]
    assert findings.problems["replication"] == [
        "publication pub publishes app.orders, app.users (insert) after the restore, app.orders (insert) in the "
        "snapshot",
        "subscription sub is missing after the restore",
    ]


def test_what_a_server_sandbox_cannot_restore_is_a_note_and_a_subscription_pg_dump_left_out_a_warning() -> None:
    restored = _properties(owner="scratch", role_settings={}, subscriptions=[])
    restored.grants = [grant.replace("app:", "scratch:") for grant in restored.grants]
    findings = database_properties.compare(_properties(), restored, privileged=False, subscriptions_not_dumped=True)
    assert not any(findings.problems.values())
    assert findings.warnings["replication"] == [
        "subscription sub is not in the backup: pg_dump needs a superuser to dump subscriptions"
    ]
    assert len(findings.notes["database_properties"]) == 2
