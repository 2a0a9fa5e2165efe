"""The example alert rules (deploy/prometheus/pg-backup-verifier.rules.yml, docs/prometheus.md), checked
and unit-tested by Prometheus's own promtool on the series the agent's textfile carries: a stale backup,
a failed proof and mismatched tables fire; a healthy night fires nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.requirements import need

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "pg-backup-verifier.rules.yml"
HOUR = 3600
LABELS = {"db": "shop", "instance": "db1:9100", "job": "node"}


def series(name: str, values: str, **extra: str) -> dict[str, str]:
    labels = ",".join(f'{key}="{value}"' for key, value in {**LABELS, **extra}.items())
    return {"series": f"{name}{{{labels}}}", "values": values}


def healthy(hours: int = 48) -> list[dict[str, str]]:
    """A night every hour: reported now, a backup an hour old, proven exact."""
    return [
        series("pgbackup_last_report_timestamp_seconds", f"0+{HOUR}x{hours}"),
        series("pgbackup_backup_age_seconds", f"{HOUR}x{hours}"),
        series("pgbackup_verify_ok", f"1x{hours}"),
        series("pgbackup_dump_ok", f"1x{hours}"),
        series("pgbackup_verify_last_success_timestamp_seconds", f"0+{HOUR}x{hours}"),
        series("pgbackup_verify_mismatched_tables", f"0x{hours}"),
        series("pgbackup_table_rows_diff", f"0x{hours}", table="public.orders"),
    ]


def rule(name: str) -> dict[str, Any]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return next(rule for group in groups for rule in group["rules"] if rule.get("alert") == name)


def fired(name: str, value: float, **extra: str) -> dict[str, Any]:
    """Returns the alert `name` as promtool expects it, its annotations filled from its labels and value."""
    labels = {**LABELS, **extra, **rule(name)["labels"]}

    def fill(text: str) -> str:
        text = text.replace("{{ $value }}", f"{value:g}")
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda match: labels[match.group(1)], text)

    return {"exp_labels": labels, "exp_annotations": {k: fill(v) for k, v in rule(name)["annotations"].items()}}


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    need(shutil.which("promtool") is not None, "promtool (dev/install-prometheus)")
    return subprocess.run(["promtool", *map(str, arguments)], capture_output=True, text=True, check=False, timeout=60)


def test_the_rules_are_valid() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("case", "input_series", "alerts"),
    [
        ("healthy", healthy(), {"PgBackupStale": [], "PgBackupProofFailed": [], "PgBackupTablesMismatched": [],
                                "PgBackupTableRowsDiffer": [], "PgBackupAgentSilent": [], "PgBackupDumpFailed": [],
                                "PgBackupNoProofForTooLong": []}),
        ("failed proof", [*healthy()[:2], series("pgbackup_verify_ok", "0x48")],
         {"PgBackupProofFailed": [fired("PgBackupProofFailed", 0)]}),
        ("mismatched tables", [
            *healthy()[:2], series("pgbackup_verify_mismatched_tables", "1x48"),
            series("pgbackup_table_rows_diff", "-1x48", table="public.orders"),
        ], {"PgBackupTablesMismatched": [fired("PgBackupTablesMismatched", 1)],
            "PgBackupTableRowsDiffer": [fired("PgBackupTableRowsDiffer", -1, table="public.orders")]}),
    ],
)  # fmt: skip
def test_alerts_at_ten_hours(
    case: str, input_series: list[dict[str, str]], alerts: dict[str, list[Any]], tmp_path: Path
) -> None:
    tests = [{"alertname": name, "eval_time": "10h", "exp_alerts": expected} for name, expected in alerts.items()]
    assert_promtool_passes(tmp_path, input_series, tests)


def test_a_backup_older_than_36h_fires_even_when_the_agent_went_quiet(tmp_path: Path) -> None:
    quiet = [
        series("pgbackup_last_report_timestamp_seconds", "0x48"),
        series("pgbackup_backup_age_seconds", f"{HOUR}x48"),
    ]
    tests = [
        {"alertname": "PgBackupStale", "eval_time": "34h", "exp_alerts": []},  # 35h old
        {"alertname": "PgBackupStale", "eval_time": "36h", "exp_alerts": [fired("PgBackupStale", 37 * HOUR)]},
        {
            "alertname": "PgBackupAgentSilent",
            "eval_time": "27h",
            "exp_alerts": [fired("PgBackupAgentSilent", 27 * HOUR)],
        },
    ]
    assert_promtool_passes(tmp_path, quiet, tests)


def assert_promtool_passes(tmp_path: Path, input_series: list[dict[str, str]], tests: list[dict[str, Any]]) -> None:
    unit = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1h", "input_series": input_series, "alert_rule_test": tests}],
    }
    path = tmp_path / "rules.test.yml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False), encoding="utf-8")
    tested = promtool("test", "rules", path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
