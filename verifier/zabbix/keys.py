"""The Zabbix item keys: the single list the template is generated from and the sender is checked against.

See docs/ARCHITECTURE.md "Zabbix keys and the template". Host-level trapper items carry the state of the
repository and of the last run; two low-level discovery rules carry per-table counts (`pgbackup.table.discovery`,
macros `{#DB}`, `{#SCHEMA}`, `{#TABLE}`) and per-database totals (`pgbackup.db.discovery`, `{#DB}`), so that
one agent watching several databases needs no new keys. The items of an optional feature (off-site copies,
the self-test, content checksums, the physical proof) are discovered by the feature's own rule
(`{#SINGLETON}`) only on hosts where it is on, so no item of the template stays empty.
"""

from __future__ import annotations

from collections.abc import Iterator

from verifier.zabbix.items import (
    SINGLETON as SINGLETON,
)
from verifier.zabbix.items import (
    STATUS_VALUE_MAP as STATUS_VALUE_MAP,
)
from verifier.zabbix.items import (
    DiscoveryRule as DiscoveryRule,
)
from verifier.zabbix.items import (
    Item as Item,
)
from verifier.zabbix.items import (
    ValueType as ValueType,
)
from verifier.zabbix.items import (
    db_item_key as db_item_key,
)
from verifier.zabbix.items import (
    feature_item_key as feature_item_key,
)
from verifier.zabbix.items import (
    item_key as item_key,
)
from verifier.zabbix.items import (
    key_parameters as key_parameters,
)
from verifier.zabbix.items import (
    table_item_key as table_item_key,
)

HEARTBEAT = "pgbackup.heartbeat"
BACKUP_AGE = "pgbackup.backup.age"
BACKUP_COUNT = "pgbackup.backup.count"
BACKUP_SIZE = "pgbackup.backup.size"
BACKUP_TOTAL_SIZE = "pgbackup.backup.total_size"
DUMP_STATUS = "pgbackup.dump.status"
DUMP_DURATION = "pgbackup.dump.duration"
VERIFY_STATUS = "pgbackup.verify.status"
VERIFY_DURATION = "pgbackup.verify.duration"
VERIFY_MISMATCHED_TABLES = "pgbackup.verify.mismatched_tables"
VERIFY_LAST_SUCCESS = "pgbackup.verify.last_success"
DRIFT_TABLES = "pgbackup.drift.tables"
REPORT = "pgbackup.report"

TABLE_DISCOVERY = "pgbackup.table.discovery"
TABLE_ROWS = "pgbackup.table.rows"
TABLE_ROWS_RESTORED = "pgbackup.table.rows.restored"
TABLE_DIFF = "pgbackup.table.diff"

OFFSITE_FEATURE_DISCOVERY = "pgbackup.offsite.feature.discovery"
OFFSITE_STATUS = "pgbackup.offsite.status"
OFFSITE_DISCOVERY = "pgbackup.offsite.discovery"
OFFSITE_AGE = "pgbackup.offsite.age"
OFFSITE_UPLOAD_STATUS = "pgbackup.offsite.upload_status"
OFFSITE_PROOF_STATUS = "pgbackup.offsite.proof_status"
OFFSITE_COUNT = "pgbackup.offsite.count"

CONTENTS_FEATURE_DISCOVERY = "pgbackup.contents.feature.discovery"
VERIFY_CONTENT_DIFFERING = "pgbackup.verify.content_differing_tables"
RECOVERY_RTO = "pgbackup.recovery.rto"
RECOVERY_RPO = "pgbackup.recovery.rpo"
SELFTEST_FEATURE_DISCOVERY = "pgbackup.selftest.feature.discovery"
SELFTEST_STATUS = "pgbackup.selftest.status"
SELFTEST_LAST_RUN = "pgbackup.selftest.last_run"
ASSERTION_DISCOVERY = "pgbackup.assertion.discovery"
ASSERTION_STATUS = "pgbackup.assertion.status"
PROOF_DISCOVERY = "pgbackup.proof.discovery"
PROOF_PROBLEMS = "pgbackup.proof.problems"

