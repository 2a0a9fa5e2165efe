"""The systemd units: rendered from the config, checked by `systemd-analyze verify` when it exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.requirements import need
from verifier.config import Config, parse_config
from verifier.daemon import systemd
from verifier.errors import ConfigError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG_PATH = Path("/etc/pg-backup-verifier/config.yaml")


def config_for(repository: Path, *, extra: str = "") -> Config:
    return parse_config(
        "source: {dbname: eatfit24}\n"
        f"repository: {{path: {repository}}}\n"
        "schedule: {at: '03:30', timezone: Europe/Moscow, randomized_delay: 10m}\n" + extra
    )


def render(config: Config, **options: Any) -> systemd.Units:
    """Returns the units rendered from the config's sections, as `verifier systemd install` renders them."""
    return systemd.render(config.schedule, config.repository, config.verify, **options)


def directives(unit: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in unit.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def test_timer_fires_at_the_configured_wall_clock_time() -> None:
    units = render(config_for(Path("/var/backups/pgbv")), config_path=CONFIG_PATH)
    timer = directives(units.timer)
    assert timer["OnCalendar"] == "*-*-* 03:30:00 Europe/Moscow"
    assert timer["RandomizedDelaySec"] == "600"
    assert timer["Persistent"] == "true"
    assert timer["Unit"] == "pg-backup-verifier.service"
    assert timer["WantedBy"] == "timers.target"


def test_service_is_a_hardened_oneshot_that_can_write_only_the_repository(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    config = config_for(Path("/srv/backups dir"), extra=f"verify: {{temp_dir: {scratch}}}\n")
    units = render(config, config_path=CONFIG_PATH, executable=Path("/opt/pgbv/bin/verifier"), user="pgbv")
    service = directives(units.service)
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == "/opt/pgbv/bin/verifier run --config /etc/pg-backup-verifier/config.yaml"
    assert service["User"] == "pgbv"
    assert service["ReadWritePaths"] == f'"/srv/backups dir" {scratch}'
    for key, value in {
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "UMask": "0077",
        "SuccessExitStatus": "1",
    }.items():
        assert service[key] == value, key


def test_runs_as_root_without_user() -> None:
    units = render(config_for(Path("/var/backups/pgbv")), config_path=CONFIG_PATH)
    assert "User" not in directives(units.service)


def test_unknown_time_zone_is_refused_before_systemd_sees_it() -> None:
    # refused when the config loads, so no unit is ever rendered with it
    with pytest.raises(ConfigError, match=r"schedule\.timezone: unknown time zone \"Europe/Atlantis\""):
        parse_config("source: {dbname: x}\nschedule: {timezone: Europe/Atlantis}\n")


def test_deploy_units_are_the_rendered_defaults() -> None:
    """deploy/'s units are the ones rendered for the default config: issue 22.8 found the shipped timer at
    03:30 Europe/Moscow (rendered from the example config's zone) while the default zone, and the README, say UTC."""
    config = parse_config("source: {dbname: eatfit24}\n")
    units = render(config, config_path=CONFIG_PATH, executable=systemd.DEFAULT_EXECUTABLE)
    for name, content in units.files().items():
        assert (DEPLOY / name).read_text() == content, (
            f"deploy/{name} is out of date: regenerate it with "
            "`python -m tests.unit.test_systemd` (renders the defaults)"
        )


def test_install_writes_both_units_without_enabling_outside_systemd(tmp_path: Path) -> None:
    units = render(config_for(tmp_path / "repo"), config_path=CONFIG_PATH)
    written = systemd.install(units, unit_dir=tmp_path / "units", enable=False)
    assert sorted(path.name for path in written) == ["pg-backup-verifier.service", "pg-backup-verifier.timer"]
    assert all(oct(path.stat().st_mode & 0o777) == "0o644" for path in written)


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze")
    assert analyze is not None
    repository = tmp_path / "repo"
    repository.mkdir()
    units = render(config_for(repository), config_path=CONFIG_PATH, executable=systemd.find_executable())
    written = systemd.install(units, unit_dir=tmp_path / "units", enable=False)
    completed = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, written)], capture_output=True, text=True, timeout=120
    )
    problems = [line for line in completed.stderr.splitlines() if str(tmp_path) in line]
    assert completed.returncode == 0, completed.stderr
    assert problems == []


def _write_deploy_units() -> None:
    config = parse_config("source: {dbname: eatfit24}\n")
    units = render(config, config_path=CONFIG_PATH, executable=systemd.DEFAULT_EXECUTABLE)
    for name, content in units.files().items():
        (DEPLOY / name).write_text(content)


if __name__ == "__main__":
    _write_deploy_units()


