"""The template's macros and triggers for the deeper proof (contents, RTO/RPO, self-test), as the fields
`template.Macro` and `template.Trigger` take: kept apart so the template module does not grow. An
expression's `{T}` is the template name."""

from __future__ import annotations

from verifier.zabbix import keys

NODATA = "PG backup: Agent sent no report"  # template.NODATA: the silent agent holds these back
CONTENT_MISMATCH = "PG backup: Restored contents differ from the snapshot"
RTO_HIGH = "PG backup: Restore takes longer than the recovery time objective"
RPO_HIGH = "PG backup: Data-loss window exceeds the recovery point objective"
SELFTEST_FAILED = "PG backup: Self-test missed a damage"
SELFTEST_STALE = "PG backup: Self-test has not run for too long"

PROOF_MACROS: tuple[dict[str, str], ...] = (
    {
        "name": "{$PGBACKUP.RTO.MAX}",
        "default": "4h",
        "description": "Warn when restoring the newest backup takes longer than this (measured RTO).",
    },
    {
        "name": "{$PGBACKUP.RPO.MAX}",
        "default": "36h",
        "description": "The newest verified backup's snapshot may be at most this old (RPO).",
    },
    {
        "name": "{$PGBACKUP.SELFTEST.AGE.MAX}",
        "default": "8d",
        "description": "A self-test that ran once must run again within this time.",
    },
)

PROOF_TRIGGERS: tuple[dict[str, str | tuple[str, ...]], ...] = (
    {
        "name": CONTENT_MISMATCH,
        "expression": f"last(/{{T}}/{keys.VERIFY_CONTENT_DIFFERING})>0",
        "priority": "HIGH",
        "scope": "availability",
        "description": "Tables restored from the backup hold the right number of rows but different values than "
        "the snapshot the dump was taken in (their content checksums differ). The contents check in the last "
        "report names them.",
        "opdata": "Tables: {ITEM.LASTVALUE1}",
    },
    {
        "name": RTO_HIGH,
        "expression": f"last(/{{T}}/{keys.RECOVERY_RTO})>{{$PGBACKUP.RTO.MAX}}",
        "priority": "AVERAGE",
        "scope": "performance",
        "description": "Restoring the newest backup took longer than {$PGBACKUP.RTO.MAX}: a real recovery would "
        "keep the service down that long. Consider more restore jobs (verify.jobs), faster disks, or another "
        "backup method.",
        "event_name": f"{RTO_HIGH} (over {{$PGBACKUP.RTO.MAX}})",
        "opdata": "Restore: {ITEM.LASTVALUE1}",
    },
    {
        "name": RPO_HIGH,
        "expression": f"last(/{{T}}/{keys.RECOVERY_RPO})>{{$PGBACKUP.RPO.MAX}}",
        "priority": "HIGH",
        "scope": "availability",
        "description": "The newest backup proven restorable was taken more than {$PGBACKUP.RPO.MAX} ago: a "
        "recovery now would lose everything written since. Look at the dump and verification triggers and the "
        "last report.",
        "event_name": f"{RPO_HIGH} (over {{$PGBACKUP.RPO.MAX}})",
        "opdata": "Window: {ITEM.LASTVALUE1}",
        "dependencies": (NODATA,),
    },
    {
        "name": SELFTEST_FAILED,
        "expression": f"last(/{{T}}/{keys.SELFTEST_STATUS})=0",
        "priority": "HIGH",
        "scope": "availability",
        "description": "The last `verifier selftest` damaged a restored copy and the comparison did not name "
        "every damage (or could not run): the verifier itself may pass a bad backup. Run `verifier selftest` "
        "to see which.",
    },
    {
        "name": SELFTEST_STALE,
        "expression": f"now()-last(/{{T}}/{keys.SELFTEST_LAST_RUN})>{{$PGBACKUP.SELFTEST.AGE.MAX}}",
        "priority": "WARNING",
        "scope": "notice",
        "description": "The self-test has not run for {$PGBACKUP.SELFTEST.AGE.MAX}: the daemon runs it weekly "
        "with schedule.selftest: weekly; check the daemon's log.",
        "event_name": f"{SELFTEST_STALE} (over {{$PGBACKUP.SELFTEST.AGE.MAX}})",
        "dependencies": (NODATA,),
    },
)
