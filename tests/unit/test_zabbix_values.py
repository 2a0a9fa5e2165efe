"""Report → Zabbix values, and the sender-side half of "every key sent exists in the template"; a night of several
databases as one push (one discovery per rule with every database's rows, the host summarising the night)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from verifier.manifest import FileEntry, Manifest, SourceInfo, TableCount
from verifier.report import AssertionOutcome, CheckResult, DumpOutcome, Report, Status, TableComparison, Verification
from verifier.repository.backups import Backup
from verifier.zabbix import keys
from verifier.zabbix.night_values import (
    HOST_RULES,
    NIGHT_OWN,
    PER_DATABASE,
    SHARED_RULES,
    DatabaseValues,
    night_values,
)
from verifier.zabbix.values import Features, Value, repository_values, values_from_report

NOW = datetime(2026, 11, 26, 3, 40, 0, 250_000, tzinfo=UTC)
TABLES = (("public", "orders", 120, 120), ("public", "users", 7, 7), ('odd "schema"', "a,b [c]", 3, 3))


def make_manifest(created_at: datetime, size: int = 4096) -> Manifest:
    return Manifest(
        name=f"shop_{created_at:%Y-%m-%d_%H-%M-%SZ}",
        format="custom",
        created_at=created_at,
        completed_at=created_at + timedelta(seconds=30),
        tool_version="0.1.0",
        pg_dump_version="15.8",
        source=SourceInfo(label="db:5432/shop", dbname="shop", server_version="15.8", server_version_num=150008),
        snapshot_id="00000003-00000002-1",
        files=[FileEntry(path="x.dump", size=size, sha256="0" * 64, chunk_size=1 << 20)],
        dump_path="x.dump",
        row_counts=[TableCount(schema=schema, table=table, rows=rows) for schema, table, rows, _ in TABLES],
        schema_objects={},
        schema_fingerprint="f" * 64,
        dump_seconds=30.0,
    )


def make_backup(created_at: datetime, size: int) -> Backup:
    manifest = make_manifest(created_at, size)
    return Backup(
        name=manifest.name,
        dump_path=Path("/repo/x.dump"),
        manifest_path=Path("/repo/x.json"),
        manifest=manifest,
        created_at=created_at,
        size_bytes=size,
        format="custom",
    )


def make_report(
    *,
    restored: dict[str, int] | None = None,
    dump_ok: bool = True,
    verified: bool = True,
    offsite: bool = False,
    proof: bool = False,
    assertions: bool = False,
) -> Report:
    manifest = make_manifest(NOW - timedelta(minutes=10))
    restored = restored or {}
    tables = []
    for schema, table, rows, restored_rows in TABLES:
        restored_rows = restored.get(table, restored_rows)
        status = Status.OK if restored_rows == rows else Status.CRITICAL
        tables.append(TableComparison(schema, table, rows, restored_rows, rows, status))
    report = Report(run_id="r1", command="run", source="db:5432/shop", started_at=NOW - timedelta(minutes=10))
    report.manifest = manifest
    report.dump = DumpOutcome(ok=dump_ok, duration_seconds=30.5, manifest=manifest if dump_ok else None)
    if verified:
        report.verification = Verification(
            backup_name=manifest.name, exact=True, restored=True, sandbox="local", tables=tables,
            restore_seconds=12.0, compare_seconds=1.5, production_compared=True,
        )  # fmt: skip
        report.verification.findings_of("schema").compared = 40
    if assertions and report.verification is not None:
        report.verification.assertions = [
            AssertionOutcome("plans", passed=True, expected=">= 3", got="4"),
            AssertionOutcome("no_orphans", passed=False, expected="= 0", got="2"),
        ]
    if offsite:
        report.results.append(
        CheckResult(
            "offsite vault", Status.OK, "3 copies",
            metrics={"target": "vault", "upload_status": 1, "proof_status": 1, "count": 3, "age_seconds": 600},
        )
    )  # fmt: skip
    if proof:  # what the recovery check and a self-test report
        report.results.append(
            CheckResult("recovery", Status.OK, "RTO 12s", metrics={"rto_seconds": 12.0, "rpo_seconds": 600})
        )
        report.results.append(
            CheckResult("selftest", Status.OK, "all caught", metrics={"passed": 1, "finished_at": 1_790_000_000})
        )
    return report


def test_offsite_targets_are_discovered_with_their_items() -> None:
    values = values_from_report(make_report(offsite=True), BACKUPS, NOW, database="shop")
    assert by_key(values.prototypes)["pgbackup.offsite.status[]"].value == "1"  # the off-site feature's item
    assert by_key(values.prototypes)['pgbackup.offsite.age["vault"]'].value == "600"
    assert '"{#TARGET}": "vault"' in by_key(values.discovery)["pgbackup.offsite.discovery"].value


def test_each_assertion_is_discovered_with_its_status() -> None:
    values = values_from_report(make_report(assertions=True), BACKUPS, NOW, database="shop")
    discovered = json.loads(by_key(values.discovery)[keys.ASSERTION_DISCOVERY].value)
    assert discovered == [{"{#ASSERTION}": "plans"}, {"{#ASSERTION}": "no_orphans"}]
    prototypes = by_key(values.prototypes)
    assert prototypes['pgbackup.assertion.status["plans"]'].value == "1"
    assert prototypes['pgbackup.assertion.status["no_orphans"]'].value == "0"
    # the user's rule about the data is not the backup's verdict
    assert by_key(values.items)[keys.VERIFY_STATUS].value == "1"


def test_no_assertions_configured_sends_no_assertion_discovery() -> None:
    values = values_from_report(make_report(), BACKUPS, NOW, database="shop")
    assert keys.ASSERTION_DISCOVERY not in by_key(values.discovery)


def by_key(values: list[Value]) -> dict[str, Value]:
    return {value.key: value for value in values}


BACKUPS = [make_backup(NOW - timedelta(days=2), 1000), make_backup(NOW - timedelta(hours=1), 3000)]


def test_host_items_describe_the_repository_and_the_run() -> None:
    values = values_from_report(make_report(), BACKUPS, NOW, database="shop")
    items = by_key(values.items)
    assert items[keys.BACKUP_COUNT].value == "2"
    assert items[keys.BACKUP_AGE].value == "3600"
    assert items[keys.BACKUP_SIZE].value == "3000"
    assert items[keys.BACKUP_TOTAL_SIZE].value == "4000"
    assert items[keys.DUMP_STATUS].value == "1"
    assert items[keys.DUMP_DURATION].value == "30.500"
    assert items[keys.VERIFY_STATUS].value == "1"
    assert items[keys.VERIFY_DURATION].value == "13.500"
    assert items[keys.VERIFY_MISMATCHED_TABLES].value == "0"
    assert items[keys.VERIFY_LAST_SUCCESS].value == str(int(NOW.timestamp()))
    assert items[keys.HEARTBEAT].value == str(int(NOW.timestamp()))
    assert "OK: run of db:5432/shop" in items[keys.REPORT].value


def test_values_carry_the_clock_they_were_measured_at() -> None:
    values = values_from_report(make_report(), BACKUPS, NOW, database="shop")
    assert {value.clock for value in values.all()} <= {
        int(NOW.timestamp()),
        int((NOW - timedelta(minutes=10) + timedelta(seconds=30)).timestamp()),  # the dump completed then
    }
    assert {value.ns for value in values.all()} == {250_000_000}


def test_discovery_lists_every_table_with_db_schema_table_macros() -> None:
    values = values_from_report(make_report(), BACKUPS, NOW, database="shop")
    discovery = by_key(values.discovery)
    rows = json.loads(discovery[keys.TABLE_DISCOVERY].value)
    assert {"{#DB}": "shop", "{#SCHEMA}": "public", "{#TABLE}": "orders"} in rows
    assert {"{#DB}": "shop", "{#SCHEMA}": '"odd ""schema"""', "{#TABLE}": '"a,b [c]"'} in rows  # as quote_ident
    assert json.loads(discovery[keys.DB_DISCOVERY].value) == [{"{#DB}": "shop"}]


