"""A schema difference counts only if it is real (issue 20, point 1).

PostgreSQL does not print an expression the same way after a dump and restore: a `varchar IN (...)`
CHECK prints `= ANY ((ARRAY['a'::character varying])::text[])` in production and
`= ANY (ARRAY[('a'::character varying)::text])` in the restored copy. A real application's schema
(Rails and Django style IN-list CHECKs, views with casts, defaults with casts, expression and partial
indexes, a domain, a policy, an exclusion constraint, a partitioned table) must verify OK through
the real pipeline as the application's own non-superuser role; a CHECK, default, view or index that
really differs in the restored copy must still be CRITICAL and named; the self-test changes a CHECK
and must catch it. Everything runs against real PostgreSQL.
"""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.real_world import ApplicationDatabase, create_application_database, drop_application_database
from tests.support.reports import newest_manifest, result
from verifier.manifest import Manifest
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.pipeline.verify import verify_backup
from verifier.postgres import catalog
from verifier.postgres.binaries import Installation
from verifier.postgres.evidence.fingerprint import fingerprint_schema
from verifier.postgres.evidence.reparse import same_when_parsed
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Report, Status
from verifier.repository.backups import Repository

# Run as the application role (search_path app, public), after the shared application schema.
ROUNDTRIP_SCHEMA = """
CREATE EXTENSION btree_gist;
CREATE DOMAIN order_status AS varchar(20) DEFAULT 'new' CHECK (VALUE IN ('new', 'paid', 'shipped'));
CREATE TYPE plan_tier AS ENUM ('free', 'pro');
CREATE TABLE subscriptions (
    id bigserial PRIMARY KEY,
    state varchar NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    plan character varying(20) NOT NULL
        CHECK (plan::text = ANY (ARRAY['free'::character varying, 'pro'::character varying]::text[])),
    kind varchar(10) CHECK (kind IN ('monthly', 'yearly')),
    price numeric(10, 2) DEFAULT 0.00 CHECK (price >= 0),
    currency char(3) NOT NULL DEFAULT 'EUR' CHECK (currency IN ('EUR', 'USD')),
    tags varchar(20)[] NOT NULL DEFAULT ARRAY[]::varchar[],
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    starts_on date DEFAULT CURRENT_DATE,
    created_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tier plan_tier DEFAULT 'free'::plan_tier,
    status order_status,
    label text GENERATED ALWAYS AS (state || ':' || plan) STORED
);
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_cancelled_plan
    CHECK (state <> 'cancelled' OR plan IN ('free', 'pro'));
INSERT INTO subscriptions (state, plan, kind, price)
    SELECT CASE WHEN g % 3 = 0 THEN 'cancelled' ELSE 'active' END, CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END,
           CASE WHEN g % 5 = 0 THEN 'yearly' ELSE 'monthly' END, g % 40
    FROM generate_series(1, 400) g;
CREATE INDEX index_subscriptions_on_lower_state ON subscriptions (lower(state)) WHERE state IN ('active', 'cancelled');
CREATE UNIQUE INDEX subscriptions_owner_plan ON subscriptions (plan, (metadata ->> 'owner'), id)
    WHERE kind::text = ANY (ARRAY['monthly'::character varying, 'yearly'::character varying]::text[]);
CREATE VIEW active_subscriptions AS
    SELECT id, plan, NULL::integer AS seats, price::int AS whole_price, state::text
    FROM subscriptions WHERE state IN ('active', 'cancelled');
CREATE VIEW subscription_rows AS
    SELECT id, NULL::integer FROM subscriptions UNION ALL SELECT NULL::bigint, 1;
CREATE VIEW plan_names AS SELECT NULL, 'x'::varchar, 1::int, plan FROM subscriptions
    WHERE kind IN ('monthly', 'yearly') AND plan LIKE 'p%';
CREATE MATERIALIZED VIEW plan_counts AS
    SELECT plan, count(*) FROM subscriptions WHERE state IN ('active', 'cancelled') GROUP BY plan;
ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_subscriptions ON subscriptions
    USING (state IN ('active', 'cancelled')) WITH CHECK (kind IN ('monthly', 'yearly'));
CREATE FUNCTION is_live(state varchar) RETURNS boolean LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC SELECT state IN ('active', 'cancelled'); END;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE TRIGGER subscriptions_touch BEFORE UPDATE OF state ON subscriptions FOR EACH ROW
    WHEN (NEW.state IN ('active', 'cancelled')) EXECUTE FUNCTION touch();
CREATE TABLE bookings (
    id serial PRIMARY KEY, room integer NOT NULL, during tsrange NOT NULL, state varchar(10) NOT NULL,
    EXCLUDE USING gist (room WITH =, during WITH &&) WHERE (state IN ('held', 'paid'))
);
INSERT INTO bookings (room, during, state)
    SELECT g, tsrange('2026-01-01', '2026-01-02'), 'paid' FROM generate_series(1, 20) g;
CREATE TABLE events (id bigint NOT NULL, kind varchar(10) NOT NULL CHECK (kind IN ('click', 'view')),
                     at date NOT NULL DEFAULT '2026-01-01'::date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_kind ON events (lower(kind)) WHERE kind IN ('click', 'view');
INSERT INTO events SELECT g, 'click', date '2026-03-01' FROM generate_series(1, 50) g;
"""