DB_DISCOVERY = "pgbackup.db.discovery"
DB_TABLES = "pgbackup.db.tables"
DB_ROWS = "pgbackup.db.rows"

# -- per database (dbzabbix): each database's own state under `{#DB}`, and the night's summary ----------------
DB_BACKUP_AGE = "pgbackup.db.backup.age"
DB_BACKUP_COUNT = "pgbackup.db.backup.count"
DB_BACKUP_SIZE = "pgbackup.db.backup.size"
DB_DUMP_STATUS = "pgbackup.db.dump.status"
DB_DUMP_DURATION = "pgbackup.db.dump.duration"
DB_VERIFY_STATUS = "pgbackup.db.verify.status"
DB_VERIFY_DURATION = "pgbackup.db.verify.duration"
DB_VERIFY_MISMATCHED_TABLES = "pgbackup.db.verify.mismatched_tables"
DB_VERIFY_LAST_SUCCESS = "pgbackup.db.verify.last_success"
NIGHT_DATABASES = "pgbackup.night.databases"
NIGHT_DATABASES_FAILED = "pgbackup.night.databases_failed"

DB_MIRRORS: dict[str, str] = {
    BACKUP_AGE: DB_BACKUP_AGE,
    BACKUP_COUNT: DB_BACKUP_COUNT,
    BACKUP_SIZE: DB_BACKUP_SIZE,
    DUMP_STATUS: DB_DUMP_STATUS,
    DUMP_DURATION: DB_DUMP_DURATION,
    VERIFY_STATUS: DB_VERIFY_STATUS,
    VERIFY_DURATION: DB_VERIFY_DURATION,
    VERIFY_MISMATCHED_TABLES: DB_VERIFY_MISMATCHED_TABLES,
    VERIFY_LAST_SUCCESS: DB_VERIFY_LAST_SUCCESS,
}
"""Each host item that a database has on its own, and the key of its per-database item: one database's value
goes to both (the single-database form), a night's host item summarises its databases' (`night_values`)."""
# -- end per database ---------------------------------------------------------------------------------------

