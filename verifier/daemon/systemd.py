"""systemd units for the nightly run: a oneshot service and a timer, rendered from the config.

The service is hardened but still able to work: the file system is read-only except the repository
(`ProtectSystem=strict` + `ReadWritePaths=`), /tmp is private (the local sandbox's temporary cluster
lives there), no privilege gain through exec (`NoNewPrivileges=`; dropping from root to the
`postgres` user for initdb is a setuid() call, not an exec gain, so it still works), homes hidden,
files created private (`UMask=0077`). The timer fires at `schedule.at` in `schedule.timezone`, with
`RandomizedDelaySec=` and `Persistent=true` so a night the machine was off is caught up at boot.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from verifier import process
from verifier.config import RepositoryConfig, ScheduleConfig, VerifyConfig
from verifier.errors import SystemdError

logger = logging.getLogger(__name__)

UNIT_NAME = "pg-backup-verifier"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_EXECUTABLE = Path("/usr/local/bin/verifier")  # install.sh links it to its venv's script when run as root
HIDDEN_FROM_SERVICE = {
    Path("/tmp"): "PrivateTmp=yes",
    Path("/var/tmp"): "PrivateTmp=yes",
    Path("/home"): "ProtectHome=yes",
    Path("/root"): "ProtectHome=yes",
    Path("/run/user"): "ProtectHome=yes",
}


@dataclass(frozen=True)
class Units:
    """The two unit files' names and contents."""

    service_name: str
    service: str
    timer_name: str
    timer: str

    def files(self) -> dict[str, str]:
        """Returns {file name: content} for both units."""
        return {self.service_name: self.service, self.timer_name: self.timer}


def render(
    schedule: ScheduleConfig,
    repository: RepositoryConfig,
    verify: VerifyConfig,
    *,
    config_path: Path,
    executable: Path | None = None,
    user: str | None = None,
) -> Units:
    """Returns the service and timer for running `verifier run --config config_path` on the `schedule`,
    the service able to write only the `repository` and the sandbox's `verify.temp_dir`.

    `user` runs the service as that account instead of root. (The zone and the delay were
    validated when the config loaded.)
    """
    program = executable or find_executable()
    delay = schedule.randomized_delay_seconds
    writable = [repository.path]
    for directory in (verify.temp_dir, verify.template_dir):  # unset template_dir: CacheDirectory= below
        if directory is not None:
            writable.append(directory)
    account = [f"User={user}"] if user else []
    service = _lines(
        "[Unit]",
        "Description=pg-backup-verifier: nightly dump, restore proof and report",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={_quote(program)} run --config {_quote(config_path)}",
        *account,
        # exit 1 is a WARNING report, not a broken night; 2 (CRITICAL) and 3 (could not run) mark the
        # unit failed, so `systemctl --failed` and OnFailure= hooks see a bad backup
        "SuccessExitStatus=1",
        "Nice=10",
        "IOSchedulingClass=best-effort",
        "IOSchedulingPriority=7",
        "TimeoutStartSec=6h",
        "PrivateTmp=yes",
        # /var/cache/pg-backup-verifier ($CACHE_DIRECTORY): the sandbox's pristine initdb, outside the repository
        f"CacheDirectory={UNIT_NAME}",
        "CacheDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=" + " ".join(_quote(path) for path in writable),
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "UMask=0077",
    )
    timer = _lines(
        "[Unit]",
        f"Description=Run {UNIT_NAME} daily at {schedule.at} {schedule.timezone}",
        "",
        "[Timer]",
        f"OnCalendar=*-*-* {schedule.at}:00 {schedule.timezone}",
        f"RandomizedDelaySec={delay}",
        "Persistent=true",
        "AccuracySec=1min",
        f"Unit={UNIT_NAME}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    )
    return Units(f"{UNIT_NAME}.service", service, f"{UNIT_NAME}.timer", timer)


def hidden_from_service(paths: dict[str, Path | None]) -> list[str]:
    """Returns one warning for each of `paths` ({what: path}) that the service would not see: under
    /tmp or /var/tmp (`PrivateTmp=` gives it its own, empty ones) or a home directory (`ProtectHome=`)."""
    warnings = []
    for what, path in paths.items():
        if path is None:
            continue
        absolute = path.absolute()
        for hidden, directive in HIDDEN_FROM_SERVICE.items():
            if absolute == hidden or hidden in absolute.parents:
                warnings.append(
                    f"{what} {absolute} is under {hidden}, which {directive} hides from the service: "
                    f"move it (e.g. under /etc/{UNIT_NAME} or /var/lib/{UNIT_NAME}) or the nightly run will not find it"
                )
                break
    return warnings


def install(units: Units, *, unit_dir: Path = SYSTEM_UNIT_DIR, enable: bool = True) -> list[Path]:
    """Writes the units into `unit_dir` (mode 0644) and, when systemd runs here and `enable`, enables the timer.

    Returns the paths written. Raises SystemdError when a file cannot be written or systemctl fails.
    """
    written: list[Path] = []
    for name, content in units.files().items():
        path = unit_dir / name
        try:
            unit_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            path.chmod(0o644)
        except OSError as error:
            raise SystemdError(f"cannot write {path}: {error.strerror} (run as root?)") from None
        logger.info("wrote %s", path)
        written.append(path)
    if not enable:
        return written
    if not systemd_running():
        logger.warning(
            "systemd is not running here: enable later with `systemctl daemon-reload && systemctl enable --now %s`",
            units.timer_name,
        )
        return written
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", units.timer_name]):
        completed = process.run(argv, timeout=60)
        if completed.returncode != 0:
            message = completed.stderr.strip().splitlines()[-1:] or ["no output"]
            raise SystemdError(f"{' '.join(argv)} failed: {message[0]}")
    logger.info("enabled %s", units.timer_name)
    return written


def systemd_running() -> bool:
    """Returns True when systemd is the init system of this machine."""
    return Path("/run/systemd/system").is_dir()


def find_executable() -> Path:
    """Returns the absolute path of the `verifier` command: beside this Python, on PATH, or the default."""
    beside = Path(sys.executable).parent / "verifier"
    if beside.exists():
        return beside
    found = shutil.which("verifier")
    return Path(found) if found else DEFAULT_EXECUTABLE


def _quote(path: Path) -> str:
    text = str(path)
    if any(character.isspace() or character in "\"'\\" for character in text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return text


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"
