"""The Zabbix values of a report as Prometheus metric families: one metric per item key, its key's
parameters as labels, and `db` on every sample.

There is no second computation: every sample is one `zabbix.values.Value` that `values_from_report` made
(the key parsed back by `keys.key_parameters`), so Prometheus and Zabbix always say the same. What is
not a number (the text report, the discovery rules) has no metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily

from verifier.zabbix import keys
from verifier.zabbix.values import Value

DB_LABEL = "db"


@dataclass(frozen=True)
class Metric:
    """A gauge: its name, help text, and the labels its key's parameters fill, in order."""

    name: str
    help: str
    parameters: tuple[str, ...] = ()
    feature: str | None = None  # an optional feature's metric: gone from the file when the feature is off

    @property
    def labels(self) -> tuple[str, ...]:
        """Returns every label of its samples: `db` first, then the parameters' labels."""
        return (DB_LABEL, *(label for label in self.parameters if label and label != DB_LABEL))


_TABLE = (DB_LABEL, "table")
_DB = (DB_LABEL,)
_TARGET = ("target",)
_FEATURE = ("",)  # `base[]`: the feature's one empty parameter is no label

METRICS: dict[str, Metric] = {
    keys.HEARTBEAT: Metric("pgbackup_last_report_timestamp_seconds", "Unix time of the agent's last report."),
    keys.BACKUP_AGE: Metric("pgbackup_backup_age_seconds", "Age of the newest complete backup at the report."),
    keys.BACKUP_COUNT: Metric("pgbackup_backups", "Complete backups in the repository."),
    keys.BACKUP_SIZE: Metric("pgbackup_backup_size_bytes", "Bytes of the newest backup's files."),
    keys.BACKUP_TOTAL_SIZE: Metric("pgbackup_repository_size_bytes", "Bytes of all backups in the repository."),
    keys.DUMP_STATUS: Metric("pgbackup_dump_ok", "1 when the last dump completed with its manifest, 0 when it failed."),
    keys.DUMP_DURATION: Metric("pgbackup_dump_duration_seconds", "Seconds the last dump took."),
    keys.VERIFY_STATUS: Metric(
        "pgbackup_verify_ok", "1 when the last verification restored the backup and proved it exact, else 0."
    ),
    keys.VERIFY_DURATION: Metric("pgbackup_verify_duration_seconds", "Seconds the last verification took."),
    keys.VERIFY_MISMATCHED_TABLES: Metric(
        "pgbackup_verify_mismatched_tables", "Tables whose restored row count differs from the snapshot."
    ),
    keys.VERIFY_LAST_SUCCESS: Metric(
        "pgbackup_verify_last_success_timestamp_seconds", "Unix time of the last verification that passed."
    ),
    keys.VERIFY_CONTENT_DIFFERING: Metric(
        "pgbackup_verify_content_differing_tables",
        "Tables whose restored content checksum differs from the snapshot.",
        _FEATURE,
        "contents",
    ),
    keys.DRIFT_TABLES: Metric(
        "pgbackup_drift_tables", "Tables production moved beyond verify.drift since the backup (never the verdict)."
    ),
    keys.RECOVERY_RTO: Metric("pgbackup_recovery_rto_seconds", "Seconds the last restore of the newest backup took."),
    keys.RECOVERY_RPO: Metric("pgbackup_recovery_rpo_seconds", "Seconds since the newest verified backup's snapshot."),
    keys.OFFSITE_STATUS: Metric(
        "pgbackup_offsite_ok",
        "1 when every off-site target took the verified backups and read back intact.",
        _FEATURE,
        "offsite",
    ),
    keys.SELFTEST_STATUS: Metric(
        "pgbackup_selftest_ok",
        "1 when the last self-test caught every damage done to a restored copy.",
        _FEATURE,
        "selftest",
    ),
    keys.SELFTEST_LAST_RUN: Metric(
        "pgbackup_selftest_last_run_timestamp_seconds", "Unix time the last self-test finished.", _FEATURE, "selftest"
    ),
    keys.PHYSICAL_STATUS: Metric(
        "pgbackup_physical_ok",
        "1 when the newest physical backup, recovered to an instant, held what production held then.",
        _FEATURE,
        "physical",
    ),
    keys.PHYSICAL_RTO: Metric(
        "pgbackup_physical_rto_seconds", "Seconds the physical proof's restore and recovery took.", _FEATURE, "physical"
    ),
    keys.PHYSICAL_FULL_AGE: Metric(
        "pgbackup_physical_full_age_seconds",
        "Seconds since the newest full physical backup ended.",
        _FEATURE,
        "physical",
    ),
    keys.PHYSICAL_BACKUP_AGE: Metric(
        "pgbackup_physical_backup_age_seconds", "Seconds since the newest physical backup ended.", _FEATURE, "physical"
    ),
    keys.PHYSICAL_ARCHIVE_LAG: Metric(
        "pgbackup_physical_archive_lag_seconds",
        "Seconds since the newest WAL segment reached the archive.",
        _FEATURE,
        "physical",
    ),
    keys.PHYSICAL_WINDOW: Metric(
        "pgbackup_physical_window_seconds",
        "Seconds from the oldest physical backup's end to the newest archived WAL segment.",
        _FEATURE,
        "physical",
    ),
    keys.TABLE_ROWS: Metric("pgbackup_table_rows", "Exact row count in the dump's snapshot.", _TABLE),
    keys.TABLE_ROWS_RESTORED: Metric("pgbackup_table_restored_rows", "Row count in the restored copy.", _TABLE),
    keys.TABLE_DIFF: Metric("pgbackup_table_rows_diff", "Restored rows minus snapshot rows (0: exact).", _TABLE),
    keys.DB_TABLES: Metric("pgbackup_db_tables", "Tables counted in the last verified backup.", _DB),
    keys.DB_ROWS: Metric("pgbackup_db_rows", "Sum of all tables' rows in the dump's snapshot.", _DB),
    keys.OFFSITE_AGE: Metric(
        "pgbackup_offsite_age_seconds", "Age of the newest copy on the target.", _TARGET, "offsite"
    ),
    keys.OFFSITE_UPLOAD_STATUS: Metric(
        "pgbackup_offsite_upload_ok", "1 when the last run uploaded what the target missed.", _TARGET, "offsite"
    ),
    keys.OFFSITE_PROOF_STATUS: Metric(
        "pgbackup_offsite_proof_ok", "1 when every object on the target read back with its sha256.", _TARGET, "offsite"
    ),
    keys.OFFSITE_COUNT: Metric("pgbackup_offsite_copies", "Backups held on the target.", _TARGET, "offsite"),
    keys.ASSERTION_STATUS: Metric(
        "pgbackup_assertion_ok",
        "1 when the user's assertion gave the expected value on the restored copy.",
        ("assertion",),
    ),
    keys.NIGHT_DATABASES: Metric(
        "pgbackup_night_databases", "1 per database of the last run (sum over db: the night's databases)."
    ),
    keys.NIGHT_DATABASES_FAILED: Metric(
        "pgbackup_night_databases_failed",
        "1 when this database's part of the last run failed, else 0 (sum over db: the night's failed databases).",
    ),
    keys.PROOF_PROBLEMS: Metric(
        "pgbackup_proof_problems",
        "Objects this proof check named as restored otherwise than the snapshot held them (0: none).",
        ("check",),
    ),
}
"""Each numeric item key (the base, without parameters) and its metric; the text report and the discovery
rules have none (see `UNMEASURED`)."""