def test_a_damaged_table_shows_in_status_mismatch_count_and_its_diff() -> None:
    values = values_from_report(make_report(restored={"orders": 100}), BACKUPS, NOW, database="shop")
    items = by_key(values.items)
    assert items[keys.VERIFY_STATUS].value == "0"
    assert items[keys.VERIFY_MISMATCHED_TABLES].value == "1"
    assert keys.VERIFY_LAST_SUCCESS not in items
    prototypes = by_key(values.prototypes)
    assert prototypes['pgbackup.table.diff["shop","public.orders"]'].value == "-20"
    assert prototypes['pgbackup.table.rows.restored["shop","public.orders"]'].value == "100"
    assert "public.orders" in items[keys.REPORT].value


def test_a_failed_run_still_reports_the_last_success_from_history() -> None:
    earlier = NOW - timedelta(days=1)
    values = values_from_report(
        make_report(dump_ok=False, verified=False), BACKUPS, NOW, database="shop", last_success=earlier
    )
    items = by_key(values.items)
    assert items[keys.DUMP_STATUS].value == "0"
    assert keys.VERIFY_STATUS not in items
    assert items[keys.VERIFY_LAST_SUCCESS].value == str(int(earlier.timestamp()))
    # no table discovered, but the database is, with its own failed dump (its per-database twin)
    assert [value.key for value in values.discovery] == [keys.DB_DISCOVERY]
    prototypes = by_key(values.prototypes)
    assert prototypes[keys.db_item_key(keys.DB_DUMP_STATUS, "shop")].value == "0"
    assert keys.db_item_key(keys.DB_VERIFY_STATUS, "shop") not in prototypes
    assert prototypes[keys.db_item_key(keys.DB_VERIFY_LAST_SUCCESS, "shop")].value == str(int(earlier.timestamp()))
    assert not any(key.startswith(keys.TABLE_ROWS) for key in prototypes)
    assert items[keys.NIGHT_DATABASES].value == "1" and items[keys.NIGHT_DATABASES_FAILED].value == "1"


