"""Every database of a server from one agent (`source.databases`): on a real cluster of its own with
several databases, one night backs up and proves each in its own subdirectory, in one sandbox; a
broken database is named and does not stop the others; a database that vanished is a named WARNING;
a new one is picked up the next night; the night's HTML page and its one e-mail carry every database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from email.message import Message
from pathlib import Path
from typing import Any

from psycopg import sql

from tests.support import browser, leftovers
from tests.support.databases import BROKEN_SCHEMA, SMALL_SCHEMA, create_database
from tests.support.html_rows import table_rows, visible_text
from tests.support.mailbox import Mailbox
from verifier.config import Config
from verifier.pipeline import commands
from verifier.pipeline.night import run_night
from verifier.pipeline.night_report import Night
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.repository.backups import Repository
from verifier.repository.databases import DATABASES_DIR, Databases
from verifier.repository.history import History


def drop_database(cluster: TemporaryCluster, name: str) -> None:
    with cluster.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def several(cluster: TemporaryCluster, repository: Path, **source: Any) -> Config:
    return Config.model_validate(
        {
            "source": {"host": cluster.host, "port": cluster.port, "user": "postgres", **source},
            "repository": {"path": str(repository)},
            "checks": {"min_count": 1},
            "verify": {"content": "full"},
        }
    )


@contextmanager
def servers_started() -> Iterator[set[str]]:
    """Yields the set of postgres servers (their `postgres -D DIR` command lines: one per cluster) that
    started while the block ran, watched from /proc every 20 ms: an observation, not the agent's word."""
    before = leftovers.postgres_servers()
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(leftovers.postgres_servers() - before)
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def by_name(night: Night) -> dict[str, Any]:
    return {database.name: database for database in night.databases}


def test_one_night_proves_every_database_in_one_sandbox_and_names_the_broken_one(
    cluster: TemporaryCluster, tmp_path: Path
) -> None:
    for name in ("app", "billing", "scratch_1"):
        create_database(cluster, name, SMALL_SCHEMA)
    create_database(cluster, "broken", BROKEN_SCHEMA)
    root = tmp_path / "repo"
    config = several(cluster, root, databases="all", exclude=["scratch_*"])

    with servers_started() as started:
        night = run_night(config)

    databases = by_name(night)
    assert sorted(databases) == ["app", "billing", "broken"]  # postgres and the excluded pattern left out
    for name in ("app", "billing"):
        database = databases[name]
        assert database.report is not None and database.report.verification_passed, database.line
        assert database.report.exit_code == 0, database.report.results
        repository = Databases(root).repository(name)
        assert repository.path == root / DATABASES_DIR / name
        (backup,) = repository.backups()
        assert backup.manifest is not None and backup.manifest.source.dbname == name
        assert database.newest == backup
        assert backup.manifest.counts_by_table()[("public", "orders")] == 1000
        assert History(repository.history_path).verified_backups() == {backup.name}
        assert list(repository.reports_dir.glob(f"{database.report.run_id}.json"))
    broken = databases["broken"]
    assert broken.report is not None and not broken.report.verification_passed
    assert broken.exit_code == 2 and night.exit_code == 2  # the worst of the night
    restore = next(result for result in broken.report.results if result.name == "restore")
    assert 'relation "lookup" does not exist' in restore.summary  # named, and the others stayed green
    assert len(started) == 1, started  # one sandbox cluster served the three proofs
    assert night.sandbox_starts == 1
    assert not (root / DATABASES_DIR / "scratch_1").exists()
    (roles,) = (root / "globals").glob("*.globals.sql")  # read once for the night, not per database
    assert "CREATE ROLE postgres" in roles.read_text()
    assert not list((root / DATABASES_DIR / "app").glob("*.globals.sql"))
    lines = night.summary_lines(config.schedule.display_zone)
    assert lines[0].startswith("app ") and lines[0].endswith("verified, OK")
    assert any(line.startswith("broken ") and "NOT VERIFIED, CRITICAL" in line for line in lines)
    assert (root / "reports" / f"{night.run_id}.json").exists()


