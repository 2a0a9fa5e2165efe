"""YAML → validated, typed configuration.

Every key has a default except `source`. Values may name secrets as `${ENV_VAR}` (with
`${ENV_VAR:-default}`) or, for password fields, `file:/path`. Every error names its YAML path
and what was expected, and all errors are reported at once.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytz
import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from verifier.config_assertions import Assertions
from verifier.config_offsite import EncryptionConfig, OffsiteTargetConfig, offsite_target_name
from verifier.config_physical import PhysicalConfig
from verifier.config_problems import describe, interpolate
from verifier.config_section import Duration, Section, read_secret
from verifier.errors import ConfigError

DEFAULT_PATH = Path("/etc/pg-backup-verifier/config.yaml")
DEFAULT_ACCOUNT = "pgbv-sandbox"  # the sandbox's own system account (see verifier.sandbox.account)


class DockerSourceConfig(Section):
    """A source that runs in a Docker container: by container name, or by compose project + service."""

    container: str | None = None
    compose_project: str | None = None
    service: str | None = None
    docker_host: str | None = Field(
        default=None, description="Docker engine URL; default DOCKER_HOST or the local socket"
    )

    @model_validator(mode="after")
    def _one_way_to_find(self) -> DockerSourceConfig:
        if not self.container and not (self.compose_project and self.service):
            raise ValueError("name either container, or compose_project and service")
        return self


class SourceConfig(Section):
    """The production database. Omitted values come from the container's environment (docker) or libpq."""

    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    dbname: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    connect_timeout: Annotated[int, Field(ge=1)] = 10
    docker: DockerSourceConfig | None = None
    databases: Literal["all"] | list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description="several databases of the server, each with its own subdirectory of the repository: all "
        "(every database that accepts connections but templates and postgres), or a list of names",
    )
    exclude: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="with databases: names or shell patterns (fnmatch) left out"
    )

    _secret_file = field_validator("password", mode="before")(read_secret)

    @field_validator("databases", mode="before")
    @classmethod
    def _all_or_list(cls, value: object) -> object:
        if value is not None and not isinstance(value, list) and value != "all":
            raise ValueError(f'expected all or a list of database names, got "{value}"')
        return value

    @model_validator(mode="after")
    def _dbname_needed(self) -> SourceConfig:
        if self.dbname and self.databases is not None:
            raise ValueError("name either dbname (one database) or databases (several), not both")
        if self.exclude and self.databases is None:
            raise ValueError("exclude applies to databases: name databases: all (or a list) with it")
        if self.databases == []:
            raise ValueError("databases is an empty list: name all, or at least one database")
        if self.docker is None and not self.dbname and self.databases is None:
            raise ValueError("dbname is required (or databases:, or docker: to read it from the container)")
        return self

    @property
    def several(self) -> bool:
        """Returns True for the multi-database form (`databases:`), one subdirectory per database."""
        return self.databases is not None


class RepositoryConfig(Section):
    """Where backups, manifests, reports, history, spool and the lock live."""

    path: Path = Path("/var/backups/pg-backup-verifier")


class DumpConfig(Section):
    """How the backup is taken."""

    enabled: bool = Field(
        default=True,
        description="false: `verifier run` takes no logical dump and proves only the physical backup "
        "(needs physical:); `verifier dump` and `check` are unchanged",
    )
    format: Literal["custom", "directory", "plain"] = "custom"
    jobs: Annotated[int, Field(ge=1, le=64)] = 2
    compression: Annotated[int, Field(ge=0, le=9)] | None = Field(
        default=None,
        description="custom/directory: pg_dump's own zlib level; unset, a custom archive is compressed by the "
        "agent with zstd on two threads (NAME.dump.zst) and restored while it is dumped",
    )
    globals: bool = True
    lock_wait_timeout: Duration = Field(
        default=600.0,
        description="how long pg_dump and the counting sessions wait for a table lock (a pending ALTER TABLE) "
        "before the dump fails, instead of holding the snapshot open all night",
    )


