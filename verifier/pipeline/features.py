"""Which optional features the agent uses, from its config and its repository: their Zabbix items are
discovered only where they are on (`zabbix.values.Features`)."""

from __future__ import annotations

from verifier.config import Config
from verifier.pipeline.selftest import STATE_FILE
from verifier.repository.backups import Repository
from verifier.zabbix.values import Features


def optional_features(config: Config) -> Features:
    """Returns the features that are on: off-site copies when `offsite:` names a target; the self-test once
    one has run (its record is in the repository). Not `schedule.selftest` alone: only the daemon runs the
    weekly self-test (the systemd timer runs `verifier run`), so its items could stay empty; and a
    self-test that ran must run again (its staleness trigger), schedule or not. The physical proof's
    when `physical:` names a stanza (every `verifier run` proves it then); the content checksums' where
    logical dumps are taken (`dump.enabled`) without `verify.content: off` (else no backup carries checksums
    to compare)."""
    selftest_ran = (Repository(config.repository.path).state_dir / STATE_FILE).exists()
    return Features(
        offsite=bool(config.offsite),
        selftest=selftest_ran,
        physical=config.physical is not None,
        contents=config.dump.enabled and config.verify.content != "off",
    )
