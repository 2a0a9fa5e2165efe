"""A dump that restores only partly: each failed object is its own line with pg_restore's TOC entry and
error, and a SQL failure is never mistaken for a damaged archive."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SourceDatabase
from verifier.pipeline import commands
from verifier.report import Report, Status

# `label_of` reads `lookup` without a schema: fine in production (search_path has public), but pg_restore
# runs with an empty search_path, so the CHECK on `items` fails its COPY and the index on `tagged` fails.
LYING_IMMUTABLE_FUNCTION = """
CREATE TABLE lookup (id int PRIMARY KEY, label text);
INSERT INTO lookup VALUES (1, 'one'), (2, 'two');
CREATE FUNCTION label_of(i int) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT label FROM lookup WHERE id = i';
CREATE TABLE items (id int PRIMARY KEY, kind int CHECK (label_of(kind) IS NOT NULL));
INSERT INTO items SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
CREATE TABLE tagged (id int, kind int);
CREATE INDEX tagged_label ON tagged (label_of(kind));
INSERT INTO tagged VALUES (1, 1);
"""


def result(report: Report, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.name == name)


def test_each_failed_object_is_named_with_its_toc_entry(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute(LYING_IMMUTABLE_FUNCTION)
    config = source_db.config(tmp_path / "repo", dump={"jobs": 2}, verify={"jobs": 2, "content": "off"})
    report = commands.run(config)
    restore = result(report, "restore")
    assert report.exit_code == 2 and restore.status is Status.CRITICAL
    assert restore.summary.startswith("2 objects failed to restore, first ")
    lines = sorted(restore.details)
    assert len(lines) == 2, lines
    assert lines[0].startswith("INDEX tagged_label (TOC ") and 'relation "lookup" does not exist' in lines[0]
    assert lines[1].startswith("TABLE DATA items (TOC ") and 'relation "lookup" does not exist' in lines[1]
    assert result(report, "archive").status is Status.OK  # the archive itself is fine
    assert report.verification is not None and not report.verification_passed