HOST_ITEMS: tuple[Item, ...] = (
    Item(
        HEARTBEAT,
        "Agent: Last report time",
        ValueType.UNSIGNED,
        "Unix time of the agent's last report. The nodata trigger on this item says the agent went silent.",
        "health",
        units="unixtime",
    ),
    Item(
        BACKUP_AGE,
        "Backup: Age of the newest backup",
        ValueType.UNSIGNED,
        "Seconds between the newest complete backup's creation and the report.",
        "backup",
        units="s",
    ),
    Item(
        BACKUP_COUNT,
        "Backup: Number of backups",
        ValueType.UNSIGNED,
        "Complete backups (dump plus manifest, or legacy dump files) in the repository.",
        "backup",
    ),
    Item(
        BACKUP_SIZE,
        "Backup: Size of the newest backup",
        ValueType.UNSIGNED,
        "Bytes of the newest backup's files. Unchanged values are discarded, so the previous value is "
        "the previous backup's size (the size-drop trigger compares the two).",
        "backup",
        units="B",
        discard_unchanged=True,
    ),
    Item(
        BACKUP_TOTAL_SIZE,
        "Backup: Repository size",
        ValueType.UNSIGNED,
        "Bytes of all backups in the repository.",
        "backup",
        units="B",
    ),
    Item(
        DUMP_STATUS,
        "Dump: Last dump status",
        ValueType.UNSIGNED,
        "1 when the last pg_dump completed and its manifest was written, 0 when it failed.",
        "dump",
        value_map=STATUS_VALUE_MAP,
    ),
    Item(
        DUMP_DURATION,
        "Dump: Duration",
        ValueType.FLOAT,
        "Seconds the last dump took (snapshot, pg_dump, checksums, manifest).",
        "dump",
        units="s",
    ),
    Item(
        VERIFY_STATUS,
        "Verification: Last verification status",
        ValueType.UNSIGNED,
        "1 when the last verification restored the backup and every table held the expected rows, 0 otherwise.",
        "verification",
        value_map=STATUS_VALUE_MAP,
    ),
    Item(
        VERIFY_DURATION,
        "Verification: Duration",
        ValueType.FLOAT,
        "Seconds the last verification took (restore into the sandbox plus comparison).",
        "verification",
        units="s",
    ),
    Item(
        VERIFY_MISMATCHED_TABLES,
        "Verification: Tables with mismatched row counts",
        ValueType.UNSIGNED,
        "Tables whose restored row count differs from the dump's snapshot (or, for a backup without "
        "manifest, tables missing or empty where production has rows).",
        "verification",
    ),
    Item(
        DRIFT_TABLES,
        "Drift: Tables production moved beyond the tolerance",
        ValueType.UNSIGNED,
        "Tables of production whose row count now differs from the backup's by more than verify.drift allows "
        "(or that are gone). Information: production moves on after every backup; never part of the verdict.",
        "drift",
    ),
    Item(
        VERIFY_LAST_SUCCESS,
        "Verification: Last successful verification",
        ValueType.UNSIGNED,
        "Unix time of the last verification that passed. Sent only when one passes.",
        "verification",
        units="unixtime",
    ),
    Item(
        RECOVERY_RTO,
        "Recovery: Restore time (RTO)",
        ValueType.FLOAT,
        "Seconds the last restore of the newest backup took in the sandbox: what a real recovery of this "
        "database on this host would take (the recovery time actually measured).",
        "recovery",
        units="s",
    ),
    Item(
        RECOVERY_RPO,
        "Recovery: Data-loss window (RPO)",
        ValueType.UNSIGNED,
        "Seconds since the snapshot of the newest verified backup: the data a recovery now would lose.",
        "recovery",
        units="s",
    ),
    Item(
        REPORT,
        "Report: Last report",
        ValueType.TEXT,
        "The one-screen text report of the last run: every check with its status and summary (of a night of "
        "several databases: one line per database, then each database's report).",
        "report",
        history="30d",
    ),
    Item(
        NIGHT_DATABASES,
        "Night: Databases",
        ValueType.UNSIGNED,
        "Databases the last run (night) backed up or proved, or tried to; 1 for the single-database form "
        "(source.dbname). One the repository still holds but the night no longer runs is not counted.",
        "night",
    ),
    Item(
        NIGHT_DATABASES_FAILED,
        "Night: Databases failed",
        ValueType.UNSIGNED,
        "Databases whose part of the last run was CRITICAL or could not run (a failed dump, a failed proof, "
        "a lock that never came). The per-database discovery's triggers name them.",
        "night",
    ),
)

LOGICAL_HOST_ITEMS: frozenset[str] = frozenset(item.key for item in HOST_ITEMS) - {HEARTBEAT, REPORT}
"""The host items only a logical dump and its proof fill: on a host that takes none (`dump.enabled: false`,
only the physical proof), `verifier zabbix setup` disables them, so none stays empty."""


def _per_database(item: Item) -> Item:
    """Returns the per-database twin of host item `item`: its key under `{#DB}`, its name prefixed."""
    return Item(
        db_item_key(DB_MIRRORS[item.key], "{#DB}"),
        f"DB {{#DB}}: {item.name}",
        item.value_type,
        f"This database's own {item.key}: {item.description}",
        item.component,
        item.units,
        item.value_map,
        item.discard_unchanged,
    )


TABLE_PROTOTYPE_PARAMETERS = ("{#DB}", "{#SCHEMA}.{#TABLE}")  # as table_item_key fills them
_TABLE_PREFIX = "DB {#DB}: Table {#SCHEMA}.{#TABLE}"