class DriftConfig(Section):
    """How far production may have moved since the backup before a table counts as drifted.

    Drift is information (Zabbix `pgbackup.drift.tables`, the report), never the verdict.
    """

    max_percent: Annotated[float, Field(ge=0)] = 5.0
    max_rows: Annotated[int, Field(ge=0)] = 0
    warn: bool = Field(default=False, description="make drift beyond the tolerance a WARNING (exit 1)")
    exact: bool = Field(
        default=False,
        description="recount production exactly in one snapshot; default: the statistics (pg_stat_user_tables), "
        "so production's tables are read once a night, by the dump",
    )


class ServerSandboxConfig(Section):
    """A server where the agent may create and drop a scratch database (never the source database)."""

    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    user: str | None = None
    password: SecretStr | None = None
    maintenance_db: str = "postgres"
    database_prefix: str = "pgbv_verify_"

    _secret_file = field_validator("password", mode="before")(read_secret)


class DockerSandboxConfig(Section):
    """The throwaway container: the production container's image unless `image` is given."""

    image: str | None = None
    network: str | None = None


class VerifyConfig(Section):
    """How a backup is proven."""

    sandbox: Literal["local", "docker", "server"] = "local"
    run_as: str = Field(
        default=DEFAULT_ACCOUNT, description="unprivileged account the local sandbox runs as when the agent is root"
    )
    allow_privileged_run_as: bool = Field(
        default=False, description="let the sandbox run as root or postgres (code in a dump would run as it)"
    )
    allow_network: bool = Field(
        default=False,
        description="let the sandbox start where it cannot be cut off from the network (local: no namespaces; "
        "docker: a remote engine, then on an internal network)",
    )
    jobs: Annotated[int, Field(ge=1, le=64)] = 2
    drift: DriftConfig = DriftConfig()
    content: Literal["full", "sample", "off"] | None = Field(
        default=None, description="content checksums in the snapshot; unset: full below content_full_below_gb"
    )
    content_full_below_gb: Annotated[float, Field(ge=0)] = Field(
        default=20.0, description="unset content: databases smaller than this are hashed in full, larger sampled"
    )
    content_sample_percent: Annotated[float, Field(gt=0, le=100)] = Field(
        default=5.0, description="share of each table's rows (by primary-key hash) hashed under content: sample"
    )
    assertions: Assertions = Field(default_factory=list, description="the user's rules about the restored data")
    temp_dir: Path | None = None
    template_dir: Path | None = Field(
        default=None, description="where the local sandbox's pristine initdb is kept; unset: the agent's cache"
    )
    server: ServerSandboxConfig | None = None
    docker: DockerSandboxConfig = DockerSandboxConfig()

    @model_validator(mode="after")
    def _server_named(self) -> VerifyConfig:
        if self.sandbox == "server" and self.server is None:
            raise ValueError("sandbox 'server' needs a server: section (host, port, user)")
        return self


class TrendsConfig(Section):
    """Thresholds of the trend checks, which compare this run with the previous backups and runs."""

    size_drop_percent: Annotated[float, Field(ge=0, le=100)] = Field(
        default=50.0, description="warn when the newest backup is this much smaller than the previous one"
    )
    duration_factor: Annotated[float, Field(gt=1)] = Field(
        default=3.0, description="warn when dump or restore takes this many times the median of recent runs"
    )
    duration_window: Annotated[int, Field(ge=1)] = 7
    duration_min_seconds: Annotated[float, Field(ge=0)] = Field(
        default=30.0, description="durations below this never warn (noise on small databases)"
    )
    row_drop_percent: Annotated[float, Field(ge=0, le=100)] = Field(
        default=20.0, description="warn when a table lost this share of its rows since the previous backup"
    )
    row_drop_min_rows: Annotated[int, Field(ge=0)] = Field(
        default=10, description="...and at least this many rows (tiny tables are noise)"
    )