def test_a_vanished_database_is_a_named_warning_and_a_new_one_is_picked_up(
    cluster: TemporaryCluster, tmp_path: Path
) -> None:
    for name in ("app", "cms"):
        create_database(cluster, name, SMALL_SCHEMA)
    root = tmp_path / "repo"
    config = several(cluster, root, databases="all")
    first = run_night(config)
    assert first.exit_code == 0, first.summary_lines(config.schedule.display_zone)

    drop_database(cluster, "cms")
    create_database(cluster, "shop", SMALL_SCHEMA)
    second = run_night(config)

    databases = by_name(second)
    assert sorted(databases) == ["app", "cms", "shop"]
    cms = databases["cms"]
    assert cms.why == "vanished" and cms.report is None
    assert cms.exit_code == 1 and second.exit_code == 1  # a WARNING, named
    assert cms.backups == 1 and cms.newest is not None  # its backup kept under retention
    assert len(Databases(root).repository("cms").backups()) == 1
    assert databases["shop"].report is not None and databases["shop"].report.verification_passed
    lines = second.summary_lines(config.schedule.display_zone)
    assert any(line.startswith("cms ") and "WARNING: no longer on the server" in line for line in lines)


def test_a_lock_that_never_comes_fails_its_database_alone(cluster: TemporaryCluster, tmp_path: Path) -> None:
    for name in ("app", "locked"):
        create_database(cluster, name, SMALL_SCHEMA)
    root = tmp_path / "repo"
    data = several(cluster, root, databases="all").model_dump()
    config = Config.model_validate({**data, "dump": {**data["dump"], "lock_wait_timeout": 2.0}})
    with cluster.connect("locked", autocommit=False) as migration:  # a migration holding its lock all night
        migration.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        night = run_night(config)
        migration.rollback()
    databases = by_name(night)
    locked = databases["locked"]
    assert locked.report is not None and locked.report.dump is not None and not locked.report.dump.ok
    assert "lock" in (locked.report.dump.error or "")
    assert locked.exit_code == 2 and night.exit_code == 2
    assert databases["app"].report is not None and databases["app"].report.verification_passed
    assert Databases(root).repository("locked").backups() == []


def test_run_timeout_bounds_the_whole_night(cluster: TemporaryCluster, tmp_path: Path) -> None:
    for name in ("a_waits", "b_next"):
        create_database(cluster, name, SMALL_SCHEMA)
    data = several(cluster, tmp_path / "repo", databases="all").model_dump()
    config = Config.model_validate({**data, "dump": {**data["dump"], "lock_wait_timeout": 600.0}, "run_timeout": 3.0})
    with cluster.connect("a_waits", autocommit=False) as migration:  # the first dump waits past the night's end
        migration.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        night = run_night(config)
        migration.rollback()
    first, second = night.databases
    assert first.report is not None and first.report.dump is not None
    assert "took longer than run_timeout" in (first.report.dump.error or ""), first.report.dump
    assert second.name == "b_next" and second.report is None
    assert second.problem == "run_timeout reached before its turn: not done tonight"
    assert night.exit_code == 2


def test_the_databases_are_listed_where_the_server_refuses_the_postgres_database(
    cluster: TemporaryCluster, tmp_path: Path
) -> None:
    create_database(cluster, "app", SMALL_SCHEMA)
    hba = cluster.data_dir / "pg_hba.conf"
    hba.write_text("local postgres all reject\n" + hba.read_text())
    with cluster.connect("app") as connection:
        connection.execute("SELECT pg_reload_conf()")
    config = several(cluster, tmp_path / "repo", databases="all")
    night = run_night(config)
    assert [database.name for database in night.databases] == ["app"]
    assert night.exit_code == 0, night.summary_lines(UTC)
    assert night.globals_path is not None  # pg_dumpall reached the server too

    nothing = run_night(config.model_copy(update={"source": config.source.model_copy(update={"exclude": ["a*"]})}))
    assert nothing.exit_code == 1  # a config that backs up nothing is named, with what the server has
    assert nothing.notes == [
        "no database to back up: source.databases and exclude leave none of the server's (app, postgres)"
    ]
    assert [database.why for database in nothing.databases] == ["left out"]


def test_a_single_database_repository_keeps_working_with_dbname(cluster: TemporaryCluster, tmp_path: Path) -> None:
    create_database(cluster, "app", SMALL_SCHEMA)
    root = tmp_path / "repo"
    config = several(cluster, root, dbname="app")
    before = commands.run(config)  # the repository as it always was: backups at its root
    after = commands.run(config)
    assert before.verification_passed and after.verification_passed
    assert len(Repository(root).backups()) == 2
    assert not (root / DATABASES_DIR).exists() and not (root / "globals").exists()

    switched = run_night(several(cluster, root, databases=["app"]))  # the same path, now several
    assert switched.exit_code == 1  # the backups of the single form are named, not adopted nor deleted
    assert switched.notes == [
        f"2 backup(s) of the single-database form lie at the root of {root}: left untouched (not proven, not "
        "pruned); move or delete them yourself"
    ]
    assert len(Repository(root).backups()) == 2
    assert len(Databases(root).repository("app").backups()) == 1