def test_an_empty_repository_sends_count_zero_and_no_age() -> None:
    items = by_key(values_from_report(make_report(verified=False), [], NOW, database="shop").items)
    assert items[keys.BACKUP_COUNT].value == "0"
    assert keys.BACKUP_AGE not in items


def _as_prototype(key: str) -> str:
    """Maps a sent per-table/per-db key back to its prototype by the key list's own quoting."""
    for rule in keys.DISCOVERY_RULES:
        for prototype in rule.prototypes:
            base = prototype.key.split("[", 1)[0]
            if key.split("[", 1)[0] != base:
                continue
            if prototype.key.count('","') == 1:
                for database, schema, table in [("shop", s, t) for s, t, *_ in TABLES]:
                    if key == keys.table_item_key(base, database, schema, table):
                        return prototype.key
            elif key in [keys.feature_item_key(base), keys.db_item_key(base, "shop")] + [
                keys.item_key(base, n) for n in ("vault", "plans", "no_orphans", "schema")
            ]:
                return prototype.key
    return key


def test_every_key_the_sender_sends_is_in_the_template_and_every_template_key_is_sent() -> None:
    """The nightly run's two reports together: the logical proof's and the physical proof's."""
    backups = [*BACKUPS]
    features = Features(offsite=True, selftest=True, physical=True)
    values = values_from_report(
        make_report(offsite=True, proof=True, assertions=True), backups, NOW, database="shop", features=features
    )
    physical = values_from_report(make_physical_report(), backups, NOW, database="shop", features=features)
    sent = {_as_prototype(value.key) for value in [*values.all(), *physical.all()]}
    assert sent == set(keys.all_item_keys())


def make_physical_report(*, passed: bool = True) -> Report:
    """A physical proof's report (`check --physical`): its verification recovered to an instant."""
    report = Report(run_id="r2", command="check --physical", source="db:5432/shop", started_at=NOW)
    report.verification = Verification(
        backup_name="20261207-122737F@0/41203C0", exact=True, restored=True, sandbox="physical",
        restore_seconds=42.4, instant="LSN 0/41203C0 (exact)",
        inventory={"full_age": 3600, "backup_age": 600, "archive_lag": 30, "window": 86400},
    )  # fmt: skip
    if not passed:
        report.verification.findings_of("row_counts").problems.append("public.t: 1 row fewer")
    return report


def test_a_physical_proof_sends_its_own_items_and_leaves_the_logical_ones_alone() -> None:
    values = values_from_report(make_physical_report(), BACKUPS, NOW, database="shop")
    assert {value.key for value in values.items} == {keys.HEARTBEAT, keys.REPORT}  # no logical backup item
    discovered = by_key(values.prototypes)
    assert {key: value.value for key, value in discovered.items()} == {
        "pgbackup.physical.status[]": "1",
        "pgbackup.physical.rto[]": "42",
        "pgbackup.physical.full_age[]": "3600",
        "pgbackup.physical.backup_age[]": "600",
        "pgbackup.physical.archive_lag[]": "30",
        "pgbackup.physical.window[]": "86400",
    }
    failed = values_from_report(make_physical_report(passed=False), BACKUPS, NOW, database="shop")
    assert by_key(failed.prototypes)["pgbackup.physical.status[]"].value == "0"