class ChecksConfig(Section):
    """Thresholds of the check catalogue."""

    max_age_hours: Annotated[float, Field(gt=0)] = 36.0
    min_count: Annotated[int, Field(ge=0)] = 3
    disabled: list[str] = Field(default_factory=list)
    trends: TrendsConfig = TrendsConfig()


class RetentionConfig(Section):
    """Which backups are kept: everything younger than keep_days, at least keep_min, plus optional GFS."""

    keep_days: Annotated[int, Field(ge=0)] = 14
    keep_min: Annotated[int, Field(ge=1)] = 3
    keep_daily: Annotated[int, Field(ge=0)] | None = None
    keep_weekly: Annotated[int, Field(ge=0)] | None = None
    keep_monthly: Annotated[int, Field(ge=0)] | None = None


class ZabbixConfig(Section):
    """Where results are pushed. `server` may list several HA nodes separated by commas or ';'."""

    server: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 10051
    host: str | None = None
    agent_config: Path | None = None
    timeout: Annotated[float, Field(gt=0)] = 10.0
    spool_max: Annotated[int, Field(ge=1)] = 50_000  # three nights of a 5,000-table database
    lld_retry_seconds: Annotated[float, Field(ge=0)] = Field(
        default=90.0,
        description="how long to go on retrying values of newly discovered items once Zabbix has stopped "
        "creating more of them (it accepts them after its next configuration cache update, "
        "CacheUpdateFrequency, 60 s by default)",
    )

    @model_validator(mode="after")
    def _destination(self) -> ZabbixConfig:
        if self.agent_config is None and not (self.server and self.host):
            raise ValueError("name server and host, or agent_config to read them from")
        return self


_DELAY = re.compile(r"^(\d+)([smh]?)$")
_DELAY_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_DELAY_MAX_SECONDS = 12 * 3600  # the run must start long before the next night's slot