CHECK_KEY = "constraint app.subscriptions.subscriptions_state_check"


@pytest.fixture
def app_db(production: TemporaryCluster) -> Iterator[ApplicationDatabase]:
    database = create_application_database(production)
    try:
        database.execute(ROUNDTRIP_SCHEMA)
        yield database
    finally:
        drop_application_database(database)


def not_ok(report: Report) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(r.name, r.status.name, r.summary, r.details[:8]) for r in report.results if r.status is not Status.OK]


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_real_application_schema_verifies_without_a_false_alarm(
    app_db: ApplicationDatabase, tmp_path: Path, dump_format: str
) -> None:
    config = app_db.config(tmp_path / "repo", dump={"format": dump_format})
    report = commands.run(config)
    assert report.exit_code == 0, not_ok(report)
    assert report.verification_passed, not_ok(report)
    assert result(report, "schema").summary == "schema matches the snapshot"
    _, manifest = newest_manifest(tmp_path / "repo")
    # the definitions whose print changes across a restore are in the comparison, not left out of it
    assert "ANY ((ARRAY['active'::character varying" in manifest.schema_texts[CHECK_KEY]
    for key in (
        "default app.subscriptions.state",
        "generated column app.subscriptions.label",
        "query of view app.active_subscriptions",
        "query of materialized view app.plan_counts",
        "index app.index_subscriptions_on_lower_state",
        "domain constraint app.order_status.order_status_check",
        "policy using app.subscriptions.visible_subscriptions",
        "constraint app.bookings.bookings_room_during_excl",
        "trigger app.subscriptions.subscriptions_touch",
        "body of function app.is_live(character varying)",
    ):
        assert key in manifest.schema_objects and key in manifest.schema_texts, key
    again = commands.check(config)
    assert again.exit_code == 0, not_ok(again)