UNMEASURED = frozenset(
    {
        keys.REPORT,
        keys.TABLE_DISCOVERY,
        keys.DB_DISCOVERY,
        keys.OFFSITE_DISCOVERY,
        keys.ASSERTION_DISCOVERY,
        keys.PROOF_DISCOVERY,
        keys.OFFSITE_FEATURE_DISCOVERY,
        keys.SELFTEST_FEATURE_DISCOVERY,
        *keys.DB_MIRRORS.values(),  # a host key's value again under its database: here, its metric's `db`
        keys.PHYSICAL_FEATURE_DISCOVERY,
        keys.CONTENTS_FEATURE_DISCOVERY,
    }
)


@dataclass(frozen=True)
class Sample:
    """One sample: the metric, its labels (`db` included) and its value."""

    metric: Metric
    labels: dict[str, str]
    value: float


def samples(values: Iterable[Value], database: str) -> list[Sample]:
    """Returns the samples of `values` (a report's, `values_from_report`), `database` their `db` unless the
    key names its own. Raises ValueError for a key with no metric that is not known to have none."""
    found = []
    for value in values:
        base, parameters = keys.key_parameters(value.key)
        if base in UNMEASURED:
            continue
        if base not in METRICS:
            raise ValueError(f"no Prometheus metric for the Zabbix key {base}: add it to METRICS or UNMEASURED")
        metric = METRICS[base]
        if len(parameters) != len(metric.parameters):
            raise ValueError(f"{value.key}: expected the parameters {metric.parameters}")
        labels = {DB_LABEL: database}
        labels.update(
            (label, parameter) for label, parameter in zip(metric.parameters, parameters, strict=True) if label
        )
        found.append(Sample(metric, labels, float(value.value)))
    return found


def families(found: Iterable[Sample]) -> list[GaugeMetricFamily]:
    """Returns the samples as gauge families, one per metric, in METRICS' order."""
    by_name: dict[str, GaugeMetricFamily] = {}
    for metric in METRICS.values():
        by_name[metric.name] = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)
    for sample in found:
        by_name[sample.metric.name].add_metric([sample.labels[label] for label in sample.metric.labels], sample.value)
    return [family for family in by_name.values() if family.samples]
