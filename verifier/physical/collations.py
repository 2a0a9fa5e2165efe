"""Collation versions: production's host against the restored host's, and the indexes a change breaks.

A physical copy keeps production's index files, sorted as production's C library (or ICU) sorted; on a host
whose library sorts differently those indexes silently miss rows. The versions production's host reports
are read at the instant (`verifier.postgres.collations.actual_versions`); the restored host's are read in
the restored copy; every index on a collation whose version differs is named.
"""

from __future__ import annotations

from verifier.physical.restored import RestoredCluster
from verifier.postgres.collations import actual_versions, changed, indexes_on


def collation_findings(production: dict[str, str | None], restored: RestoredCluster, dbname: str) -> list[str]:
    """Returns one line per collation of `dbname` whose version on the restored host differs from
    production's host's (`production`, as `actual_versions` read it), naming the indexes on it; empty when
    none differs. Raises DatabaseError."""
    with restored.connect(dbname) as connection:
        differing = changed(production, actual_versions(connection))
        if not differing:
            return []
        indexes = indexes_on(connection, set(differing))
    lines = []
    for name, (theirs, ours) in sorted(differing.items()):
        affected = [index.removesuffix(f" ({name})") for index in indexes if index.endswith(f" ({name})")]
        named = ", ".join(affected) if affected else "no index uses it"
        lines.append(
            f"collation {name} is {_version(ours)} on the restored host, {_version(theirs)} on production's: "
            f"indexes sorted by it may miss rows ({named})"
        )
    return lines


def _version(version: str | None) -> str:
    return "unversioned" if version is None else f"version {version}"