def test_a_cron_dump_without_manifest_matches_production_now(
    app_db: ApplicationDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    """No manifest: production's definitions are read now and parsed again the same way."""
    legacy = tmp_path / "shop_2026-12-01_03-00-00.sql.gz"
    pg_dump = str(postgres_installation.program("pg_dump"))
    arguments = ["-h", app_db.cluster.host, "-p", str(app_db.cluster.port), "-U", "postgres", app_db.dbname]
    dumped = subprocess.run([pg_dump, *arguments], check=True, capture_output=True)
    legacy.write_bytes(gzip.compress(dumped.stdout))
    report = commands.check(app_db.config(tmp_path / "repo"), backup_file=legacy)
    schema = result(report, "schema")
    assert schema.status is Status.OK and schema.summary == "schema matches production now", not_ok(report)


def test_a_check_that_really_differs_from_the_snapshot_is_critical_and_named(
    app_db: ApplicationDatabase, tmp_path: Path
) -> None:
    """The snapshot said the CHECK allowed a third state: the restored copy does not match it."""
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    dump_path, manifest = newest_manifest(tmp_path / "repo")
    data = manifest.model_dump(by_alias=True)
    text = data["schema_texts"][CHECK_KEY]
    changed = text.replace(
        "'cancelled'::character varying", "'cancelled'::character varying, 'paused'::character varying"
    )
    assert changed != text
    changed_hash = _hash_like_the_fingerprint(changed)
    data["schema_texts"][CHECK_KEY] = changed
    data["schema_objects"][CHECK_KEY] = changed_hash
    Manifest.model_validate(data).write(dump_path.with_name(f"{manifest.name}.json"))
    report = commands.check(config)
    schema = result(report, "schema")
    assert report.exit_code == 2 and schema.status is Status.CRITICAL, not_ok(report)
    assert schema.details == (f"differs: {CHECK_KEY}",), schema.details
    assert not report.verification_passed


# Each statement changes one definition of the restored copy for real; the comparison must name it.
REAL_CHANGES = {
    "differs: constraint app.subscriptions.subscriptions_state_check": (
        "ALTER TABLE app.subscriptions DROP CONSTRAINT subscriptions_state_check, "
        "ADD CONSTRAINT subscriptions_state_check CHECK (state IN ('active', 'cancelled', 'paused'))"
    ),
    "differs: default app.subscriptions.currency": "ALTER TABLE app.subscriptions ALTER currency SET DEFAULT 'USD'",
    "differs: query of view app.active_subscriptions": (
        "CREATE OR REPLACE VIEW app.active_subscriptions AS SELECT id, plan, NULL::integer AS seats, "
        "price::int AS whole_price, state::text FROM app.subscriptions WHERE state IN ('active')"
    ),
    "differs: index app.index_subscriptions_on_lower_state": (
        "DROP INDEX app.index_subscriptions_on_lower_state; CREATE INDEX index_subscriptions_on_lower_state "
        "ON app.subscriptions (lower(state)) WHERE state IN ('active', 'paused')"
    ),
    "differs: domain constraint app.order_status.order_status_check": (
        "ALTER DOMAIN app.order_status DROP CONSTRAINT order_status_check; ALTER DOMAIN app.order_status "
        "ADD CONSTRAINT order_status_check CHECK (VALUE IN ('new', 'paid'))"
    ),
    "differs: policy using app.subscriptions.visible_subscriptions": (
        "ALTER POLICY visible_subscriptions ON app.subscriptions USING (state IN ('active'))"
    ),
    "differs: trigger app.subscriptions.subscriptions_touch": (
        "DROP TRIGGER subscriptions_touch ON app.subscriptions; CREATE TRIGGER subscriptions_touch BEFORE UPDATE "
        "OF state ON app.subscriptions FOR EACH ROW WHEN (NEW.state IN ('active')) EXECUTE FUNCTION app.touch()"
    ),
    "differs: body of function app.is_live(character varying)": (
        "CREATE OR REPLACE FUNCTION app.is_live(state varchar) RETURNS boolean LANGUAGE sql IMMUTABLE "
        "BEGIN ATOMIC SELECT state IN ('active'); END"
    ),
}


def test_checks_defaults_views_and_indexes_that_really_differ_are_named(
    app_db: ApplicationDatabase, tmp_path: Path
) -> None:
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(config.repository.path).backups()[-1]

    def change(connect: catalog.Connector) -> None:
        with connect() as connection:
            connection.autocommit = True
            for statement in REAL_CHANGES.values():
                connection.execute(statement)

    verification = verify_backup(backup, config, None, damage=change)
    assert verification.error is None, verification.error
    differences = verification.finding("schema").problems
    assert sorted(differences) == sorted(REAL_CHANGES), differences


def test_selftest_changes_a_check_and_catches_it(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    outcome = run_selftest(config)
    assert outcome.passed, outcome.result().details
    changed = [damage for damage in outcome.damages if damage.what.startswith("changed the expression of CHECK")]
    assert len(changed) == 1, outcome.result().details
    assert changed[0].check == "schema" and changed[0].caught
    assert changed[0].evidence.startswith("differs: constraint app.")


def _hash_like_the_fingerprint(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


PRODUCTION_CHECK = "CHECK (((state)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))"
RESTORED_CHECK = "CHECK (((state)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text])))"


def test_the_two_prints_of_one_check_parse_to_the_same_and_a_changed_one_does_not(cluster: TemporaryCluster) -> None:
    with cluster.connect() as connection:
        connection.execute(f"CREATE TABLE t (id int, state varchar, CONSTRAINT t_state_check {RESTORED_CHECK})")
        restored = fingerprint_schema(connection).definitions["constraint public.t.t_state_check"]
        assert restored.text == RESTORED_CHECK  # the restored copy's print, production's is another
        changed = PRODUCTION_CHECK.replace("'b'", "'c'")
        pairs = {"same": (PRODUCTION_CHECK, restored), "changed": (changed, restored)}
        assert same_when_parsed(connection, pairs) == frozenset({"same"})
        assert connection.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgbv%'").fetchone() == (0,)


def test_a_definition_text_holding_a_second_statement_is_never_run(cluster: TemporaryCluster) -> None:
    """A manifest is our own file, but the text it holds is pasted into SQL: one statement only."""
    with cluster.connect() as connection:
        connection.execute(f"CREATE TABLE t (id int, state varchar, CONSTRAINT t_state_check {RESTORED_CHECK})")
        restored = fingerprint_schema(connection).definitions["constraint public.t.t_state_check"]
        evil = f"{RESTORED_CHECK}; CREATE TABLE public.pwned ()"
        assert same_when_parsed(connection, {"evil": (evil, restored)}) == frozenset()
        assert connection.execute("SELECT to_regclass('public.pwned')").fetchone() == (None,)


def test_a_non_superuser_owning_the_database_parses_definitions_again(app_db: ApplicationDatabase) -> None:
    """As the `server` sandbox's role may be: it owns the scratch database and what it restored, no more."""
    app_db.execute(f"CREATE TABLE plain_copy (id int, state varchar, CONSTRAINT plain_copy_check {RESTORED_CHECK})")
    kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
    with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
        assert connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        definitions = fingerprint_schema(connection).definitions
        index = definitions["index app.index_subscriptions_on_lower_state"]
        pairs = {
            "check": (PRODUCTION_CHECK, definitions["constraint app.plain_copy.plain_copy_check"]),
            "index on a scratch copy": (index.text, index),
            "changed index": (index.text.replace("'cancelled'", "'paused'"), index),
        }
        assert same_when_parsed(connection, pairs) == frozenset({"check", "index on a scratch copy"})
        assert connection.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgbv%'").fetchone() == (0,)
