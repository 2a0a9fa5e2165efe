"""Config validation: every error names its YAML path and what was expected; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.config import dump_effective, load_config, parse_config
from verifier.errors import ConfigError


def problems_of(text: str, environment: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environment=environment or {})
    return str(caught.value)


def test_every_problem_is_reported_at_once_with_its_yaml_path() -> None:
    message = problems_of(
        "source:\n  port: 54x2\n  dbnam: x\ndump:\n  format: tar\nverify:\n  drift:\n    max_percent: abc\n"
    )
    assert 'source.port: expected an integer, got "54x2"' in message
    assert "source.dbnam: unknown key (did you mean 'dbname'?)" in message
    assert "dump.format: expected one of 'custom', 'directory' or 'plain', got \"tar\"" in message
    assert 'verify.drift.max_percent: expected a number, got "abc"' in message
    assert "4 problems" in message


def test_missing_source_is_required() -> None:
    assert "source: required" in problems_of("repository: {path: /tmp/x}\n")


def test_missing_environment_variable_names_the_path() -> None:
    message = problems_of("source:\n  dbname: app\n  password: ${APP_DB_PASSWORD}\n")
    assert "source.password: environment variable APP_DB_PASSWORD is not set" in message


def test_environment_and_file_secrets_are_read_and_masked(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    config = parse_config(
        f"source:\n  dbname: ${{DB:-app}}\n  password: file:{secret_file}\n"
        "verify:\n  sandbox: server\n  server:\n    host: h\n    password: ${SCRATCH_PW}\n",
        environment={"SCRATCH_PW": "from-env"},
    )
    assert config.source.dbname == "app"
    assert config.source.password is not None and config.source.password.get_secret_value() == "from-file"
    assert config.verify.server is not None and config.verify.server.password is not None
    assert config.verify.server.password.get_secret_value() == "from-env"
    shown = dump_effective(config) + repr(config)
    assert "from-file" not in shown and "from-env" not in shown


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    message = problems_of(f"source:\n  dbname: app\n  password: file:{tmp_path / 'absent'}\n")
    assert "source.password: cannot read secret file" in message


def test_server_sandbox_needs_a_server_section() -> None:
    assert "verify: sandbox 'server' needs a server" in problems_of("source: {dbname: a}\nverify: {sandbox: server}\n")


def test_invalid_yaml_names_line_and_column() -> None:
    message = problems_of("source:\n  dbname: [unclosed\n")
    assert "not valid YAML" in message and "line" in message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config example"):
        load_config(tmp_path / "absent.yaml")


def test_defaults_follow_the_design() -> None:
    config = parse_config("source: {dbname: eatfit24}\n")
    assert config.dump.format == "custom"
    assert config.verify.sandbox == "local"
    assert (config.retention.keep_days, config.retention.keep_min) == (14, 3)
    assert (config.checks.max_age_hours, config.checks.min_count) == (36.0, 3)
    assert config.zabbix is None


def test_the_shipped_example_config_is_valid() -> None:
    from importlib import resources

    text = resources.files("verifier").joinpath("config.example.yaml").read_text()
    config = parse_config(text, environment={"PGPASSWORD": "x"})
    assert config.source.dbname == "eatfit24"
    assert config.schedule.timezone == "Europe/Moscow"


def test_unknown_time_zone_and_bad_delay_are_refused_when_the_config_loads() -> None:
    message = problems_of(
        "source: {dbname: x}\nschedule: {timezone: Mars/Olympus, randomized_delay: ten minutes, at: '3:30'}\n"
    )
    assert 'schedule.timezone: unknown time zone "Mars/Olympus" (e.g. Europe/Moscow, UTC)' in message
    assert 'schedule.randomized_delay: expected e.g. 10m, 600s or 1h, got "ten minutes"' in message
    assert "schedule.at:" in message
    assert "3 problems" in message


def test_a_randomized_delay_of_more_than_half_a_day_is_refused() -> None:
    message = problems_of("source: {dbname: x}\nschedule: {randomized_delay: 13h}\n")
    assert 'schedule.randomized_delay: at most 12h, got "13h"' in message


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("600", 600), ("45s", 45), ("1h", 3600), ("0", 0)])
def test_randomized_delay_is_read_in_seconds(text: str, seconds: int) -> None:
    config = parse_config(f"source: {{dbname: x}}\nschedule: {{randomized_delay: '{text}'}}\n")
    assert config.schedule.randomized_delay_seconds == seconds


def test_the_example_configs_offsite_sections_are_valid_once_uncommented(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("verifier").joinpath("config.example.yaml").read_text()
    start = text.index("# offsite:")
    uncommented = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    for name in ("s3_secret", "restore_key", "restore_key_passphrase"):
        (tmp_path / name).write_text("secret\n")
    config = parse_config(
        (text[:start] + uncommented).replace("file:/run/secrets/", f"file:{tmp_path}/"),
        environment={"PGPASSWORD": "x", "S3_ACCESS_KEY_ID": "AKIAEXAMPLE"},
    )
    assert [target.url for target in config.offsite] == [
        "s3://backups/eatfit24/",
        "rsync://backup@vault.example.org/srv/backups/eatfit24/",
    ]
    assert config.encryption is not None and config.encryption.gpg.recipients == ["ops@example.org"]
    assert (config.offsite_retention.keep_days, config.offsite_retention.keep_min) == (60, 7)


def test_a_passphrase_without_a_private_key_is_named(tmp_path: Path) -> None:
    from verifier.config_offsite import GpgConfig

    with pytest.raises(ValueError, match="private_key_passphrase is set but private_key is not"):
        GpgConfig.model_validate(
            {"recipients": ["ops@example.org"], "public_keys": "/x.asc", "private_key_passphrase": "p"}
        )


def test_prometheus_textfile_must_be_a_prom_file_named_in_one_line() -> None:
    message = problems_of("source: {dbname: app}\nprometheus: {textfile: /var/lib/node-exporter/pgbv.txt}\n")
    assert message == (
        "<config>: prometheus.textfile: expected a file ending in .prom (node_exporter reads no other), "
        'got "/var/lib/node-exporter/pgbv.txt"'
    )
    assert problems_of("source: {dbname: app}\nprometheus: {}\n") == "<config>: prometheus.textfile: required"
    config = parse_config("source: {dbname: app}\nprometheus: {textfile: /var/lib/node-exporter/pgbv.prom}\n")
    assert config.prometheus is not None and config.prometheus.textfile == Path("/var/lib/node-exporter/pgbv.prom")


def test_dump_disabled_without_a_physical_section_leaves_run_nothing_to_prove(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("source: {dbname: app}\nrepository: {path: /tmp/r}\ndump: {enabled: false}\n")
    with pytest.raises(ConfigError, match="dump: enabled: false leaves verifier run nothing to prove"):
        load_config(path)
    path.write_text(path.read_text() + "physical: {stanza: main}\n")
    assert not load_config(path).dump.enabled