class ScheduleConfig(Section):
    """When the daemon (and the systemd timer) runs `verifier run`."""

    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "03:30"
    timezone: str = "UTC"
    randomized_delay: str = "10m"
    # weekly: the daemon runs `verifier selftest` every 7 days (with source.databases, on one database in turn)
    selftest: Literal["off", "weekly"] = "off"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        # zoneinfo shows times and checks the slots, pytz is what `schedule` reads: both must know it
        try:
            ZoneInfo(name)
            pytz.timezone(name)
        except (ZoneInfoNotFoundError, ValueError, pytz.UnknownTimeZoneError):
            raise ValueError(f'unknown time zone "{name}" (e.g. Europe/Moscow, UTC)') from None
        return name

    @field_validator("randomized_delay")
    @classmethod
    def _delay_readable(cls, text: str) -> str:
        if _DELAY.match(text.strip()) is None:
            raise ValueError(f'expected e.g. 10m, 600s or 1h, got "{text}"')
        if _delay_seconds(text) > _DELAY_MAX_SECONDS:
            raise ValueError(f'at most {_DELAY_MAX_SECONDS // 3600}h, got "{text}"')
        return text

    @property
    def randomized_delay_seconds(self) -> int:
        """Returns `randomized_delay` ("10m", "600", "600s", "1h") in seconds."""
        return _delay_seconds(self.randomized_delay)

    @property
    def display_zone(self) -> ZoneInfo:
        """Returns the zone times are shown in: this schedule's (checked at load time), else UTC."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


def _delay_seconds(text: str) -> int:
    match = _DELAY.match(text.strip())
    assert match is not None, "validated when the config loaded"
    return int(match.group(1)) * _DELAY_UNITS[match.group(2)]


class EmailConfig(Section):
    """Optional e-mail of the report after each run."""

    to: list[str]
    sender: str = Field(alias="from")
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    security: Literal["none", "starttls", "ssl"] = "starttls"
    user: str | None = None
    password: SecretStr | None = None
    only_on_problem: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle for a private mail server's certificate")
    timeout: Annotated[float, Field(gt=0)] = 30.0

    _secret_file = field_validator("password", mode="before")(read_secret)


class ReportConfig(Section):
    """Report targets besides the console (the JSON file in reports/ is always written)."""

    html: bool = True
    email: EmailConfig | None = None
    keep: Annotated[int, Field(ge=1)] = 90


class PrometheusConfig(Section):
    """Metrics beside Zabbix: the run's values in a textfile for node_exporter's textfile collector."""

    textfile: Path = Field(description="the .prom file node_exporter's --collector.textfile.directory holds")

    @field_validator("textfile")
    @classmethod
    def _prom_file(cls, path: Path) -> Path:
        if path.suffix != ".prom":
            raise ValueError(f'expected a file ending in .prom (node_exporter reads no other), got "{path}"')
        return path


class PostgresConfig(Section):
    """Where PostgreSQL programs are found (default: PATH, then /usr/lib/postgresql/*/bin)."""

    bin_dir: Path | None = None


class Config(Section):
    """The whole configuration."""

    source: SourceConfig
    repository: RepositoryConfig = RepositoryConfig()
    dump: DumpConfig = DumpConfig()
    verify: VerifyConfig = VerifyConfig()
    checks: ChecksConfig = ChecksConfig()
    retention: RetentionConfig = RetentionConfig()
    zabbix: ZabbixConfig | None = None
    prometheus: PrometheusConfig | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    report: ReportConfig = ReportConfig()
    postgres: PostgresConfig = PostgresConfig()
    run_timeout: Duration = Field(
        default=6 * 3600.0, description="a run still going after this ends cleanly, as CRITICAL, with its report"
    )
    offsite: list[OffsiteTargetConfig] = Field(default_factory=list)
    encryption: EncryptionConfig | None = None
    offsite_retention: RetentionConfig = RetentionConfig(keep_days=60, keep_min=7)
    physical: PhysicalConfig | None = Field(
        default=None, description="physical backups (pgBackRest) proven at a known instant; absent: off"
    )

    @model_validator(mode="after")
    def _offsite_encrypted(self) -> Config:
        if not self.dump.enabled and self.physical is None:
            raise ValueError("dump: enabled: false leaves verifier run nothing to prove without a physical: section")
        if self.offsite and self.encryption is None:
            raise ValueError("offsite: needs encryption: (gpg recipients and public_keys): nothing leaves in clear")
        names = [offsite_target_name(target) for target in self.offsite]
        if len(set(names)) != len(names):
            raise ValueError("offsite: two targets share a name: give each a distinct name:")
        return self


def load_config(path: Path | None = None) -> Config:
    """Returns the validated config read from `path` (default /etc/pg-backup-verifier/config.yaml).

    Raises ConfigError listing every problem with its YAML path.
    """
    path = path or DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        create = f"verifier config example > {shlex.quote(str(path))}"
        if not path.parent.is_dir():
            create = f"install -d -m 0700 {shlex.quote(str(path.parent))} && {create}"
        raise ConfigError(f"config file {path} not found: create it (`{create}`), edit it, or pass --config") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    return parse_config(text, origin=str(path))


def parse_config(text: str, *, origin: str = "<config>", environment: dict[str, str] | None = None) -> Config:
    """Returns the validated config from YAML `text`. Raises ConfigError naming every bad YAML path."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{origin}:{where}: not valid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections (source:, repository:, …) at the top")
    problems: list[str] = []
    interpolated = interpolate(raw, (), os.environ if environment is None else environment, problems)
    try:
        config = Config.model_validate(interpolated)
    except ValidationError as error:
        problems.extend(describe(detail, Config) for detail in error.errors())
        config = None
    if len(problems) == 1:  # the usual case: one line
        raise ConfigError(f"{origin}: {problems[0]}")
    if problems or config is None:
        listing = "".join(f"\n  {problem}" for problem in problems)
        raise ConfigError(f"{origin}: {len(problems)} problems:{listing}")
    return config


def dump_effective(config: Config) -> str:
    """Returns the effective config as YAML, with every secret masked."""
    data = config.model_dump(mode="json", by_alias=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