def test_sent_keys_quote_odd_names_as_zabbix_key_syntax_requires() -> None:
    values = values_from_report(make_report(), BACKUPS, NOW, database="shop")
    assert 'pgbackup.table.rows["shop","\\"odd \\"\\"schema\\"\\"\\".\\"a,b [c]\\""]' in by_key(values.prototypes)


def test_contents_recovery_and_selftest_are_sent_as_measured() -> None:
    values = values_from_report(make_report(proof=True), BACKUPS, NOW, database="shop")
    items = by_key(values.items)
    assert items[keys.RECOVERY_RTO].value == "12.000"
    assert items[keys.RECOVERY_RPO].value == "600"
    discovered = by_key(values.prototypes)  # the contents' and self-test's items are their features' discovered
    assert discovered["pgbackup.verify.content_differing_tables[]"].value == "0"
    assert discovered["pgbackup.selftest.status[]"].value == "1"
    assert discovered["pgbackup.selftest.last_run[]"].value == "1790000000"


def test_optional_features_are_discovered_where_on_and_removed_where_off() -> None:
    on = by_key(
        values_from_report(make_report(), BACKUPS, NOW, database="shop", features=Features(True, True, True)).discovery
    )
    off = by_key(
        values_from_report(
            make_report(), BACKUPS, NOW, database="shop", features=Features(False, False, contents=False)
        ).discovery
    )
    for key in (
        keys.OFFSITE_FEATURE_DISCOVERY,
        keys.SELFTEST_FEATURE_DISCOVERY,
        keys.PHYSICAL_FEATURE_DISCOVERY,
        keys.CONTENTS_FEATURE_DISCOVERY,
    ):
        assert json.loads(on[key].value) == [{"{#SINGLETON}": ""}]
        assert json.loads(off[key].value) == []  # Zabbix removes the items of a feature switched off
    unknown = values_from_report(make_report(), BACKUPS, NOW, database="shop")  # features not given: left as they are
    assert not {keys.OFFSITE_FEATURE_DISCOVERY, keys.SELFTEST_FEATURE_DISCOVERY} & set(by_key(unknown.discovery))


def test_contents_not_compared_send_no_differing_count() -> None:
    report = make_report()
    assert report.verification is not None
    report.verification.findings_of("contents").not_compared = "verify.content off"
    report.verification.findings_of("contents").problems = []
    differing = keys.feature_item_key(keys.VERIFY_CONTENT_DIFFERING)
    values = values_from_report(report, BACKUPS, NOW, database="shop")
    assert differing not in by_key(values.prototypes) and keys.RECOVERY_RTO not in by_key(values.items)
    report.verification.findings_of("contents").not_compared = None
    report.verification.findings_of("contents").problems = ["public.orders: restored contents differ from the snapshot"]
    assert by_key(values_from_report(report, BACKUPS, NOW, database="shop").prototypes)[differing].value == "1"


def test_each_proof_check_that_compared_is_discovered_with_its_problems() -> None:
    report = make_report()
    assert report.verification is not None
    report.verification.findings_of("table_settings").problems = ["table public.a: …", "table public.b: …"]
    report.verification.findings_of("contents").not_compared = "verify.content off"
    values = values_from_report(report, BACKUPS, NOW, database="shop")
    discovered = by_key(values.discovery)[keys.PROOF_DISCOVERY].value
    assert json.loads(discovered) == [{"{#CHECK}": "schema"}, {"{#CHECK}": "table_settings"}]  # contents: off
    sent = by_key(values.prototypes)
    assert sent[keys.item_key(keys.PROOF_PROBLEMS, "schema")].value == "0"
    assert sent[keys.item_key(keys.PROOF_PROBLEMS, "table_settings")].value == "2"
    assert keys.item_key(keys.PROOF_PROBLEMS, "contents") not in sent


def test_a_restore_that_failed_discovers_no_proof_check() -> None:
    report = make_report()
    assert report.verification is not None
    report.verification.restored = False
    values = values_from_report(report, BACKUPS, NOW, database="shop")
    assert keys.PROOF_DISCOVERY not in by_key(values.discovery)