def test_cli_dry_run_prints_both_units_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from verifier.cli.main import main

    config = tmp_path / "config.yaml"
    config.write_text(
        f"source: {{dbname: eatfit24}}\nrepository: {{path: {tmp_path / 'repo'}}}\n"
        "schedule: {at: '03:30', timezone: Europe/Moscow, randomized_delay: 10m}\n"
    )
    units = tmp_path / "units"
    code = main(
        ["systemd", "install", "--dry-run", "--user", "pgbv", "--unit-dir", str(units), "--config", str(config)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"# {units}/pg-backup-verifier.service" in out and f"# {units}/pg-backup-verifier.timer" in out
    assert f"run --config {config}" in out
    assert "User=pgbv" in out and "OnCalendar=*-*-* 03:30:00 Europe/Moscow" in out
    assert not units.exists()


def test_cli_install_writes_units_outside_systemd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from verifier.cli.main import main

    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: eatfit24}}\nrepository: {{path: {tmp_path / 'repo'}}}\n")
    units = tmp_path / "units"
    code = main(["systemd", "install", "--no-enable", "--unit-dir", str(units), "--config", str(config)])
    assert code == 0
    assert sorted(path.name for path in units.iterdir()) == ["pg-backup-verifier.service", "pg-backup-verifier.timer"]
    assert capsys.readouterr().out.count("wrote ") == 2
    # ReadWritePaths= must exist when the service starts, so install creates the repository
    assert (tmp_path / "repo").stat().st_mode & 0o777 == 0o700


def test_cli_install_hands_the_repository_to_the_service_user(tmp_path: Path) -> None:
    import os
    import pwd

    from verifier.cli.main import main

    need(os.geteuid() == 0, "root (to chown the repository)")
    owner = pwd.getpwnam("postgres") if "postgres" in {entry.pw_name for entry in pwd.getpwall()} else None
    need(owner is not None, "a 'postgres' account")
    assert owner is not None
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: eatfit24}}\nrepository: {{path: {tmp_path / 'repo'}}}\n")
    arguments = ["systemd", "install", "--no-enable", "--user", "postgres", "--unit-dir", str(tmp_path / "units")]
    assert main([*arguments, "--config", str(config)]) == 0
    assert (tmp_path / "repo").stat().st_uid == owner.pw_uid
    assert (tmp_path / "repo" / "state").stat().st_uid == owner.pw_uid


def test_install_sh_links_the_command_the_shipped_unit_runs() -> None:
    # deploy/pg-backup-verifier.service runs DEFAULT_EXECUTABLE: install.sh (as root) must leave it there
    script = (DEPLOY.parent / "install.sh").read_text()
    assert f"link={systemd.DEFAULT_EXECUTABLE}\n" in script
    assert 'ln -sfn "$(pwd)/.venv/bin/verifier" "$link"' in script
    # and the repository the shipped unit may write (ReadWritePaths= must exist when the service starts)
    shipped = directives((DEPLOY / "pg-backup-verifier.service").read_text())
    assert f"install -d -m 0700 {shipped['ReadWritePaths']}" in script


def test_the_shipped_units_pass_systemd_analyze_on_a_host_install_sh_set_up() -> None:
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze")
    installed = f"{systemd.DEFAULT_EXECUTABLE} (install.sh run as root, as dev/test does)"
    need(systemd.DEFAULT_EXECUTABLE.exists(), installed)
    assert analyze is not None
    units = [DEPLOY / "pg-backup-verifier.service", DEPLOY / "pg-backup-verifier.timer"]
    completed = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0 and "pg-backup-verifier" not in completed.stderr, completed.stderr


def test_install_warns_about_paths_the_service_cannot_see(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from verifier.cli.main import main

    programs = Path("/home/ops/pg18/bin")
    config = tmp_path / "config.yaml"  # tmp_path is under /tmp: PrivateTmp=yes gives the service another /tmp
    config.write_text(
        f"source: {{dbname: eatfit24}}\nrepository: {{path: {tmp_path / 'repo'}}}\npostgres: {{bin_dir: {programs}}}\n"
    )
    code = main(["systemd", "install", "--dry-run", "--unit-dir", str(tmp_path / "units"), "--config", str(config)])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert code == 0
    assert len(warnings) == 3, warnings
    assert f"the config {config} is under /tmp, which PrivateTmp=yes hides" in warnings[0]
    assert f"repository.path {tmp_path / 'repo'} is under /tmp" in warnings[1]
    assert f"postgres.bin_dir {programs} is under /home, which ProtectHome=yes hides" in warnings[2]


def test_install_is_silent_about_paths_the_service_sees(tmp_path: Path) -> None:
    assert systemd.hidden_from_service({"repository.path": Path("/var/backups/pgbv"), "x": None}) == []
    assert systemd.hidden_from_service({"repository.path": Path("/tmpfoo/backups")}) == []