TABLE_RULE = DiscoveryRule(
    key=TABLE_DISCOVERY,
    name="Table discovery",
    description="Tables in the last verified backup, with their database and schema.",
    macros=("{#DB}", "{#SCHEMA}", "{#TABLE}"),
    object_tags=(("database", "{#DB}"), ("table", "{#SCHEMA}.{#TABLE}")),
    prototypes=(
        Item(
            item_key(TABLE_ROWS, *TABLE_PROTOTYPE_PARAMETERS),
            f"{_TABLE_PREFIX}: Rows in the snapshot",
            ValueType.UNSIGNED,
            "Exact row count in the snapshot the dump was taken in (production's count for a backup without manifest).",
            "tables",
        ),
        Item(
            item_key(TABLE_ROWS_RESTORED, *TABLE_PROTOTYPE_PARAMETERS),
            f"{_TABLE_PREFIX}: Rows restored",
            ValueType.UNSIGNED,
            "Row count in the copy restored from the backup.",
            "tables",
        ),
        Item(
            item_key(TABLE_DIFF, *TABLE_PROTOTYPE_PARAMETERS),
            f"{_TABLE_PREFIX}: Rows diff",
            ValueType.FLOAT,
            "Restored rows minus snapshot rows; anything but 0 means the backup does not hold what production held.",
            "tables",
        ),
    ),
)

DB_RULE = DiscoveryRule(
    key=DB_DISCOVERY,
    name="Database discovery",
    description="Databases this agent backs up and verifies.",
    macros=("{#DB}",),
    object_tags=(("database", "{#DB}"),),
    prototypes=(
        *(_per_database(item) for item in HOST_ITEMS if item.key in DB_MIRRORS),
        Item(
            db_item_key(DB_TABLES, "{#DB}"),
            "DB {#DB}: Tables in the backup",
            ValueType.UNSIGNED,
            "Tables counted in the last verified backup of this database.",
            "tables",
        ),
        Item(
            db_item_key(DB_ROWS, "{#DB}"),
            "DB {#DB}: Rows in the snapshot",
            ValueType.UNSIGNED,
            "Sum of all tables' rows in the dump's snapshot.",
            "tables",
        ),
    ),
)

OFFSITE_RULE = DiscoveryRule(
    key=OFFSITE_DISCOVERY,
    name="Off-site target discovery",
    description="Off-site targets (offsite: in the agent's config) the verified backups are copied to.",
    macros=("{#TARGET}",),
    object_tags=(("offsite", "{#TARGET}"),),
    prototypes=(
        Item(
            item_key(OFFSITE_AGE, "{#TARGET}"),
            "Off-site {#TARGET}: Age of the newest copy",
            ValueType.UNSIGNED,
            "Seconds since the newest backup copied to this target was taken.",
            "offsite",
            units="s",
        ),
        Item(
            item_key(OFFSITE_UPLOAD_STATUS, "{#TARGET}"),
            "Off-site {#TARGET}: Last upload status",
            ValueType.UNSIGNED,
            "1 when the last run reached the target and uploaded what was missing, 0 when it failed.",
            "offsite",
            value_map=STATUS_VALUE_MAP,
        ),
        Item(
            item_key(OFFSITE_PROOF_STATUS, "{#TARGET}"),
            "Off-site {#TARGET}: Last proof status",
            ValueType.UNSIGNED,
            "1 when every object uploaded or checked read back with its recorded sha256, 0 when one differs.",
            "offsite",
            value_map=STATUS_VALUE_MAP,
        ),
        Item(
            item_key(OFFSITE_COUNT, "{#TARGET}"),
            "Off-site {#TARGET}: Number of copies",
            ValueType.UNSIGNED,
            "Backups held on this target.",
            "offsite",
        ),
    ),
)

