"""Writing a report's metrics to the textfile node_exporter's textfile collector reads.

The file is replaced atomically (a temporary file in the same directory, fsync, rename, fsync of the
directory): node_exporter, which reads only `*.prom`, never sees half a file. Like Zabbix's items, a
metric keeps its last value until it is measured again: a metric this report did not measure for a
database (`verifier check` takes no dump, `--quick` restores nothing) is carried over from the file as it
was, and one measured now replaces all of that database's samples of it (a dropped table's samples go).
An optional feature switched off takes its metrics with it. A file that cannot be written is a WARNING
result in one line, never an exception: the backup's verdict does not depend on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from verifier.config import PrometheusConfig
from verifier.prometheus.metrics import DB_LABEL, METRICS, Sample, families, samples
from verifier.report import CheckResult, Report, Status
from verifier.repository.backups import Backup
from verifier.zabbix.values import Features, Values, values_from_report

logger = logging.getLogger(__name__)

CHECK_NAME = "prometheus"
MODE = 0o644  # node_exporter runs as another user; the metrics hold no secret


def write_report_metrics(
    prometheus: PrometheusConfig,
    report: Report,
    *,
    database: str,
    backups: Sequence[Backup],
    last_success: datetime | None,
    features: Features | None,
    now: datetime | None = None,
) -> CheckResult:
    """Writes the metrics of `report` — the very values `push_report` sends Zabbix — to
    `prometheus.textfile`, merged with the metrics already there. Returns the `prometheus` check result:
    OK with the number of samples, or a WARNING naming the file and the error; never raises."""
    values = values_from_report(
        report, backups, now or datetime.now(UTC), database=database, last_success=last_success, features=features
    )
    return write_metrics(prometheus.textfile, values, database=database, features=features)


def write_metrics(path: Path, values: Values, *, database: str, features: Features | None) -> CheckResult:
    """Writes `values` (one database's) to `path`, merged as the module says. Returns the `prometheus`
    check result; never raises."""
    try:
        fresh = samples(values.all(), database)
        kept = [sample for sample in _previous(path) if _still_valid(sample, fresh, features)]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families([*kept, *fresh])))
        _replace(path, generate_latest(registry))
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        logger.warning("metrics not written to %s: %s", path, reason)
        return CheckResult(CHECK_NAME, Status.WARNING, f"metrics not written to {path}: {reason}")
    return CheckResult(
        CHECK_NAME, Status.OK, f"{len(fresh)} samples written to {path}", metrics={"samples": len(fresh) + len(kept)}
    )


class _Families:
    """A collector of fixed families (what `CollectorRegistry` renders)."""

    def __init__(self, found: list[GaugeMetricFamily]) -> None:
        self._found = found

    def collect(self) -> list[GaugeMetricFamily]:
        return self._found


def _previous(path: Path) -> list[Sample]:
    """Returns the samples in the file as it is, those of known metrics only. Nothing when there is no file;
    an unreadable or garbled one is logged and counts as empty (the new file replaces it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        logger.warning("previous metrics in %s unreadable (%s): written anew", path, error)
        return []
    by_name = {metric.name: metric for metric in METRICS.values()}
    found = []
    try:
        for family in text_string_to_metric_families(text):
            metric = by_name.get(family.name)
            if metric is None:  # a metric this version no longer writes
                continue
            found += [
                Sample(metric, dict(sample.labels), float(sample.value))
                for sample in family.samples
                if set(sample.labels) == set(metric.labels)
            ]
    except ValueError as error:
        logger.warning("previous metrics in %s unreadable (%s): written anew", path, error)
        return []
    return found


def _still_valid(sample: Sample, fresh: list[Sample], features: Features | None) -> bool:
    """Returns True when an old sample stays: its metric was not measured now for its database, and its
    feature, if any, is not switched off."""
    if features is not None and sample.metric.feature is not None and not getattr(features, sample.metric.feature):
        return False
    database = sample.labels[DB_LABEL]
    return not any(new.metric is sample.metric and new.labels[DB_LABEL] == database for new in fresh)


def _replace(path: Path, content: bytes) -> None:
    """Replaces `path` with `content` atomically, mode 0644 whatever the umask. Raises OSError."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.prom: node_exporter skips it
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), MODE)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
