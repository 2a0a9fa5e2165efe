"""`verifier zabbix setup`'s secrets and host macros, and `push_report` when Zabbix is misconfigured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from verifier.config import Config
from verifier.errors import ConfigError
from verifier.report import Report, Status
from verifier.repository.backups import Repository
from verifier.zabbix.push import push_report
from verifier.zabbix.setup import credentials, host_macros


def config(**sections: object) -> Config:
    return Config.model_validate({"source": {"dbname": "shop"}, **sections})


def test_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert (
        credentials(user=None, token_file=None, password_file=None, environment={"ZABBIX_API_TOKEN": "t1"}).token
        == "t1"
    )
    token_file = tmp_path / "token"
    token_file.write_text("t2\n")
    assert credentials(user=None, token_file=token_file, password_file=None, environment={}).token == "t2"


def test_password_for_a_user_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secrets = credentials(user="Admin", token_file=None, password_file=None, environment={"ZABBIX_API_PASSWORD": "p"})
    assert (secrets.user, secrets.password) == ("Admin", "p")
    assert "password=" not in repr(secrets)
    with pytest.raises(ConfigError, match="ZABBIX_API_PASSWORD"):
        credentials(user="Admin", token_file=None, password_file=None, environment={})


def test_missing_secret_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read secret file"):
        credentials(user=None, token_file=tmp_path / "missing", password_file=None, environment={})


def test_host_macros_follow_the_checks_thresholds() -> None:
    assert host_macros(config().checks) == {"{$PGBACKUP.AGE.MAX}": "36h", "{$PGBACKUP.COUNT.MIN}": "3"}
    assert host_macros(config(checks={"max_age_hours": 0.5, "min_count": 5}).checks) == {
        "{$PGBACKUP.AGE.MAX}": "1800s",
        "{$PGBACKUP.COUNT.MIN}": "5",
    }


def test_push_with_an_unreadable_agent_config_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    configured = config(zabbix={"agent_config": str(tmp_path / "missing.conf")})
    report = Report(run_id="r", command="run", source="shop", started_at=datetime.now(UTC))
    result = push_report(
        configured.zabbix, report, Repository(tmp_path / "repo"), database="shop", backups=[], last_success=None
    )
    assert result.name == "zabbix" and result.status is Status.WARNING
    assert "zabbix.agent_config: cannot read" in result.summary
