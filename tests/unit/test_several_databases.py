"""`source.databases`: its config lines by YAML path, which databases a night chooses, the directory
each database gets, the roles files retention keeps, and the night's one Zabbix push spooled."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from verifier.config import parse_config
from verifier.errors import ConfigError, RepositoryError
from verifier.pipeline.night import choose_databases, database_config
from verifier.pipeline.night_report import DatabaseNight, Night
from verifier.pipeline.night_zabbix import night_zabbix
from verifier.report import Status
from verifier.repository.databases import Databases, database_name, directory_name
from verifier.zabbix import keys
from verifier.zabbix.spool import Spool


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environment={})
    return str(caught.value)


def test_databases_is_all_or_a_list_with_exclude_and_never_beside_dbname() -> None:
    config = parse_config("source: {databases: all, exclude: ['test_*', staging]}\n", environment={})
    assert config.source.several and config.source.databases == "all" and config.source.dbname is None
    assert parse_config("source: {databases: [app, billing]}\n").source.databases == ["app", "billing"]
    assert not parse_config("source: {dbname: app}\n").source.several  # the single form means what it meant
    assert problem("source: {dbname: app, databases: all}\n") == (
        "<config>: source: name either dbname (one database) or databases (several), not both"
    )
    assert problem("source: {databases: every}\n") == (
        '<config>: source.databases: expected all or a list of database names, got "every"'
    )
    assert problem("source: {dbname: app, exclude: [x]}\n") == (
        "<config>: source: exclude applies to databases: name databases: all (or a list) with it"
    )
    assert problem("source: {databases: []}\n").endswith(
        "databases is an empty list: name all, or at least one database"
    )
    several = parse_config("source: {databases: all}\nzabbix: {server: z, host: h}\n")  # one host for the night
    assert several.zabbix is not None and several.source.several


def test_all_leaves_out_postgres_and_the_excluded_a_list_names_exactly() -> None:
    server = ["app", "app_test", "billing", "postgres", "staging"]
    assert choose_databases(server, "all", []) == ["app", "app_test", "billing", "staging"]
    assert choose_databases(server, "all", ["*_test", "staging"]) == ["app", "billing"]
    assert choose_databases(server, ["postgres", "billing", "gone"], []) == ["billing", "gone", "postgres"]
    assert choose_databases(server, ["app", "app"], ["[a]pp"]) == []


def test_a_database_config_is_the_single_form_in_its_own_directory(tmp_path: Path) -> None:
    config = parse_config(
        f"source: {{databases: all}}\nrepository: {{path: {tmp_path}}}\nrun_timeout: 1h\n"
        "zabbix: {server: z, host: h}\n"
    )
    derived = database_config(config, "billing", tmp_path / "databases" / "billing", seconds_left=120.0)
    assert derived.source.dbname == "billing" and not derived.source.several
    assert derived.repository.path == tmp_path / "databases" / "billing"
    assert derived.dump.globals is False and derived.run_timeout == 120.0
    assert derived.zabbix is None  # the night pushes once for all its databases, never one of them alone
    assert config.source.dbname is None and config.dump.globals  # the night's own config is untouched
    assert config.zabbix is not None


def test_the_weekly_selftest_is_accepted_with_databases() -> None:
    config = parse_config("source: {databases: all}\nschedule: {selftest: weekly}\n", environment={})
    assert config.source.several and config.schedule.selftest == "weekly"


@pytest.mark.parametrize("name", ["app", "Billing DB", "a/b", "..", ".hidden", "100%", "ünïcode", "x.y"])
def test_every_database_name_has_one_directory_read_back_as_it(name: str) -> None:
    directory = directory_name(name)
    assert "/" not in directory and not directory.startswith(".") and directory
    assert database_name(directory) == name


def test_the_roles_files_older_than_the_oldest_backup_are_pruned(tmp_path: Path) -> None:
    databases = Databases(tmp_path)
    databases.globals_dir.mkdir(parents=True)
    now = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    nights = [now - timedelta(days=days) for days in (5, 4, 3, 0)]
    for night in nights:
        databases.globals_path(night).write_text("-- roles\n")
    assert databases.prune_globals() == []  # no backup held: nothing is known to be unneeded
    repository = databases.repository("app")
    repository.ensure()
    # the oldest backup held was taken a minute after the roles of 4 days ago were read
    oldest = (nights[1] + timedelta(minutes=1)).strftime("%Y-%m-%d_%H-%M-%SZ")
    dump = repository.path / f"app_{oldest}.sql"
    dump.write_text("-- a legacy dump\n")
    os.utime(dump, (0, (nights[1] + timedelta(minutes=1)).timestamp()))  # a legacy dump is dated by its file
    assert databases.prune_globals() == [databases.globals_path(nights[0])]
    assert sorted(databases.globals_dir.iterdir()) == [databases.globals_path(night) for night in nights[1:]]


def test_db_names_a_database_the_repository_holds(tmp_path: Path) -> None:
    databases = Databases(tmp_path)
    databases.repository("app").ensure()
    assert databases.chosen(None) == ["app"] and databases.chosen("app") == ["app"]
    with pytest.raises(RepositoryError, match=r"--db shop: the repository .* holds no such database \(it holds app\)"):
        databases.chosen("shop")


def test_a_night_zabbix_cannot_reach_is_spooled_once_in_the_root_and_says_so(tmp_path: Path) -> None:
    """A real refused TCP connection (port 1 of this machine), no Zabbix mock: the night's one push goes to
    the repository root's spool, as a single run's does, and the night's exit code says it (WARNING)."""
    config = parse_config(
        f"source: {{databases: all}}\nrepository: {{path: {tmp_path}}}\n"
        "zabbix: {server: 127.0.0.1, port: 1, host: h, timeout: 2}\n"
    )
    databases = Databases(tmp_path)
    databases.root.ensure()
    night = Night(
        "r1", datetime.now(UTC), datetime.now(UTC),
        [DatabaseNight("app", "failed", problem="lock never came"), DatabaseNight("old", "vanished")],
    )  # fmt: skip

    pushed = night_zabbix(config, databases, night, ends_at=time.monotonic() + 30)

    [result] = pushed.deliveries
    assert result.status is Status.WARNING and "unreachable" in result.summary
    assert pushed.exit_code == 2  # app failed; the push's WARNING is under it
    spooled = {value.key: value.value for value in Spool(databases.root.spool_path, 1000).load().values}
    assert spooled[keys.NIGHT_DATABASES] == "1" and spooled[keys.NIGHT_DATABASES_FAILED] == "1"  # not the vanished
    assert json.loads(spooled[keys.DB_DISCOVERY]) == [{"{#DB}": "app"}]
    assert spooled[keys.db_item_key(keys.DB_BACKUP_COUNT, "app")] == "0"
    assert any(line.startswith("WARNING: zabbix: ") for line in pushed.summary_lines(UTC))
