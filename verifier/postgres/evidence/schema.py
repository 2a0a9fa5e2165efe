"""The schema as a kind of evidence: its fingerprint read in the snapshot (`fingerprint`: every object's
definition, hashed, with the printed texts kept where PostgreSQL prints them differently after a restore)
and in the restored copy, compared with the definitions parsed again where only their print differs
(`reparse`), extension versions named apart; damaged by the self-test (`schema_damage`).

Against the snapshot a difference fails the verdict; a backup without a manifest is compared with
production's schema now, which names the differences but fails nothing (`Findings.verdict` False).
"""

from __future__ import annotations

from verifier.findings import Findings
from verifier.manifest import FINGERPRINT_VERSION
from verifier.postgres import catalog
from verifier.postgres.evidence import fingerprint, reparse, schema_damage
from verifier.postgres.evidence.damage import Damage
from verifier.postgres.evidence.kind import OLDER_AGENT, Kind, ProductionSnapshot, RestoredCopy

NAME = "schema"


def read_catalog(snapshot: ProductionSnapshot) -> None:
    """Fingerprints production's schema first thing in the snapshot (pg_get_*def read the catalog as it is
    now, not as in the snapshot), into the manifest's schema fields. Raises psycopg.Error."""
    read = fingerprint.fingerprint_schema(snapshot.session)
    snapshot.sections |= {
        "schema_objects": read.objects,
        "schema_fingerprint": read.fingerprint,
        "schema_texts": read.texts(),
        "extensions": read.extensions,
    }


def read_restored(connection: catalog.Connection, copy: RestoredCopy) -> None:
    """Reads the restored copy's schema fingerprint on the proof's first session. Raises psycopg.Error."""
    copy.state[NAME] = fingerprint.fingerprint_schema(connection)


def judge(copy: RestoredCopy) -> None:
    """Compares the restored schema with the manifest's (an older manifest: not compared) or, without one,
    with production's now (read here; unreadable: nothing compared, the reason in `production_error`),
    recording the differences and the extensions whose version differs. Raises psycopg.Error."""
    restored: fingerprint.SchemaFingerprint = copy.state[NAME]
    manifest = copy.manifest
    if manifest is not None:
        schema = copy.verification.findings_of(NAME)
        if manifest.manifest_version >= FINGERPRINT_VERSION:
            schema.problems = reparse.real_schema_differences(
                manifest.schema_objects, manifest.schema_texts, restored, copy.connect
            )
        else:
            schema.not_compared = OLDER_AGENT
        schema.warnings = fingerprint.extension_differences(manifest.extensions, restored.extensions)
        return
    production = copy.read_production(fingerprint.fingerprint_schema)
    if production is not None:
        schema = copy.verification.findings_of(NAME)
        schema.verdict = False  # against production now, not a snapshot: a WARNING, not the verdict
        schema.problems = reparse.real_schema_differences(
            production.objects, production.texts(), restored, copy.connect
        )


def _caught(damage: Damage, findings: Findings) -> bool:
    return damage.evidence in findings.problems


KIND = Kind(
    NAME,
    checks=(NAME,),
    caught=_caught,
    damages=(schema_damage.drop_an_index, schema_damage.change_another_check),
    read_catalog=read_catalog,
    read_restored=read_restored,
    judge=judge,
)
