"""What the bundled Zabbix template holds besides the items of `keys.py`: its name, its macros
(the thresholds an operator tunes) and its triggers (severity, and what to do when one fires).

`export.py` turns these and the keys into the Zabbix YAML export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifier.zabbix import keys

TEMPLATE_NAME = "PostgreSQL backup verification by Zabbix trapper"


@dataclass(frozen=True)
class Macro:
    """A template macro with its default and what it tunes."""

    name: str
    default: str
    description: str


MACROS: tuple[Macro, ...] = (
    Macro("{$PGBACKUP.AGE.MAX}", "36h", "Newest backup, and last successful verification, may be at most this old."),
    Macro("{$PGBACKUP.COUNT.MIN}", "3", "Fewer backups than this in the repository raise a warning."),
    Macro("{$PGBACKUP.NODATA}", "26h", "No report from the agent for this long means it is not running."),
    Macro("{$PGBACKUP.OFFSITE.AGE.MAX}", "36h", "The newest off-site copy on a target may be at most this old."),
    Macro(
        "{$PGBACKUP.SIZE.DROP}",
        "50",
        "Warn when the newest backup is smaller than this percentage of the previous one.",
    ),
    Macro("{$PGBACKUP.LLD.FILTER.TABLE.MATCHES}", ".*", "Discover only tables whose name matches this regex."),
    Macro(
        "{$PGBACKUP.LLD.FILTER.TABLE.NOT_MATCHES}",
        "CHANGE_IF_NEEDED",
        "Do not discover tables whose name matches this regex.",
    ),
    Macro("{$PGBACKUP.RTO.MAX}", "4h", "Warn when restoring the newest backup takes longer than this (measured RTO)."),
    Macro("{$PGBACKUP.RPO.MAX}", "36h", "The newest verified backup's snapshot may be at most this old (RPO)."),
    Macro("{$PGBACKUP.SELFTEST.AGE.MAX}", "8d", "A self-test that ran once must run again within this time."),
    Macro("{$PGBACKUP.PHYSICAL.FULL.AGE.MAX}", "8d", "The newest full physical backup may be at most this old."),
    Macro("{$PGBACKUP.PHYSICAL.AGE.MAX}", "36h", "The newest physical backup of any type may be at most this old."),
    Macro("{$PGBACKUP.PHYSICAL.ARCHIVE.LAG.MAX}", "15m", "The newest archived WAL segment may be at most this old."),
    Macro("{$PGBACKUP.PHYSICAL.RTO.MAX}", "4h", "Warn when the physical proof's restore and recovery take longer."),
)


@dataclass(frozen=True)
class Trigger:
    """A trigger. `expression` uses `{T}` for the template name; `dependencies` name other triggers."""

    name: str
    expression: str
    priority: str
    scope: str
    description: str
    event_name: str | None = None
    opdata: str | None = None
    dependencies: tuple[str, ...] = ()
    manual_close: bool = False

    def full_expression(self) -> str:
        """Returns the expression with the template name filled in."""
        return self.expression.replace("{T}", TEMPLATE_NAME)


NODATA = "PG backup: Agent sent no report"
STALE = "PG backup: Newest backup is too old"
NO_SUCCESS = "PG backup: No successful verification for too long"
TOO_FEW = "PG backup: Fewer backups than expected"
DUMP_FAILED = "PG backup: Last dump failed"
VERIFY_FAILED = "PG backup: Last verification failed"
MISMATCH = "PG backup: Restored row counts differ from the snapshot"
SIZE_DROP = "PG backup: Newest backup is much smaller than the previous one"
CONTENT_MISMATCH = "PG backup: Restored contents differ from the snapshot"
RTO_HIGH = "PG backup: Restore takes longer than the recovery time objective"
RPO_HIGH = "PG backup: Data-loss window exceeds the recovery point objective"
SELFTEST_FAILED = "PG backup: Self-test missed a damage"
SELFTEST_STALE = "PG backup: Self-test has not run for too long"
TABLE_MISMATCH = "DB {#DB}: Table {#SCHEMA}.{#TABLE}: Restored rows differ from the snapshot"

TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        NODATA,
        f"nodata(/{{T}}/{keys.HEARTBEAT},{{$PGBACKUP.NODATA}})=1",
        "AVERAGE",
        "availability",
        "The agent has not reported for {$PGBACKUP.NODATA}: the timer or daemon is not running, the host is "
        "down, or Zabbix cannot be reached (undelivered values wait in the repository's spool). Check "
        "`systemctl status pg-backup-verifier.timer` and `journalctl -u pg-backup-verifier`.",
        event_name=f"{NODATA} (for {{$PGBACKUP.NODATA}})",
        manual_close=True,
    ),
    Trigger(
        STALE,
        f"last(/{{T}}/{keys.BACKUP_AGE})>{{$PGBACKUP.AGE.MAX}}",
        "HIGH",
        "availability",
        "The newest complete backup is older than {$PGBACKUP.AGE.MAX}: last night's run did not produce one. "
        "Look at the dump trigger and the last report; run `verifier run` by hand to see the error.",
        event_name=f"{STALE} (over {{$PGBACKUP.AGE.MAX}})",
        opdata="Age: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
    Trigger(
        NO_SUCCESS,
        f"now()-last(/{{T}}/{keys.VERIFY_LAST_SUCCESS})>{{$PGBACKUP.AGE.MAX}}",
        "HIGH",
        "availability",
        "No backup has been proven restorable for {$PGBACKUP.AGE.MAX}: you do not know whether you could "
        "restore. Read the last report (item 'Report: Last report') and run `verifier check`.",
        event_name=f"{NO_SUCCESS} (over {{$PGBACKUP.AGE.MAX}})",
        opdata="Last success: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
    Trigger(
        TOO_FEW,
        f"last(/{{T}}/{keys.BACKUP_COUNT})<{{$PGBACKUP.COUNT.MIN}}",
        "WARNING",
        "capacity",
        "The repository holds fewer than {$PGBACKUP.COUNT.MIN} backups: a bad backup could leave you without "
        "a good one. Normal for the first nights after installation; otherwise check retention settings "
        "and free disk space.",
        event_name=f"{TOO_FEW} (less than {{$PGBACKUP.COUNT.MIN}})",
        opdata="Backups: {ITEM.LASTVALUE1}",
    ),
    Trigger(
        DUMP_FAILED,
        f"last(/{{T}}/{keys.DUMP_STATUS})=0",
        "HIGH",
        "availability",
        "The last pg_dump failed, so there is no new backup. The last report names the error (connection, "
        "permissions, disk full, lock timeout); older backups are untouched.",
    ),
    Trigger(
        VERIFY_FAILED,
        f"last(/{{T}}/{keys.VERIFY_STATUS})=0",
        "HIGH",
        "availability",
        "The last backup could not be restored, or the restored copy does not hold what production held. "
        "Do not rely on it: read the last report, keep the previous good backup, run `verifier check`.",
    ),
    Trigger(
        MISMATCH,
        f"last(/{{T}}/{keys.VERIFY_MISMATCHED_TABLES})>0",
        "HIGH",
        "availability",
        "Tables restored from the backup hold a different number of rows than the snapshot the dump was "
        "taken in. The per-table problems name them; the backup is damaged or incomplete.",
        opdata="Tables: {ITEM.LASTVALUE1}",
    ),
    Trigger(
        SIZE_DROP,
        f"last(/{{T}}/{keys.BACKUP_SIZE})<{{$PGBACKUP.SIZE.DROP}}/100*last(/{{T}}/{keys.BACKUP_SIZE},#2)",
        "WARNING",
        "notice",
        "The newest backup is smaller than {$PGBACKUP.SIZE.DROP}% of the previous one: data may have been "
        "deleted in production, or the dump is missing objects. Compare the tables in the last report.",
        event_name=f"{SIZE_DROP} (below {{$PGBACKUP.SIZE.DROP}}%)",
        opdata="Size: {ITEM.LASTVALUE1}",
    ),
    Trigger(
        RTO_HIGH,
        f"last(/{{T}}/{keys.RECOVERY_RTO})>{{$PGBACKUP.RTO.MAX}}",
        "AVERAGE",
        "performance",
        "Restoring the newest backup took longer than {$PGBACKUP.RTO.MAX}: a real recovery would keep the "
        "service down that long. Consider more restore jobs (verify.jobs), faster disks, or another backup "
        "method.",
        event_name=f"{RTO_HIGH} (over {{$PGBACKUP.RTO.MAX}})",
        opdata="Restore: {ITEM.LASTVALUE1}",
    ),
    Trigger(
        RPO_HIGH,
        f"last(/{{T}}/{keys.RECOVERY_RPO})>{{$PGBACKUP.RPO.MAX}}",
        "HIGH",
        "availability",
        "The newest backup proven restorable was taken more than {$PGBACKUP.RPO.MAX} ago: a recovery now would "
        "lose everything written since. Look at the dump and verification triggers and the last report.",
        event_name=f"{RPO_HIGH} (over {{$PGBACKUP.RPO.MAX}})",
        opdata="Window: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
)

CONTENTS_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        CONTENT_MISMATCH,
        f"last(/{{T}}/{keys.feature_item_key(keys.VERIFY_CONTENT_DIFFERING, keys.SINGLETON)})>0",
        "HIGH",
        "availability",
        "Tables restored from the backup hold the right number of rows but different values than the snapshot "
        "the dump was taken in (their content checksums differ). The contents check in the last report names "
        "them.",
        opdata="Tables: {ITEM.LASTVALUE1}",
    ),
)
"""The content checksums' trigger: a prototype of their feature's discovery (not with verify.content: off)."""

_SELFTEST_STATUS = keys.feature_item_key(keys.SELFTEST_STATUS, keys.SINGLETON)
_SELFTEST_LAST_RUN = keys.feature_item_key(keys.SELFTEST_LAST_RUN, keys.SINGLETON)

SELFTEST_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        SELFTEST_FAILED,
        f"last(/{{T}}/{_SELFTEST_STATUS})=0",
        "HIGH",
        "availability",
        "The last `verifier selftest` damaged a restored copy and the comparison did not name every damage (or "
        "could not run): the verifier itself may pass a bad backup. Run `verifier selftest` to see which.",
    ),
    Trigger(
        SELFTEST_STALE,
        f"now()-last(/{{T}}/{_SELFTEST_LAST_RUN})>{{$PGBACKUP.SELFTEST.AGE.MAX}}",
        "WARNING",
        "notice",
        "The self-test has not run for {$PGBACKUP.SELFTEST.AGE.MAX}: the daemon runs it weekly with "
        "schedule.selftest: weekly; check the daemon's log.",
        event_name=f"{SELFTEST_STALE} (over {{$PGBACKUP.SELFTEST.AGE.MAX}})",
        dependencies=(NODATA,),
    ),
)

PHYSICAL_FAILED = "PG backup: Physical proof failed"
PHYSICAL_FULL_STALE = "PG backup: Newest full physical backup is too old"
PHYSICAL_STALE = "PG backup: Newest physical backup is too old"
PHYSICAL_ARCHIVE_LAG = "PG backup: WAL archive lags"
PHYSICAL_RTO_HIGH = "PG backup: Physical restore takes longer than the recovery time objective"


def _physical(base: str) -> str:
    return keys.feature_item_key(base, keys.SINGLETON)


PHYSICAL_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        PHYSICAL_FAILED,
        f"last(/{{T}}/{_physical(keys.PHYSICAL_STATUS)})=0",
        "HIGH",
        "availability",
        "The newest physical backup, recovered to an instant of production, did not hold what production held "
        "then, or could not be recovered (a missing WAL segment, a damaged backup file, recovery short of its "
        "target, an amcheck finding). The last report names it; `verifier check --physical` proves it again.",
    ),
    Trigger(
        PHYSICAL_FULL_STALE,
        f"last(/{{T}}/{_physical(keys.PHYSICAL_FULL_AGE)})>{{$PGBACKUP.PHYSICAL.FULL.AGE.MAX}}",
        "AVERAGE",
        "availability",
        "No full physical backup ended within {$PGBACKUP.PHYSICAL.FULL.AGE.MAX}: a recovery replays ever more "
        "incremental backups and WAL. Check pgBackRest's schedule (`pgbackrest backup --type=full`).",
        event_name=f"{PHYSICAL_FULL_STALE} (over {{$PGBACKUP.PHYSICAL.FULL.AGE.MAX}})",
        opdata="Age: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
    Trigger(
        PHYSICAL_STALE,
        f"last(/{{T}}/{_physical(keys.PHYSICAL_BACKUP_AGE)})>{{$PGBACKUP.PHYSICAL.AGE.MAX}}",
        "HIGH",
        "availability",
        "No physical backup of any type ended within {$PGBACKUP.PHYSICAL.AGE.MAX}. Check pgBackRest's schedule "
        "and log; `verifier list --physical` shows the backups.",
        event_name=f"{PHYSICAL_STALE} (over {{$PGBACKUP.PHYSICAL.AGE.MAX}})",
        opdata="Age: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
    Trigger(
        PHYSICAL_ARCHIVE_LAG,
        f"last(/{{T}}/{_physical(keys.PHYSICAL_ARCHIVE_LAG)})>{{$PGBACKUP.PHYSICAL.ARCHIVE.LAG.MAX}}",
        "HIGH",
        "availability",
        "The newest WAL segment reached the archive more than {$PGBACKUP.PHYSICAL.ARCHIVE.LAG.MAX} ago: a "
        "point-in-time recovery now would lose what was written since. Check archive_command "
        "(pg_stat_archiver's last_failed_wal) and archive_timeout.",
        event_name=f"{PHYSICAL_ARCHIVE_LAG} (over {{$PGBACKUP.PHYSICAL.ARCHIVE.LAG.MAX}})",
        opdata="Lag: {ITEM.LASTVALUE1}",
        dependencies=(NODATA,),
    ),
    Trigger(
        PHYSICAL_RTO_HIGH,
        f"last(/{{T}}/{_physical(keys.PHYSICAL_RTO)})>{{$PGBACKUP.PHYSICAL.RTO.MAX}}",
        "WARNING",
        "performance",
        "Restoring the newest physical backup and recovering it to the instant took longer than "
        "{$PGBACKUP.PHYSICAL.RTO.MAX}: a real recovery would take as long.",
        event_name=f"{PHYSICAL_RTO_HIGH} (over {{$PGBACKUP.PHYSICAL.RTO.MAX}})",
        opdata="Restore: {ITEM.LASTVALUE1}",
    ),
)

OFFSITE_STALE = "Off-site {#TARGET}: Newest copy is too old"
OFFSITE_UPLOAD_FAILED = "Off-site {#TARGET}: Upload failed"
OFFSITE_PROOF_FAILED = "Off-site {#TARGET}: Copy does not read back intact"

OFFSITE_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        OFFSITE_STALE,
        f"last(/{{T}}/{keys.item_key(keys.OFFSITE_AGE, '{#TARGET}')})>{{$PGBACKUP.OFFSITE.AGE.MAX}}",
        "HIGH",
        "availability",
        "The newest backup on this off-site target is older than {$PGBACKUP.OFFSITE.AGE.MAX}: a lost host "
        "would lose more than a night. Check the upload trigger and `verifier offsite list`.",
        event_name=f"{OFFSITE_STALE} (over {{$PGBACKUP.OFFSITE.AGE.MAX}})",
        opdata="Age: {ITEM.LASTVALUE1}",
    ),
    Trigger(
        OFFSITE_UPLOAD_FAILED,
        f"last(/{{T}}/{keys.item_key(keys.OFFSITE_UPLOAD_STATUS, '{#TARGET}')})=0",
        "AVERAGE",
        "availability",
        "The last run could not reach this target or upload to it (the last report says why). Verified "
        "backups not yet off-site are uploaded by the next run, oldest first.",
    ),
    Trigger(
        OFFSITE_PROOF_FAILED,
        f"last(/{{T}}/{keys.item_key(keys.OFFSITE_PROOF_STATUS, '{#TARGET}')})=0",
        "HIGH",
        "availability",
        "An object on this target does not read back with the sha256 recorded when it was uploaded: the "
        "off-site copy is damaged. Run `verifier check --offsite TARGET`.",
    ),
)

ASSERTION_FAILED = "Assertion {#ASSERTION} failed on the restored copy"

ASSERTION_TRIGGER = Trigger(
    ASSERTION_FAILED,
    f"last(/{{T}}/{keys.item_key(keys.ASSERTION_STATUS, '{#ASSERTION}')})=0",
    "HIGH",
    "availability",
    "The user's assertion (verify.assertions) did not give the expected value on the copy restored from the "
    "last backup, or its query failed. The last report shows what it got and what was expected.",
)

TABLE_TRIGGER = Trigger(
    TABLE_MISMATCH,
    f"last(/{{T}}/{keys.item_key(keys.TABLE_DIFF, *keys.TABLE_PROTOTYPE_PARAMETERS)})<>0",
    "HIGH",
    "availability",
    "This table, restored from the backup, holds a different number of rows than the dump's snapshot: "
    "the backup is damaged or incomplete for this table.",
    opdata="Diff: {ITEM.LASTVALUE1}",
)


def trigger_by_name(name: str) -> Trigger:
    """Returns the host-level trigger called `name`. Raises KeyError when there is none."""
    for trigger in TRIGGERS:
        if trigger.name == name:
            return trigger
    raise KeyError(name)


# -- per database (dbzabbix) -------------------------------------------------------------------------------
DB_TRIGGER_SOURCES = (STALE, NO_SUCCESS, TOO_FEW, DUMP_FAILED, VERIFY_FAILED, MISMATCH, SIZE_DROP)
"""The host triggers that also exist per database: those on a host item with a per-database twin."""
_HOST_PREFIX = "PG backup: "


def db_trigger_name(host_name: str) -> str:
    """Returns the name of the per-database twin of the host trigger `host_name`: `DB {#DB}: …`."""
    return "DB {#DB}: " + host_name.removeprefix(_HOST_PREFIX)


def _per_database(text: str) -> str:
    """Returns `text` with each host key a trigger reads replaced by its per-database key and each
    `{$PGBACKUP.…}` macro given the context `"{#DB}"` (a database's own threshold, else the template's)."""
    for host_key, db_key in keys.DB_MIRRORS.items():
        per_db = keys.db_item_key(db_key, "{#DB}")
        text = text.replace(f"/{host_key})", f"/{per_db})").replace(f"/{host_key},", f"/{per_db},")
    return re.sub(r"\{\$(PGBACKUP\.[A-Z_.]+)\}", r'{$\1:"{#DB}"}', text)


def _db_trigger(host: Trigger) -> Trigger:
    return Trigger(
        db_trigger_name(host.name),
        _per_database(host.expression),
        host.priority,
        host.scope,
        "For this database: " + host.description,
        event_name=_per_database(host.event_name.replace(host.name, db_trigger_name(host.name)))
        if host.event_name
        else None,
        opdata=host.opdata,
        dependencies=tuple(name for name in host.dependencies if name == NODATA),
        manual_close=host.manual_close,
    )


DB_TRIGGERS: tuple[Trigger, ...] = tuple(_db_trigger(trigger_by_name(name)) for name in DB_TRIGGER_SOURCES)
"""The trigger prototypes of the database discovery: the host triggers, per database. The host triggers
stay: they summarise the night (any database failed), these name the database."""
