"""Which optional features the agent uses, from its config and its repository: their Zabbix items are
discovered only where they are on (`zabbix.values.Features`)."""

from __future__ import annotations

from verifier.config import Config
from verifier.pipeline.selftest import STATE_FILE
from verifier.repository.backups import Repository
from verifier.zabbix.values import Features


def optional_features(config: Config) -> Features:
    """Returns the features that are on: off-site copies when `offsite:` names a target; the self-test when
    `schedule.selftest` is weekly or a self-test has run (one that ran must run again: its staleness trigger)."""
    selftest_ran = (Repository(config.repository.path).state_dir / STATE_FILE).exists()
    return Features(offsite=bool(config.offsite), selftest=config.schedule.selftest == "weekly" or selftest_ran)
