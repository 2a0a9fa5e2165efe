"""The bundled template: generated from the key list, committed as generated, valid for a 6.0 import."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import yaml

from verifier.zabbix import keys
from verifier.zabbix.export import TEMPLATE_FILE_NAME, render_template
from verifier.zabbix.template import (
    CONTENTS_TRIGGERS,
    DB_TRIGGERS,
    MACROS,
    PHYSICAL_TRIGGERS,
    SELFTEST_TRIGGERS,
    TEMPLATE_NAME,
    TRIGGERS,
)

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "zabbix-templates" / TEMPLATE_FILE_NAME


def exported_template() -> dict[str, Any]:
    document = yaml.safe_load(TEMPLATE_PATH.read_text(encoding="utf-8"))
    [template] = document["zabbix_export"]["templates"]
    return dict(template)


def template_item_keys(template: dict[str, Any]) -> set[str]:
    found = {item["key"] for item in template["items"]}
    for rule in template["discovery_rules"]:
        found.add(rule["key"])
        found.update(prototype["key"] for prototype in rule["item_prototypes"])
    return found


def test_committed_template_is_the_generated_one() -> None:
    assert TEMPLATE_PATH.read_text(encoding="utf-8") == render_template(), (
        "zabbix-templates/ is stale: run `verifier zabbix template --output "
        f"zabbix-templates/{TEMPLATE_FILE_NAME}` and commit it"
    )


def test_every_key_in_the_key_list_is_in_the_template() -> None:
    assert set(keys.all_item_keys()) - template_item_keys(exported_template()) == set()


def test_every_template_item_is_in_the_key_list() -> None:
    assert template_item_keys(exported_template()) - set(keys.all_item_keys()) == set()


def test_design_contract_keys_are_all_there() -> None:
    design = {
        "pgbackup.heartbeat", "pgbackup.backup.age", "pgbackup.backup.count", "pgbackup.backup.size",
        "pgbackup.backup.total_size", "pgbackup.dump.status", "pgbackup.dump.duration", "pgbackup.verify.status",
        "pgbackup.verify.duration", "pgbackup.verify.mismatched_tables", "pgbackup.verify.last_success",
        "pgbackup.report", "pgbackup.table.discovery", "pgbackup.db.discovery",
        'pgbackup.table.rows["{#DB}","{#SCHEMA}.{#TABLE}"]',
        'pgbackup.table.rows.restored["{#DB}","{#SCHEMA}.{#TABLE}"]',
        'pgbackup.table.diff["{#DB}","{#SCHEMA}.{#TABLE}"]',
    }  # fmt: skip
    assert design <= set(keys.all_item_keys())


def test_uuids_are_unique_uuid4_and_stable() -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    found = re.findall(r"uuid: ([0-9a-f]+)", text)
    assert len(found) == len(set(found)) > 20
    for value in found:
        assert len(value) == 32
        assert uuid.UUID(hex=value).version == 4
    assert re.findall(r"uuid: ([0-9a-f]+)", render_template()) == found


def test_items_are_trapper_items_with_a_component_tag() -> None:
    template = exported_template()
    items = list(template["items"])
    for rule in template["discovery_rules"]:
        assert rule["type"] == "TRAP"
        items += rule["item_prototypes"]
    for item in items:
        assert item["type"] == "TRAP", item["key"]
        assert any(tag["tag"] == "component" for tag in item["tags"]), item["key"]
        if item.get("value_type") == "TEXT":
            assert item["trends"] == "0"


def test_macros_carry_the_design_defaults() -> None:
    defaults = {macro["macro"]: macro["value"] for macro in exported_template()["macros"]}
    assert defaults["{$PGBACKUP.AGE.MAX}"] == "36h"
    assert defaults["{$PGBACKUP.COUNT.MIN}"] == "3"
    assert defaults["{$PGBACKUP.NODATA}"] == "26h"
    assert defaults["{$PGBACKUP.SIZE.DROP}"] == "50"
    assert all(macro.description for macro in MACROS)


def test_triggers_reference_template_items_and_macros_only() -> None:
    known_keys = set(keys.all_item_keys())
    macros = {macro.name for macro in MACROS}
    for trigger in (*TRIGGERS, *CONTENTS_TRIGGERS, *SELFTEST_TRIGGERS, *PHYSICAL_TRIGGERS):
        expression = trigger.full_expression()
        referenced = re.findall(rf"/{re.escape(TEMPLATE_NAME)}/([^,)]+(?:\[[^\]]*\])?)", expression)
        assert referenced, trigger.name
        assert set(referenced) <= known_keys, trigger.name
        assert set(re.findall(r"\{\$[A-Z.]+\}", expression)) <= macros, trigger.name
        assert "{HOST.NAME}" not in trigger.name and "{ITEM.LASTVALUE" not in trigger.name


def test_design_triggers_exist_with_their_severities() -> None:
    severities = {trigger.name: trigger.priority for trigger in TRIGGERS}
    assert severities == {
        "PG backup: Agent sent no report": "AVERAGE",
        "PG backup: Newest backup is too old": "HIGH",
        "PG backup: No successful verification for too long": "HIGH",
        "PG backup: Fewer backups than expected": "WARNING",
        "PG backup: Last dump failed": "HIGH",
        "PG backup: Last verification failed": "HIGH",
        "PG backup: Restored row counts differ from the snapshot": "HIGH",
        "PG backup: Newest backup is much smaller than the previous one": "WARNING",
        "PG backup: Restore takes longer than the recovery time objective": "AVERAGE",
        "PG backup: Data-loss window exceeds the recovery point objective": "HIGH",
    }
    # on the optional features' discovered items: they exist only where the feature is on
    assert {trigger.name: trigger.priority for trigger in CONTENTS_TRIGGERS} == {
        "PG backup: Restored contents differ from the snapshot": "HIGH",
    }
    assert {trigger.name: trigger.priority for trigger in SELFTEST_TRIGGERS} == {
        "PG backup: Self-test missed a damage": "HIGH",
        "PG backup: Self-test has not run for too long": "WARNING",
    }


def test_staleness_triggers_depend_on_the_heartbeat_so_a_silent_agent_raises_one_alarm() -> None:
    by_name = {trigger.name: trigger for trigger in TRIGGERS}
    for name in ("PG backup: Newest backup is too old", "PG backup: No successful verification for too long"):
        assert by_name[name].dependencies == ("PG backup: Agent sent no report",)
    assert "nodata(" in by_name["PG backup: Agent sent no report"].expression


def test_every_trigger_is_in_the_export_exactly_once() -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    names = [
        trigger["name"]
        for item in document["zabbix_export"]["templates"][0]["items"]
        for trigger in item.get("triggers", [])
    ]
    assert sorted(names) == sorted(trigger.name for trigger in TRIGGERS)
    rules = {rule["key"]: rule for rule in document["zabbix_export"]["templates"][0]["discovery_rules"]}
    for key, triggers in (
        (keys.SELFTEST_FEATURE_DISCOVERY, SELFTEST_TRIGGERS),
        (keys.CONTENTS_FEATURE_DISCOVERY, CONTENTS_TRIGGERS),
        (keys.PHYSICAL_FEATURE_DISCOVERY, PHYSICAL_TRIGGERS),
    ):
        prototypes = [
            trigger["name"] for item in rules[key]["item_prototypes"] for trigger in item.get("trigger_prototypes", [])
        ]
        assert sorted(prototypes) == sorted(trigger.name for trigger in triggers), key


def test_template_readme_and_walkthrough_name_every_item_macro_and_trigger() -> None:
    root = TEMPLATE_PATH.parents[1]
    readme = (root / "zabbix-templates" / "README.md").read_text(encoding="utf-8")
    walkthrough = (root / "docs" / "zabbix.md").read_text(encoding="utf-8")
    for key in keys.all_item_keys():
        assert key in readme, key
    for macro in MACROS:
        assert macro.name in readme and macro.default in readme, macro.name
    for trigger in (*TRIGGERS, *CONTENTS_TRIGGERS, *SELFTEST_TRIGGERS, *DB_TRIGGERS, *PHYSICAL_TRIGGERS):
        assert trigger.name in readme and trigger.name in walkthrough, trigger.name


def test_each_database_has_the_host_triggers_on_its_own_items_with_context_macros() -> None:
    [rule] = [rule for rule in exported_template()["discovery_rules"] if rule["key"] == keys.DB_DISCOVERY]
    prototypes = {
        trigger["name"]: trigger for item in rule["item_prototypes"] for trigger in item.get("trigger_prototypes", [])
    }
    assert sorted(prototypes) == sorted(trigger.name for trigger in DB_TRIGGERS)
    failed = prototypes["DB {#DB}: Last verification failed"]
    assert failed["expression"] == f'last(/{TEMPLATE_NAME}/pgbackup.db.verify.status["{{#DB}}"])=0'
    assert failed["priority"] == "HIGH"
    stale = prototypes["DB {#DB}: Newest backup is too old"]
    assert '{$PGBACKUP.AGE.MAX:"{#DB}"}' in stale["expression"]
    assert stale["dependencies"][0]["name"] == "PG backup: Agent sent no report"
    assert {"tag": "database", "value": "{#DB}"} in stale["tags"]
    for trigger in prototypes.values():  # no host-level key or context-free threshold left in a prototype
        assert '["{#DB}"]' in trigger["expression"], trigger["name"]
        assert not re.search(r"\{\$PGBACKUP\.[A-Z_.]+\}", trigger["expression"]), trigger["name"]