# -- a night of several databases: one push


def part(name: str, **report: object) -> DatabaseValues:
    made = make_report(**report)  # type: ignore[arg-type]
    values = values_from_report(made, BACKUPS, NOW, database=name, features=Features(offsite=False, selftest=False))
    failed = made.verification is not None and not made.verification_passed
    return DatabaseValues(name, values, failed)


def test_one_push_per_night_with_every_database_discovered_once_and_the_host_summarising() -> None:
    parts = [part("shop", proof=True), part("billing", restored={"orders": 100}, proof=True)]
    sent = night_values(parts, NOW + timedelta(minutes=5), "night report")

    assert len(sent.discovery) == len({value.key for value in sent.discovery}), "a rule sent twice"
    discovery = by_key(sent.discovery)
    assert json.loads(discovery[keys.DB_DISCOVERY].value) == [{"{#DB}": "shop"}, {"{#DB}": "billing"}]
    tables = json.loads(discovery[keys.TABLE_DISCOVERY].value)
    assert {row["{#DB}"] for row in tables} == {"shop", "billing"} and len(tables) == 6
    assert json.loads(discovery[keys.OFFSITE_FEATURE_DISCOVERY].value) == []

    items = by_key(sent.items)
    assert items[keys.VERIFY_STATUS].value == "0"  # billing failed
    assert items[keys.VERIFY_MISMATCHED_TABLES].value == "1"
    assert items[keys.NIGHT_DATABASES].value == "2" and items[keys.NIGHT_DATABASES_FAILED].value == "1"
    assert items[keys.DUMP_DURATION].value == "61.000" and items[keys.BACKUP_COUNT].value == "2"
    assert items[keys.REPORT].value == "night report"
    assert items[keys.HEARTBEAT].value == str(int((NOW + timedelta(minutes=5)).timestamp()))
    assert keys.VERIFY_LAST_SUCCESS not in items  # billing was never proven

    prototypes = by_key(sent.prototypes)
    assert prototypes[keys.db_item_key(keys.DB_VERIFY_STATUS, "shop")].value == "1"
    assert prototypes[keys.db_item_key(keys.DB_VERIFY_STATUS, "billing")].value == "0"
    assert prototypes[keys.table_item_key(keys.TABLE_DIFF, "billing", "public", "orders")].value == "-20"
    assert prototypes[keys.table_item_key(keys.TABLE_DIFF, "shop", "public", "orders")].value == "0"
    assert prototypes[keys.item_key(keys.PROOF_PROBLEMS, "schema")].value == "0"  # one check, not one per database
    assert items[keys.RECOVERY_RTO].value == "24.000"  # restoring both, one after the other
    assert len(sent.prototypes) == len(prototypes), "a key sent twice in one push"


def test_the_last_success_is_the_oldest_of_the_databases_when_each_has_one() -> None:
    earlier = NOW - timedelta(days=1)
    parts = [
        part("shop"),
        DatabaseValues("billing", repository_values(BACKUPS, NOW, database="billing", last_success=earlier), True),
    ]
    items = by_key(night_values(parts, NOW, "").items)
    assert items[keys.VERIFY_LAST_SUCCESS].value == str(int(earlier.timestamp()))
    assert items[keys.NIGHT_DATABASES_FAILED].value == "1"
    assert items[keys.BACKUP_AGE].value == "3600"


def test_every_key_has_a_rule_for_the_night() -> None:
    for item in keys.HOST_ITEMS:
        assert item.key in HOST_RULES or item.key in NIGHT_OWN, item.key
    for rule in keys.DISCOVERY_RULES:
        for prototype in rule.prototypes:
            base = keys.key_parameters(prototype.key)[0]
            assert base in PER_DATABASE or base in SHARED_RULES, base


def test_a_database_whose_proof_listed_no_table_tonight_keeps_its_newest_backups_tables_discovered() -> None:
    failed = values_from_report(make_report(dump_ok=False, verified=False), BACKUPS, NOW, database="billing")
    parts = [part("shop"), DatabaseValues("billing", failed, True, known_tables=[("public", "orders")])]
    rows = json.loads(by_key(night_values(parts, NOW, "").discovery)[keys.TABLE_DISCOVERY].value)
    assert {"{#DB}": "billing", "{#SCHEMA}": "public", "{#TABLE}": "orders"} in rows
    assert {row["{#DB}"] for row in rows} == {"shop", "billing"}