def test_a_server_out_of_reach_names_every_database_it_holds(cluster: TemporaryCluster, tmp_path: Path) -> None:
    create_database(cluster, "app", SMALL_SCHEMA)
    root = tmp_path / "repo"
    config = several(cluster, root, databases="all")
    assert run_night(config).exit_code == 0
    unreachable = config.model_copy(update={"source": config.source.model_copy(update={"port": 1})})
    night = run_night(unreachable)
    assert night.exit_code == 2 and night.could_not_run is not None and "cannot connect" in night.could_not_run
    (app,) = night.databases
    assert app.name == "app" and app.newest is not None and app.problem is not None
    lines = night.summary_lines(unreachable.schedule.display_zone)
    assert lines[0].startswith("could not run: cannot connect to ") and lines[1].startswith("app ")


# the night's report: one page in the root's reports/ (a summary table, a section per database drawn by
# the one report's own template) and ONE e-mail per night; a real SMTP server, the page in headless Chromium


def part(message: Message, subtype: str) -> str:
    found = next(piece for piece in message.walk() if piece.get_content_type() == f"text/{subtype}")
    payload = found.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_page_and_one_mail_for_the_whole_night(
    cluster: TemporaryCluster, tmp_path: Path, mailbox: tuple[Mailbox, int], chromium: str
) -> None:
    box, port = mailbox
    for name, schema in (("app", SMALL_SCHEMA), ("billing", SMALL_SCHEMA), ("broken <b>", BROKEN_SCHEMA)):
        create_database(cluster, name, schema)
    repository = tmp_path / "repo"
    config = several(cluster, repository, databases="all")
    email_section = {"to": ["dba@example.org"], "from": "backups@example.org", "smtp_port": port, "security": "none"}
    config = config.model_copy(update={"report": config.report.model_validate({"email": email_section}, by_alias=True)})

    night = run_night(config)

    assert night.exit_code == 2
    page = repository / "reports" / f"{night.run_id}.html"
    html = page.read_text()
    rows = table_rows(html, "databases")
    assert len(rows) == 3, rows
    assert rows[0].startswith("app ") and rows[0].endswith(" verified, OK"), rows[0]
    assert rows[1].startswith("billing ") and rows[1].endswith(" verified, OK"), rows[1]
    assert rows[2].startswith("broken <b> ") and "NOT VERIFIED, CRITICAL" in rows[2], rows[2]
    assert "restore" in rows[2] or "row_counts" in rows[2], rows[2]  # why, under its verdict
    for anchor in ("db-app", "db-billing", "db-broken--b-"):
        assert f'href="#{anchor}"' in html and f'<section class="database" id="{anchor}">' in html
    # each section is the one report's own body: its tables under the section's prefix
    assert table_rows(html, "db-app-tables") == [
        "public.customers 200 200 200 0 OK",
        "public.orders 1,000 1,000 1,000 0 OK",
    ]
    assert any(row.startswith("restore CRITICAL") for row in table_rows(html, "db-broken--b--checks"))
    assert "<b>" not in html.replace("&lt;b&gt;", "")  # a database's name is escaped, never markup

    # the runs of the databases sent nothing: the night sent one e-mail, the whole night in it
    assert len(box.messages) == 1, [message["Subject"] for message in box.messages]
    message = box.messages[0]
    assert message["Subject"] == "[CRITICAL] backup report 3 databases"
    text = part(message, "plain")
    opening = text.splitlines()[:6]
    assert opening[0].startswith("app ") and opening[0].endswith("verified, OK"), opening
    assert all(len(line) <= 80 for line in opening if not line.startswith(" ")), opening
    assert text.count("Backup integrity report: ") == 3
    assert part(message, "html").replace("\r\n", "\n").strip() == html.strip()  # the page itself (CRLF on the wire)
    for name in ("app", "billing"):
        report = Databases(repository).repository(name).reports_dir
        assert list(report.glob("*.html")), name  # each database keeps its own page beside its report

    shot = browser.screenshot(page, tmp_path / "night.png", height=1400)
    assert shot.read_bytes().startswith(b"\x89PNG")
    dom = visible_text(browser.dump_dom(page))
    assert "Backup integrity report: 3 databases" in dom and "NOT VERIFIED, CRITICAL" in dom
