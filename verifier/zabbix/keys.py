"""The Zabbix item keys: the single list the template is generated from and the sender is checked against.

See docs/ARCHITECTURE.md "Zabbix keys and the template". Host-level trapper items carry the state of the
repository and of the last run; two low-level discovery rules carry per-table counts (`pgbackup.table.discovery`,
macros `{#DB}`, `{#SCHEMA}`, `{#TABLE}`) and per-database totals (`pgbackup.db.discovery`, `{#DB}`), so that
one agent watching several databases needs no new keys. The items of an optional feature (off-site copies,
the self-test) are discovered by the feature's own rule (`{#SINGLETON}`) only on hosts where it is on, so no
item of the template stays empty.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from verifier.names import qualified

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

SINGLETON = "{#SINGLETON}"
"""The macro of an optional feature's discovery: one row, `{#SINGLETON}` empty, when the feature is on, none
when it is off, so its items exist only on hosts that use it (the pattern of Zabbix's own templates)."""

STATUS_VALUE_MAP = "PG backup status"
"""Value map of the 0/1 status items: 0 Failed, 1 OK."""


class ValueType(enum.Enum):
    """Zabbix's value types as spelled in a 6.0 export, with the code history.get takes."""

    FLOAT = ("FLOAT", 0)
    TEXT = ("TEXT", 4)
    UNSIGNED = ("UNSIGNED", 3)

    @property
    def export_name(self) -> str:
        """Returns the name used in the YAML export."""
        return self.value[0]


@dataclass(frozen=True)
class Item:
    """One trapper item (or item prototype, when its key holds LLD macros)."""

    key: str
    name: str
    value_type: ValueType
    description: str
    component: str
    units: str = ""
    value_map: str | None = None
    discard_unchanged: bool = False
    history: str = "90d"


@dataclass(frozen=True)
class DiscoveryRule:
    """A trapper low-level discovery rule and its item prototypes."""

    key: str
    name: str
    description: str
    macros: tuple[str, ...]
    prototypes: tuple[Item, ...]
    object_tags: tuple[tuple[str, str], ...]
    lifetime: str = "30d"


def item_key(base: str, *parameters: str) -> str:
    """Returns `base["p1","p2"]`: every parameter quoted, `"` escaped as Zabbix's key syntax requires.

    Used both for the template's prototypes (parameters are LLD macros) and for the values the
    sender sends (parameters are real names), so the two always agree.
    """
    quoted = ",".join('"' + parameter.replace('"', '\\"') + '"' for parameter in parameters)
    return f"{base}[{quoted}]"


def key_parameters(key: str) -> tuple[str, tuple[str, ...]]:
    """Returns (base, parameters) of a key as `item_key` or `feature_item_key` made it: the inverse of both
    (`base` alone has no parameters, `base[]` one empty one). Raises ValueError for a key of other syntax."""
    base, bracket, rest = key.partition("[")
    if not bracket:
        return key, ()
    if not rest.endswith("]"):
        raise ValueError(f"not an item key: {key}")
    body, parameters, position = rest[:-1], [], 0
    while True:
        if body.startswith('"', position):
            end = position + 1
            while end < len(body) and not (body[end] == '"' and body[end - 1] != "\\"):
                end += 1
            if end >= len(body):
                raise ValueError(f"not an item key: {key}")
            parameters.append(body[position + 1 : end].replace('\\"', '"'))
            position = end + 1
        else:
            end = body.find(",", position)
            end = len(body) if end < 0 else end
            parameters.append(body[position:end])
            position = end
        if position == len(body):
            return base, tuple(parameters)
        if body[position] != ",":
            raise ValueError(f"not an item key: {key}")
        position += 1


def table_item_key(base: str, database: str, schema: str, table: str) -> str:
    """Returns the key of a per-table item, e.g. `pgbackup.table.rows["shop","public.orders"]`, the names
    quoted as quote_ident quotes them (and `{#SCHEMA}`, `{#TABLE}` carry them): plain names stay plain."""
    return item_key(base, database, qualified(schema, table))


def feature_item_key(base: str, singleton: str = "") -> str:
    """Returns the key of an optional feature's item: `base[]` as the agent sends it, or with `SINGLETON`
    the prototype's `base[{#SINGLETON}]`, which the feature's discovery turns into the same key."""
    return f"{base}[{singleton}]"


def db_item_key(base: str, database: str) -> str:
    """Returns the key of a per-database item, e.g. `pgbackup.db.rows["shop"]`."""
    return item_key(base, database)


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
        VERIFY_CONTENT_DIFFERING,
        "Verification: Tables whose contents differ",
        ValueType.UNSIGNED,
        "Tables whose restored content checksum differs from the one computed in the dump's snapshot (same row "
        "count, different values). Sent only when contents were compared (verify.content full or sample).",
        "verification",
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
        "The one-screen text report of the last run: every check with its status and summary.",
        "report",
        history="30d",
    ),
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
    PROOF_RULE,
    PHYSICAL_FEATURE_RULE,
)


def all_item_keys() -> Iterator[str]:
    """Yields every key the template defines: host items, discovery rules, prototypes."""
    yield from (item.key for item in HOST_ITEMS)
    for rule in DISCOVERY_RULES:
        yield rule.key
        yield from (prototype.key for prototype in rule.prototypes)
