"""The bundled Zabbix template, generated from the key list in `keys.py` (as mamonsu does).

`render_template()` returns the Zabbix 6.0 YAML export that `zabbix-templates/` ships and
`verifier zabbix setup` imports. UUIDs are UUIDv4 derived from the md5 of each object's identity,
so regenerating the file changes nothing and upgrades update objects in place.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import yaml

from verifier import __version__
from verifier.zabbix import keys
from verifier.zabbix.keys import DiscoveryRule, Item, ValueType
from verifier.zabbix.proof_triggers import PROOF_MACROS, PROOF_TRIGGERS

TEMPLATE_NAME = "PostgreSQL backup verification by Zabbix trapper"
TEMPLATE_GROUP = "Templates/Databases"
TEMPLATE_FILE_NAME = "pg_backup_verifier_zbx_6.0.yaml"
DOCS_REFERENCE = "zabbix-templates/README.md in the pg-backup-verifier source (triggers, macros, what to do)"
FINGERPRINT_LABEL = "Template fingerprint: "
COLOURS = ("1A7C11", "2774A4", "F63100", "A54F10", "FC6EA3", "6C59DC")


@dataclass(frozen=True)
class Macro:
    """A template macro with its default and what it tunes."""

    name: str
    default: str
    description: str


MACROS: tuple[Macro, ...] = (  # noqa: RUF005 (the proof's own are appended from proof_triggers)
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
) + tuple(Macro(**fields) for fields in PROOF_MACROS)


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
TABLE_MISMATCH = "DB {#DB}: Table {#SCHEMA}.{#TABLE}: Restored rows differ from the snapshot"

TRIGGERS: tuple[Trigger, ...] = (  # noqa: RUF005 (the proof's own are appended from proof_triggers)
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
) + tuple(Trigger(**fields) for fields in PROOF_TRIGGERS)  # type: ignore[arg-type]

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

TABLE_TRIGGER = Trigger(
    TABLE_MISMATCH,
    f"last(/{{T}}/{keys.table_item_key(keys.TABLE_DIFF, '{#DB}', '{#SCHEMA}', '{#TABLE}')})<>0",
    "HIGH",
    "availability",
    "This table, restored from the backup, holds a different number of rows than the dump's snapshot: "
    "the backup is damaged or incomplete for this table.",
    opdata="Diff: {ITEM.LASTVALUE1}",
)


def _fingerprint(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stable_uuid(identity: str) -> str:
    """Returns a UUIDv4 (32 hex digits) derived from `identity`: the same identity, the same uuid."""
    digest = hashlib.md5(f"pg-backup-verifier/{identity}".encode(), usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest, version=4).hex


def render_template() -> str:
    """Returns the template as Zabbix 6.0 YAML export text."""
    return yaml.safe_dump(template_document(), sort_keys=False, allow_unicode=True, width=100)


def template_document() -> dict[str, Any]:
    """Returns the template export as a dictionary (what `render_template` serialises)."""
    template: dict[str, Any] = {
        "uuid": stable_uuid("template"),
        "template": TEMPLATE_NAME,
        "name": TEMPLATE_NAME,
        "description": (
            "Results of pg-backup-verifier: the age, count and size of PostgreSQL backups, whether the last "
            "dump succeeded, and whether the last backup restored with exactly the snapshot's row counts. "
            "All items are trapper items pushed by the agent (`verifier run`); create a host whose name is "
            "the agent's `zabbix.host` and link this template (`verifier zabbix setup` does both).\n\n"
            f"Documentation: {DOCS_REFERENCE}.\n\n"
            f"Generated by pg-backup-verifier {__version__}."
        ),
        "groups": [{"name": TEMPLATE_GROUP}],
        "items": [_item(item, triggers=_triggers_on(item.key)) for item in keys.HOST_ITEMS],
        "discovery_rules": [_discovery_rule(rule) for rule in keys.DISCOVERY_RULES],
        "tags": [
            {"tag": "class", "value": "database"},
            {"tag": "target", "value": "backup"},
            {"tag": "target", "value": "postgresql"},
        ],
        "macros": [{"macro": macro.name, "value": macro.default, "description": macro.description} for macro in MACROS],
        "dashboards": [_dashboard()],
        "valuemaps": [
            {
                "uuid": stable_uuid(f"valuemap/{keys.STATUS_VALUE_MAP}"),
                "name": keys.STATUS_VALUE_MAP,
                "mappings": [{"value": "0", "newvalue": "Failed"}, {"value": "1", "newvalue": "OK"}],
            }
        ],
    }
    document = {
        "zabbix_export": {
            "version": "6.0",
            "groups": [{"uuid": stable_uuid(f"group/{TEMPLATE_GROUP}"), "name": TEMPLATE_GROUP}],
            "templates": [template],
            "graphs": [
                _graph("Backup: Sizes", (keys.BACKUP_SIZE, keys.BACKUP_TOTAL_SIZE)),
                _graph("Backup: Durations", (keys.DUMP_DURATION, keys.VERIFY_DURATION)),
            ],
        }
    }
    template["description"] += f"\n{FINGERPRINT_LABEL}{_fingerprint(document)}"
    return document


def template_fingerprint() -> str:
    """Returns the fingerprint line the template's description carries: equal lines, equal templates.

    `verifier zabbix setup` skips the (slow) import when Zabbix already holds this fingerprint.
    """
    description = str(template_document()["zabbix_export"]["templates"][0]["description"])
    return description.splitlines()[-1]


def trigger_by_name(name: str) -> Trigger:
    """Returns the host-level trigger called `name`. Raises KeyError when there is none."""
    for trigger in TRIGGERS:
        if trigger.name == name:
            return trigger
    raise KeyError(name)


# -- builders -----------------------------------------------------------------------------------


def _triggers_on(key: str) -> list[Trigger]:
    """Returns the triggers whose expression reads only item `key` (an export nests those under the item)."""
    return [trigger for trigger in TRIGGERS if f"/{key})" in trigger.expression or f"/{key}," in trigger.expression]


def _item(item: Item, *, triggers: list[Trigger], object_tags: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "uuid": stable_uuid(f"item/{item.key}"),
        "name": item.name,
        "type": "TRAP",
        "key": item.key,
        "delay": "0",
        "history": item.history,
    }
    if item.value_type is ValueType.TEXT:
        entry["trends"] = "0"
    if item.value_type is not ValueType.UNSIGNED:
        entry["value_type"] = item.value_type.export_name
    if item.units:
        entry["units"] = item.units
    entry["description"] = item.description
    if item.value_map:
        entry["valuemap"] = {"name": item.value_map}
    if item.discard_unchanged:
        entry["preprocessing"] = [{"type": "DISCARD_UNCHANGED", "parameters": [""]}]
    entry["tags"] = [{"tag": "component", "value": item.component}] + [
        {"tag": tag, "value": value} for tag, value in object_tags
    ]
    if triggers:
        entry["triggers"] = [_trigger(trigger) for trigger in triggers]
    return entry


def _trigger(trigger: Trigger) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "uuid": stable_uuid(f"trigger/{trigger.name}"),
        "expression": trigger.full_expression(),
        "name": trigger.name,
    }
    if trigger.event_name:
        entry["event_name"] = trigger.event_name
    if trigger.opdata:
        entry["opdata"] = trigger.opdata
    entry["priority"] = trigger.priority
    entry["description"] = trigger.description
    if trigger.manual_close:
        entry["manual_close"] = "YES"
    if trigger.dependencies:
        entry["dependencies"] = [
            {"name": name, "expression": trigger_by_name(name).full_expression()} for name in trigger.dependencies
        ]
    entry["tags"] = [{"tag": "scope", "value": trigger.scope}]
    return entry


def _discovery_rule(rule: DiscoveryRule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "uuid": stable_uuid(f"discovery/{rule.key}"),
        "name": rule.name,
        "type": "TRAP",
        "key": rule.key,
        "delay": "0",
        "lifetime": rule.lifetime,
        "description": rule.description,
        "item_prototypes": [_item(item, triggers=[], object_tags=rule.object_tags) for item in rule.prototypes],
    }
    if rule is keys.TABLE_RULE:
        entry["filter"] = {
            "evaltype": "AND",
            "conditions": [
                {"macro": "{#TABLE}", "value": "{$PGBACKUP.LLD.FILTER.TABLE.MATCHES}", "formulaid": "A"},
                {
                    "macro": "{#TABLE}",
                    "value": "{$PGBACKUP.LLD.FILTER.TABLE.NOT_MATCHES}",
                    "operator": "NOT_MATCHES_REGEX",
                    "formulaid": "B",
                },
            ],
        }
        diff_prototype = next(item for item in rule.prototypes if item.key.startswith(f"{keys.TABLE_DIFF}["))
        entry["item_prototypes"][rule.prototypes.index(diff_prototype)]["trigger_prototypes"] = [
            {**_trigger(TABLE_TRIGGER), "tags": [{"tag": "scope", "value": "availability"}, *_tags(rule)]}
        ]
        entry["graph_prototypes"] = [
            _graph(
                "DB {#DB}: Table {#SCHEMA}.{#TABLE}: Rows",
                tuple(item.key for item in rule.prototypes[:2]),
            )
        ]
    elif rule is keys.OFFSITE_RULE:
        for trigger in OFFSITE_TRIGGERS:
            prototype = next(item for item in rule.prototypes if f"/{item.key})" in trigger.expression)
            entry["item_prototypes"][rule.prototypes.index(prototype)]["trigger_prototypes"] = [
                {**_trigger(trigger), "tags": [{"tag": "scope", "value": trigger.scope}, *_tags(rule)]}
            ]
    else:
        entry["graph_prototypes"] = [_graph("DB {#DB}: Rows", (rule.prototypes[1].key,))]
    return entry


def _tags(rule: DiscoveryRule) -> list[dict[str, str]]:
    return [{"tag": tag, "value": value} for tag, value in rule.object_tags]


def _graph(name: str, item_keys: tuple[str, ...]) -> dict[str, Any]:
    graph_items: list[dict[str, Any]] = []
    for position, key in enumerate(item_keys):
        graph_item: dict[str, Any] = {}
        if position:
            graph_item["sortorder"] = str(position)
        else:
            graph_item["drawtype"] = "GRADIENT_LINE"
        graph_item["color"] = COLOURS[position]
        graph_item["item"] = {"host": TEMPLATE_NAME, "key": key}
        graph_items.append(graph_item)
    return {"uuid": stable_uuid(f"graph/{name}"), "name": name, "graph_items": graph_items}


def _dashboard() -> dict[str, Any]:
    def graph_widget(name: str, x: int) -> dict[str, Any]:
        return {
            "type": "GRAPH_CLASSIC",
            "x": str(x),
            "width": "12",
            "height": "5",
            "fields": [{"type": "GRAPH", "name": "graphid", "value": {"name": name, "host": TEMPLATE_NAME}}],
        }

    return {
        "uuid": stable_uuid("dashboard/overview"),
        "name": "PG backup verification",
        "pages": [
            {
                "widgets": [
                    graph_widget("Backup: Sizes", 0),
                    graph_widget("Backup: Durations", 12),
                    {
                        "type": "PLAIN_TEXT",
                        "y": "5",
                        "width": "24",
                        "height": "6",
                        "fields": [
                            {"type": "INTEGER", "name": "show_as_html", "value": "0"},
                            {"type": "ITEM", "name": "itemids", "value": {"host": TEMPLATE_NAME, "key": keys.REPORT}},
                        ],
                    },
                    {
                        "type": "GRAPH_PROTOTYPE",
                        "y": "11",
                        "width": "24",
                        "height": "5",
                        "fields": [
                            {"type": "INTEGER", "name": "columns", "value": "2"},
                            {
                                "type": "GRAPH_PROTOTYPE",
                                "name": "graphid",
                                "value": {"name": "DB {#DB}: Table {#SCHEMA}.{#TABLE}: Rows", "host": TEMPLATE_NAME},
                            },
                        ],
                    },
                ]
            }
        ],
    }