OFFSITE_FEATURE_RULE = DiscoveryRule(
    key=OFFSITE_FEATURE_DISCOVERY,
    name="Off-site copies discovery",
    description="One entry when off-site copies are configured (offsite: in the agent's config), none otherwise: "
    "the off-site summary exists only on hosts that copy backups off-site.",
    macros=(SINGLETON,),
    object_tags=(),
    lifetime="1d",
    prototypes=(
        Item(
            feature_item_key(OFFSITE_STATUS, SINGLETON),
            "Off-site: Last upload and proof status",
            ValueType.UNSIGNED,
            "1 when every off-site target took the night's verified backups and each read back intact, else 0. "
            "A target that is down never fails the night's proof; the next run catches up.",
            "offsite",
            value_map=STATUS_VALUE_MAP,
        ),
    ),
)

SELFTEST_FEATURE_RULE = DiscoveryRule(
    key=SELFTEST_FEATURE_DISCOVERY,
    name="Self-test discovery",
    description="One entry once a self-test has run (`verifier selftest`, or the daemon's with "
    "schedule.selftest: weekly), none before: the self-test's items and triggers exist only on hosts that run it.",
    macros=(SINGLETON,),
    object_tags=(),
    lifetime="1d",
    prototypes=(
        Item(
            feature_item_key(SELFTEST_STATUS, SINGLETON),
            "Self-test: Last self-test status",
            ValueType.UNSIGNED,
            "1 when the last `verifier selftest` caught every damage done to a restored copy, 0 when one went "
            "unnoticed or the self-test could not compare.",
            "selftest",
            value_map=STATUS_VALUE_MAP,
        ),
        Item(
            feature_item_key(SELFTEST_LAST_RUN, SINGLETON),
            "Self-test: Last self-test time",
            ValueType.UNSIGNED,
            "Unix time the last `verifier selftest` finished (the daemon runs it weekly with "
            "schedule.selftest: weekly).",
            "selftest",
            units="unixtime",
        ),
    ),
)

CONTENTS_FEATURE_RULE = DiscoveryRule(
    key=CONTENTS_FEATURE_DISCOVERY,
    name="Content checksums discovery",
    description="One entry when restored contents are compared with the snapshot's checksums (verify.content "
    "full or sample, or unset), none with verify.content: off: the contents' item and trigger exist only on "
    "hosts that compare them.",
    macros=(SINGLETON,),
    object_tags=(),
    lifetime="1d",
    prototypes=(
        Item(
            feature_item_key(VERIFY_CONTENT_DIFFERING, SINGLETON),
            "Verification: Tables whose contents differ",
            ValueType.UNSIGNED,
            "Tables whose restored content checksum differs from the one computed in the dump's snapshot (same "
            "row count, different values). Sent when contents were compared (a backup taken with verify.content "
            "off, or without a manifest, has no checksums to compare).",
            "verification",
        ),
    ),
)

# fmt: off
ASSERTION_RULE = DiscoveryRule(
    ASSERTION_DISCOVERY, "Assertion discovery", "The user's assertions (verify.assertions) run on the restored copy.",
    ("{#ASSERTION}",), object_tags=(("assertion", "{#ASSERTION}"),),
    prototypes=(Item(
        item_key(ASSERTION_STATUS, "{#ASSERTION}"), "Assertion {#ASSERTION}: Status", ValueType.UNSIGNED,
        "1 when the assertion's SELECT gave the expected value on the last restored copy, 0 when it gave another "
        "value or failed (error, timeout). The user's rule about the data, not the backup's verdict.",
        "assertions", value_map=STATUS_VALUE_MAP,
    ),),
)
# fmt: on

# fmt: off
PROOF_RULE = DiscoveryRule(
    PROOF_DISCOVERY, "Proof check discovery",
    "The proof checks that compared the last restored copy (one per kind of evidence's check: row_counts, schema, "
    "contents, sequences, ...), so that a new kind of evidence shows up without a new key.",
    ("{#CHECK}",), object_tags=(("check", "{#CHECK}"),),
    prototypes=(Item(
        item_key(PROOF_PROBLEMS, "{#CHECK}"), "Proof check {#CHECK}: Problems found", ValueType.UNSIGNED,
        "Objects this check named as restored otherwise than the snapshot held them (a backup without a manifest: "
        "than production holds them now) in the last verification; 0 when it found none. A problem fails "
        "pgbackup.verify.status, whose trigger alerts; this item says which check saw it.",
        "verification",
    ),),
)
# fmt: on

