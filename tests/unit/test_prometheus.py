"""The Prometheus textfile: every Zabbix value as a metric (one source, no second computation), rendered and
parsed back by prometheus-client itself, written atomically, merged with what the file held."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.sample_report import HOSTILE_TABLE, sample_manifest, sample_report
from verifier.names import qualified
from verifier.prometheus.metrics import METRICS, UNMEASURED
from verifier.prometheus.textfile import write_metrics
from verifier.report import AssertionOutcome, CheckResult, Report, Status
from verifier.repository.backups import Backup
from verifier.zabbix import keys
from verifier.zabbix.values import Features, Values, values_from_report

NOW = datetime(2026, 11, 26, 0, 35, tzinfo=UTC)
ON = Features(offsite=True, selftest=True)
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def full_report() -> Report:
    """Returns the sample night with an off-site target, an assertion and a self-test result."""
    report = sample_report()
    metrics: dict[str, int | float | str] = {
        "target": "vault", "upload_status": 1, "proof_status": 1, "age_seconds": 600, "count": 3,
    }  # fmt: skip
    report.results += [
        CheckResult("offsite vault", Status.OK, "uploaded", metrics=metrics),
        CheckResult("selftest", Status.OK, "all caught", metrics={"passed": 1, "finished_at": 1_790_000_000}),
    ]
    assert report.verification is not None
    report.verification.assertions = [AssertionOutcome("plans", passed=True, expected=">= 3", got="4")]
    return report


def backups() -> list[Backup]:
    manifest = sample_manifest()
    return [
        Backup(manifest.name, Path("/r/x.dump"), Path("/r/x.json"), manifest, manifest.created_at, 48_312_000, "custom")
    ]


def report_values(report: Report, features: Features | None = ON) -> Values:
    return values_from_report(report, backups(), NOW, database="eatfit24", features=features)


def read(path: Path) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        assert family.type == "gauge" and family.documentation, family.name
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_every_zabbix_key_has_a_metric_or_is_known_to_have_none() -> None:
    bases = {keys.key_parameters(key)[0] for key in keys.all_item_keys()}
    assert bases - set(METRICS) - UNMEASURED == set()
    assert set(METRICS) | UNMEASURED <= bases
    names = [metric.name for metric in METRICS.values()]
    assert len(names) == len(set(names)) and all(name.startswith("pgbackup_") for name in names)


@pytest.mark.parametrize(
    "key", [keys.table_item_key(keys.TABLE_ROWS, 'sh"op', 'odd "schema"', "a,b [c]"), "pgbackup.x[]", "a.b"]
)
def test_key_parameters_inverts_the_key_functions(key: str) -> None:
    base, parameters = keys.key_parameters(key)
    rebuilt = keys.feature_item_key(base) if key.endswith("[]") else keys.item_key(base, *parameters)
    assert (rebuilt if parameters else base) == key


def test_every_numeric_value_zabbix_gets_is_a_sample_with_the_same_number(tmp_path: Path) -> None:
    textfile = tmp_path / "pgbv.prom"
    values = report_values(full_report())
    result = write_metrics(textfile, values, database="eatfit24", features=ON)
    assert result.status is Status.OK, result.summary
    written = read(textfile)
    numeric = [
        value
        for value in values.items + values.prototypes
        if keys.key_parameters(value.key)[0] not in (keys.REPORT, *keys.DB_MIRRORS.values())
    ]
    mirrors = {keys.key_parameters(value.key)[0]: value.value for value in values.prototypes}
    for host_key, mirror in keys.DB_MIRRORS.items():  # the same value as the host key's sample with its `db`
        host_value = next((value.value for value in values.items if value.key == host_key), None)
        assert mirrors.get(mirror) == host_value, mirror
    assert result.metrics["samples"] == len(numeric) == sum(len(samples) for samples in written.values())
    assert result.summary == f"{len(numeric)} samples written to {textfile}"
    for value in numeric:
        base, parameters = keys.key_parameters(value.key)
        metric = METRICS[base]
        labels = {
            "db": "eatfit24",
            **{label: p for label, p in zip(metric.parameters, parameters, strict=True) if label},
        }
        assert written[metric.name][tuple(sorted(labels.items()))] == float(value.value), value.key
    hostile = (("db", "eatfit24"), ("table", qualified("public", HOSTILE_TABLE)))
    assert written["pgbackup_table_rows"][hostile] == 500
    assert written["pgbackup_offsite_upload_ok"][(("db", "eatfit24"), ("target", "vault"))] == 1
    assert written["pgbackup_assertion_ok"][(("assertion", "plans"), ("db", "eatfit24"))] == 1
    assert written["pgbackup_selftest_ok"] == {(("db", "eatfit24"),): 1}


def test_what_a_report_did_not_measure_keeps_its_last_value_and_what_it_did_replaces_it(tmp_path: Path) -> None:
    textfile = tmp_path / "pgbv.prom"
    write_metrics(textfile, report_values(full_report()), database="eatfit24", features=ON)
    write_metrics(textfile, report_values(sample_report(problem=False)), database="other", features=ON)

    check = sample_report(problem=False)  # `verifier check`: no dump, one table fewer, no off-site this time
    check.dump = None
    later = values_from_report(check, backups(), NOW + timedelta(hours=1), database="eatfit24", features=ON)
    assert write_metrics(textfile, later, database="eatfit24", features=ON).status is Status.OK
    written = read(textfile)
    db = (("db", "eatfit24"),)
    assert written["pgbackup_dump_ok"][db] == 1  # the run's, kept
    assert written["pgbackup_last_report_timestamp_seconds"][db] == (NOW + timedelta(hours=1)).timestamp()
    tables = {dict(labels)["table"] for labels in written["pgbackup_table_rows"] if dict(labels)["db"] == "eatfit24"}
    assert tables == {"public.meals", "public.users"}  # the table the check no longer has is gone
    assert (("db", "other"),) in written["pgbackup_verify_ok"]  # another database's samples are its own
    assert written["pgbackup_offsite_ok"][db] == 1  # not measured by the check, the feature still on

    off = Features(offsite=False, selftest=True)
    write_metrics(textfile, report_values(check, off), database="eatfit24", features=off)
    written = read(textfile)
    assert not any(name.startswith("pgbackup_offsite_") for name in written)  # switched off: gone
    assert written["pgbackup_selftest_ok"][db] == 1


def test_the_file_is_0644_whatever_the_umask_and_no_temporary_file_stays(tmp_path: Path) -> None:
    textfile = tmp_path / "pgbv.prom"
    textfile.write_text("# an older file\n")
    textfile.chmod(0o600)
    previous = os.umask(0o077)
    try:
        assert (
            write_metrics(textfile, report_values(full_report()), database="eatfit24", features=ON).status is Status.OK
        )
    finally:
        os.umask(previous)
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert [path.name for path in tmp_path.iterdir()] == ["pgbv.prom"]


def test_a_garbled_previous_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    textfile = tmp_path / "pgbv.prom"
    textfile.write_text('pgbackup_dump_ok{db="x" 1\n')
    with caplog.at_level(logging.WARNING):
        result = write_metrics(textfile, report_values(full_report()), database="eatfit24", features=ON)
    assert result.status is Status.OK and "unreadable" in caplog.text
    assert "pgbackup_verify_ok" in read(textfile)


def test_a_file_that_cannot_be_written_is_a_one_line_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    textfile = blocker / "pgbv.prom"
    result = write_metrics(textfile, report_values(full_report()), database="eatfit24", features=ON)
    assert result.status is Status.WARNING
    assert result.summary == f"metrics not written to {textfile}: Not a directory"
    assert [path.name for path in tmp_path.iterdir()] == ["not-a-directory"]


def test_the_documentation_names_every_metric_and_the_readme_points_to_it() -> None:
    root = Path(__file__).resolve().parents[2]
    documentation = (root / "docs" / "prometheus.md").read_text(encoding="utf-8")
    for metric in METRICS.values():
        assert f"`{metric.name}`" in documentation, metric.name
    assert "docs/prometheus.md" in (root / "README.md").read_text(encoding="utf-8")
