"""What one proof check's evidence found on a restored copy: `Findings`, kept in `Verification.findings`
under the check's name (`contents`, `sequences`, `constraints`, ...).

Reports stored before findings existed kept one field per kind (`content_differences`, `object_problems`,
...). `legacy_fields` writes those fields from findings (the JSON report keeps every key it had) and
`findings_from_legacy` reads them back into findings, from one table of names (`_SINGLE`, `_KEYED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Measure = int | float | str


@dataclass
class Findings:
    """One proof check's findings: `problems` fail the verdict (unless `verdict` is False), `warnings` are
    named but fail nothing, `notes` say what is worth knowing; `compared` counts what was compared and
    `not_compared` says why nothing was. `measures` holds what only this kind measures (content modes,
    hashing seconds)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compared: int = 0
    not_compared: str | None = None
    verdict: bool = True  # False: judged against production now, not a snapshot, so the problems fail nothing
    measures: dict[str, Measure] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Returns True when these findings fail the verdict."""
        return self.verdict and bool(self.problems)


# The fields reports had before findings: check name -> {Findings attribute: the old field}. A `measures.`
# attribute is a key of `measures`; `modes` was a list, kept in measures as "full/sample".
_SINGLE: dict[str, dict[str, str]] = {
    "schema": {"problems": "schema_differences", "warnings": "extension_differences",
               "not_compared": "schema_not_compared"},
    "contents": {"problems": "content_differences", "compared": "content_tables", "measures.modes": "content_modes",
                 "measures.restored_seconds": "content_seconds",
                 "measures.production_seconds": "content_production_seconds",
                 "not_compared": "content_not_compared"},
    "sequences": {"problems": "sequence_problems", "warnings": "sequence_warnings", "compared": "sequences_compared"},
}  # fmt: skip
# the old fields that were dictionaries keyed by check name (and one not_compared shared by the checks)
_KEYED: dict[tuple[str, ...], dict[str, str]] = {
    ("large_objects", "materialized_views", "constraints"): {
        "problems": "object_problems", "notes": "object_notes", "warnings": "object_warnings",
        "compared": "objects_compared", "not_compared": "objects_not_compared",
    },
    ("database_properties", "replication"): {
        "problems": "database_problems", "warnings": "database_warnings", "notes": "database_notes",
        "compared": "database_compared", "not_compared": "database_not_compared",
    },
}  # fmt: skip
_DEFAULTS: dict[str, Any] = {"problems": [], "warnings": [], "notes": [], "compared": 0, "not_compared": None}
_MEASURE_DEFAULTS: dict[str, Any] = {"modes": [], "restored_seconds": 0.0, "production_seconds": 0.0}


def legacy_fields(findings: dict[str, Findings]) -> dict[str, Any]:
    """Returns the fields a report had before findings, as they would have been written for `findings`."""
    legacy: dict[str, Any] = {}
    for name, spec in _SINGLE.items():
        found = findings.get(name)
        for attribute, old in spec.items():
            legacy[old] = _legacy_value(found, attribute)
    for names, spec in _KEYED.items():
        for attribute, old in spec.items():
            if attribute == "not_compared":
                reasons = [findings[name].not_compared for name in names if name in findings]
                legacy[old] = next((reason for reason in reasons if reason is not None), None)
            else:
                legacy[old] = {name: _legacy_value(findings[name], attribute) for name in names if name in findings}
    return legacy


def findings_from_legacy(data: dict[str, Any]) -> dict[str, Findings]:
    """Returns the findings a report stored before findings existed holds in its old fields (`data`: the
    stored verification). A kind none of whose fields is set is left out, as nothing was compared."""
    findings: dict[str, Findings] = {}
    for name, spec in _SINGLE.items():
        values = {attribute: data.get(old) for attribute, old in spec.items() if data.get(old) not in (None, [], 0)}
        if values:
            findings[name] = _from_values(values)
    for names, spec in _KEYED.items():
        shared = data.get(spec["not_compared"])
        for name in names:
            values = {
                attribute: (data.get(old) or {}).get(name)
                for attribute, old in spec.items()
                if attribute != "not_compared" and (data.get(old) or {}).get(name) is not None
            }
            if values or shared is not None:
                findings[name] = _from_values({**values, "not_compared": shared})
    if "schema" in findings:
        findings["schema"].verdict = bool(data.get("exact", True))
    return findings


def _legacy_value(found: Findings | None, attribute: str) -> Any:
    if attribute.startswith("measures."):
        key = attribute.removeprefix("measures.")
        value = found.measures.get(key, _MEASURE_DEFAULTS[key]) if found is not None else _MEASURE_DEFAULTS[key]
        return [mode for mode in value.split("/") if mode] if key == "modes" and isinstance(value, str) else value
    value = getattr(found, attribute) if found is not None else _DEFAULTS[attribute]
    return list(value) if isinstance(value, list) else value


def _from_values(values: dict[str, Any]) -> Findings:
    found = Findings()
    for attribute, value in values.items():
        if attribute == "measures.modes":
            found.measures["modes"] = "/".join(str(mode) for mode in value)
        elif attribute.startswith("measures."):
            found.measures[attribute.removeprefix("measures.")] = float(value)
        elif attribute in ("problems", "warnings", "notes"):
            setattr(found, attribute, [str(line) for line in value])
        elif attribute == "compared":
            found.compared = int(value)
        else:
            found.not_compared = None if value is None else str(value)
    return found