# --- the physical proof (issue 24: pgBackRest backups recovered to an instant), discovered where physical: is set
PHYSICAL_FEATURE_DISCOVERY = "pgbackup.physical.feature.discovery"
PHYSICAL_STATUS = "pgbackup.physical.status"
PHYSICAL_RTO = "pgbackup.physical.rto"
PHYSICAL_FULL_AGE = "pgbackup.physical.full_age"
PHYSICAL_BACKUP_AGE = "pgbackup.physical.backup_age"
PHYSICAL_ARCHIVE_LAG = "pgbackup.physical.archive_lag"
PHYSICAL_WINDOW = "pgbackup.physical.window"


def _physical_item(base: str, name: str, description: str, units: str = "", value_map: str | None = None) -> Item:
    """Returns a physical proof's item prototype (a number, component `physical`)."""
    return Item(feature_item_key(base, SINGLETON), f"Physical: {name}", ValueType.UNSIGNED, description,
                "physical", units=units, value_map=value_map)  # fmt: skip


PHYSICAL_FEATURE_RULE = DiscoveryRule(
    key=PHYSICAL_FEATURE_DISCOVERY,
    name="Physical backups discovery",
    description="One entry when physical backups are proven (physical: in the agent's config), none otherwise: "
    "the physical proof's items and triggers exist only on hosts that prove pgBackRest backups.",
    macros=(SINGLETON,),
    object_tags=(),
    lifetime="1d",
    prototypes=(
        _physical_item(
            PHYSICAL_STATUS, "Last physical proof status",
            "1 when the newest physical backup, recovered to an instant of production, held every table exactly as "
            "production did then (and amcheck and the collation versions found nothing); 0 when it differed or "
            "could not be restored (a missing WAL segment, a damaged backup file, recovery short of its target).",
            value_map=STATUS_VALUE_MAP,
        ),
        _physical_item(
            PHYSICAL_RTO, "Restore time (RTO)",
            "Seconds the last physical proof took to restore the backup and recover it to the instant.", units="s",
        ),
        _physical_item(PHYSICAL_FULL_AGE, "Newest full backup age", "Seconds since the newest full backup ended.",
                       units="s"),
        _physical_item(PHYSICAL_BACKUP_AGE, "Newest backup age",
                       "Seconds since the newest backup of any type (full, diff, incr) ended.", units="s"),
        _physical_item(
            PHYSICAL_ARCHIVE_LAG, "WAL archive lag",
            "Seconds since the newest WAL segment reached the archive: the data-loss window of a point-in-time "
            "recovery (RPO).", units="s",
        ),
        _physical_item(
            PHYSICAL_WINDOW, "Recoverable window",
            "Seconds from the oldest backup's end to the newest archived WAL segment: how far back a point-in-time "
            "recovery can go.", units="s",
        ),
    ),
)  # fmt: skip
# --- end of the physical proof's block

DISCOVERY_RULES: tuple[DiscoveryRule, ...] = (
    TABLE_RULE,
    DB_RULE,
    OFFSITE_RULE,
    ASSERTION_RULE,
    OFFSITE_FEATURE_RULE,
    SELFTEST_FEATURE_RULE,
    CONTENTS_FEATURE_RULE,
    PROOF_RULE,
    PHYSICAL_FEATURE_RULE,
)


def all_item_keys() -> Iterator[str]:
    """Yields every key the template defines: host items, discovery rules, prototypes."""
    yield from (item.key for item in HOST_ITEMS)
    for rule in DISCOVERY_RULES:
        yield rule.key
        yield from (prototype.key for prototype in rule.prototypes)
