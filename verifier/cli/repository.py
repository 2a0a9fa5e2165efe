"""`verifier list`, `history`, `prune` and `report`: what the repository holds and did.

Parsing and output only; the work is in `repository.retention`, `repository.history` and the renderers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from verifier.check_registry import CheckContext, run_check
from verifier.cli.backup import add_db_option, only_database
from verifier.config import Config, load_config
from verifier.errors import LockHeld, NothingToReportError
from verifier.pipeline.report_delivery import build_page
from verifier.render.html import render_html
from verifier.render.retention import plan_table
from verifier.render.text import render_text
from verifier.report import Command, report_from_dict
from verifier.repository import retention
from verifier.repository.backups import Repository
from verifier.repository.databases import Databases
from verifier.repository.history import History, RunRecord
from verifier.repository.lock import RepositoryLock
from verifier.units import format_age, format_bytes, format_seconds

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds prune, history, list and report to the `verifier` command."""
    prune = commands.add_parser(
        "prune", parents=[common], help="apply retention now (also the last step of `run`)",
        description="Plans which backups retention keeps and deletes (keep_days, keep_min, keep_daily/weekly/"
        "monthly; never the newest verified backup, never a foreign file), prints the plan, then deletes.",
    )  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    prune.add_argument("--json", action="store_true", help="print the plan as JSON")
    prune.add_argument("--offsite", action="store_true", help="the off-site targets' plan (offsite_retention)")
    add_db_option(prune)
    prune.set_defaults(handler=prune_command)

    history = commands.add_parser(
        "history", parents=[common], help="past runs: id, command, status, durations, sizes",
        description="Lists the last runs, newest first: run id (for `verifier report --run`), when, which "
        "command, the run's status, the dump and restore+compare durations, the backup's size and name.",
    )  # fmt: skip
    history.add_argument("--json", action="store_true", help="print the runs as JSON")
    history.add_argument("--last", type=int, default=20, metavar="N", help="show the last N runs (default 20)")
    add_db_option(history)
    history.set_defaults(handler=history_command)

    listing = commands.add_parser(
        "list", parents=[common], help="the backups with their verification and age",
        description="Lists the backups in the repository, newest first: when taken, age, size, format, "
        "and whether the last verification of each passed.",
    )  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print the backups as JSON")
    add_db_option(listing)
    listing.add_argument(
        "--physical",
        action="store_true",
        help="the physical backups (physical: pgBackRest), their proofs and the WAL window",
    )
    listing.set_defaults(handler=list_command)

    report = commands.add_parser(
        "report", parents=[common], help="the integrity report of the last run (text, HTML or JSON)",
        description="Renders the report of the newest run (or --run ID) from the history: plain text, a "
        "self-contained HTML page for a browser or e-mail (to a file or a pipe, not to a terminal), or the JSON "
        "report. Exit 0 when the report was produced, 3 when it could not be.",
    )  # fmt: skip
    report.add_argument("--format", choices=("text", "html", "json"), help="default text")
    report.add_argument("--output", type=Path, metavar="FILE", help="write to this file instead of stdout")
    report.add_argument("--run", metavar="RUN_ID", help="a run id from `verifier history` (default: the newest)")
    add_db_option(report)
    report.set_defaults(handler=report_command)


def prune_command(arguments: argparse.Namespace) -> int:
    """Prints the retention plan and applies it unless --dry-run. Returns 0, or 1 when something was
    refused, failed or dated in the future. Raises LockHeld while a run holds the repository."""
    if arguments.offsite:
        from verifier.cli.offsite import prune_command as offsite_prune

        return offsite_prune(arguments)
    config = load_config(arguments.config)
    chosen = chosen_repositories(arguments, config)
    parts: list[tuple[str | None, object, str]] = []
    worst = 0
    with RepositoryLock(Repository(config.repository.path).lock_path):  # the root's: one lock for all
        for name, repository in chosen:
            data, text, exit_code = _prune(repository, config, dry_run=arguments.dry_run)
            parts.append((name, data, text))
            worst = max(worst, exit_code)
    if len(parts) == 1 and parts[0][0] is None and arguments.json:
        print(json.dumps(parts[0][1], default=str))  # one line, as it always was
    else:
        _print_each(parts, as_json=arguments.json)
    return worst


def _prune(repository: Repository, config: Config, *, dry_run: bool) -> tuple[dict[str, object], str, int]:
    """Plans retention for `repository` and applies it unless `dry_run`. Returns the plan as data, as
    text, and the exit code of the retention check (0 when disabled)."""
    plan = retention.plan_repository(
        repository, History(repository.history_path), config.retention, now=datetime.now(UTC),
        timezone=config.schedule.display_zone,
    )  # fmt: skip
    outcome = retention.apply(plan, repository.path, dry_run=dry_run)
    context = CheckContext(
        config=config, now=datetime.now(UTC), command=Command.PRUNE, backups=[], single_file=False, quick=False,
        dump=None, integrity=None, verification=None, retention=(plan, outcome),
    )  # fmt: skip
    result = run_check("retention", context)  # None when checks.disabled names it
    shown = asdict(result) if result is not None else None
    lines = [plan_table(plan)]
    if result is not None:
        lines.append(("dry run: " if dry_run else "") + result.summary)
        lines.extend(f"  {line}" for line in result.details)
    data = {**plan.to_dict(), "dry_run": dry_run, "result": shown}
    return data, "\n".join(lines), result.status.exit_code if result is not None else 0


def history_command(arguments: argparse.Namespace) -> int:
    """Prints the last runs, newest first (of each database with source.databases). Returns 0."""
    config = load_config(arguments.config)
    zone = config.schedule.display_zone
    parts = []
    for name, repository in chosen_repositories(arguments, config):
        history = History(repository.history_path)
        with _reading_history(history):
            records = history.runs(limit=max(arguments.last, 1))
        parts.append((name, [asdict(record) for record in records], _history_table(records, zone)))
    _print_each(parts, as_json=arguments.json)
    return 0


def _history_table(records: Sequence[RunRecord], zone: tzinfo) -> str:
    """Returns the runs as a table ("no runs yet" when there are none)."""
    if not records:
        return "no runs yet"
    rows = [("run", "started", "command", "status", "dump", "verify", "size")]
    for record in records:
        rows.append(
            (
                record.run_id,
                record.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                record.command,
                record.status,
                _seconds(record.dump_seconds, record.dump_ok),
                _seconds(record.verify_seconds, record.verify_ok),
                format_bytes(record.size_bytes) if record.size_bytes is not None else "—",
            )
        )
    return _table(rows)


def chosen_repositories(arguments: argparse.Namespace, config: Config) -> list[tuple[str | None, Repository]]:
    """Returns the repositories a command about the repository covers: the one of a single-database
    config (named None), else `--db`'s or every database's the repository holds. Raises RepositoryError
    when the repository (or `--db`'s database) does not exist."""
    dbname = only_database(arguments, config)
    if not config.source.several:
        repository = Repository(config.repository.path)
        repository.must_exist()
        return [(None, repository)]
    databases = Databases(config.repository.path)
    databases.root.must_exist()
    return [(name, databases.repository(name)) for name in databases.chosen(dbname)]


def _print_each(parts: Sequence[tuple[str | None, object, str]], *, as_json: bool) -> None:
    """Prints each database's (name, data, text): the text (under a line naming the database when there
    are several), or the data as JSON (an object by database name when there are several)."""
    if len(parts) == 1 and parts[0][0] is None:  # a single-database config: as it always was
        print(json.dumps(parts[0][1], default=_json_default, indent=2) if as_json else parts[0][2])
        return
    if as_json:
        print(json.dumps({name: data for name, data, _ in parts}, default=_json_default, indent=2))
        return
    if not parts:
        print("no databases in the repository yet")
    for index, (name, _, text) in enumerate(parts):
        print(("\n" if index else "") + f"── database {name} ──")
        print(text)


def list_command(arguments: argparse.Namespace) -> int:
    """Prints every backup, newest first, with its age, size and verification (of each database with
    source.databases). Returns 0."""
    if arguments.physical:
        from verifier.cli.physical import list_physical

        return list_physical(arguments)
    config = load_config(arguments.config)
    parts = []
    for name, repository in chosen_repositories(arguments, config):
        entries, text = _listing(repository, config.schedule.display_zone)
        parts.append((name, entries, text))
    _print_each(parts, as_json=arguments.json)
    return 0


def _listing(repository: Repository, zone: tzinfo) -> tuple[list[dict[str, object]], str]:
    """Returns the backups of `repository`, newest first, as data and as a table."""
    now = datetime.now(UTC)
    history = History(repository.history_path)
    with _reading_history(history):
        verifications = history.verifications()
    entries: list[dict[str, object]] = []
    for backup in reversed(repository.backups()):
        record = verifications.get(backup.name)
        entries.append(
            {
                "name": backup.name,
                "created_at": backup.created_at.isoformat(),
                "age_seconds": int((now - backup.created_at).total_seconds()),
                "size_bytes": backup.size_bytes,
                "format": backup.format,
                "manifest": not backup.legacy,
                "problem": backup.problem,  # why its manifest cannot be trusted: its verification no longer holds
                "verification": None if record is None else ("OK" if record.verify_ok else "FAILED"),
                "verified_at": None if record is None else (record.finished_at or record.started_at).isoformat(),
                "dump_path": str(backup.dump_path),
            }
        )
    if not entries:
        return entries, f"no backups in {repository.path}"
    rows = [("backup", "taken", "age", "size", "format", "verification")]
    for entry, backup in zip(entries, reversed(repository.backups()), strict=False):
        verification = entry["verification"] or "not verified"
        if backup.problem is not None:  # what it was verified as is no longer what lies here
            verification = "UNTRUSTED: " + backup.problem.split(":", 1)[0]
        rows.append(
            (
                str(entry["name"]) + ("" if entry["manifest"] or backup.problem else " (no manifest)"),
                backup.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                format_age(now - backup.created_at),
                format_bytes(backup.size_bytes),
                backup.format,
                str(verification),
            )
        )
    return entries, _table(rows)


def report_command(arguments: argparse.Namespace) -> int:
    """Writes the chosen run's report in the chosen format. Returns 0 (the report was produced,
    whatever the run's status).

    Raises NothingToReportError when the history holds no (such) run or the file cannot be written.
    """
    if arguments.format == "html" and arguments.output is None and sys.stdout.isatty():
        arguments.command_parser.error("HTML is not shown on a terminal: add --output FILE, or pipe it")
    suffix = arguments.output.suffix.lower().lstrip(".") if arguments.output else ""
    if arguments.format is None and suffix in ("html", "htm", "json"):
        arguments.command_parser.error(f"--output {arguments.output} would be plain text: add --format {suffix[:4]}")
    arguments.format = arguments.format or "text"
    config = load_config(arguments.config)
    chosen = chosen_repositories(arguments, config)
    if arguments.format == "html" and len(chosen) != 1:
        raise NothingToReportError("an HTML report is of one database: name it with --db NAME")
    if arguments.run is not None and len(chosen) != 1:
        raise NothingToReportError("--run ID is a run of one database: name it with --db NAME")
    if not chosen:
        raise NothingToReportError(f"no database in {config.repository.path} yet: run `verifier run` first")
    stored_by_name: dict[str, object] = {}
    texts: list[str] = []
    for name, repository in chosen:
        stored, output = _report_of(repository, config, arguments.run, arguments.format)
        stored_by_name[name or ""] = stored
        texts.append(output if name is None else f"── database {name} ──\n{output}")
    if chosen[0][0] is not None and arguments.format == "json":
        output = json.dumps(stored_by_name, indent=2) + "\n"
    else:
        output = "\n".join(texts)
    if arguments.output is None:
        sys.stdout.write(output)
    else:
        try:
            arguments.output.write_text(output, encoding="utf-8")
        except OSError as error:
            raise NothingToReportError(f"--output {arguments.output}: cannot write: {error.strerror}") from None
        print(f"wrote {arguments.output}", file=sys.stderr)
    return 0


def _report_of(repository: Repository, config: Config, run_id: str | None, output_format: str) -> tuple[object, str]:
    """Returns the stored report of run `run_id` (None: the newest) of `repository` and its rendering
    in `output_format`. Raises NothingToReportError when the history holds no (such) run."""
    history = History(repository.history_path)
    with _reading_history(history):
        if run_id is None:
            newest = history.runs(limit=1)
            if not newest:
                raise NothingToReportError(f"no run in the history of {repository.path} yet: run `verifier run` first")
            run_id = newest[0].run_id
        try:
            stored = history.report_of(run_id)
        except KeyError:
            raise NothingToReportError(f"no run {run_id} in the history (see `verifier history`)") from None
        report = report_from_dict(stored)
        if output_format == "json":
            return stored, json.dumps(stored, indent=2) + "\n"
        page = build_page(report, config, repository, history)
        return stored, render_html(page) if output_format == "html" else render_text(page)


@contextlib.contextmanager
def _reading_history(history: History) -> Iterator[None]:
    """Turns an unreadable history (a corrupt or foreign file) into one line and exit 3."""
    try:
        yield
    except sqlite3.Error as error:
        raise NothingToReportError(f"cannot read the run history {history.path}: {error}") from None


def remove_partials(repository: Repository) -> None:
    """Removes what an aborted dump left (`*.partial`), under the lock so no other run is writing."""
    try:
        with RepositoryLock(repository.lock_path):
            for path in repository.remove_partials():
                logger.info("removed %s left by the aborted run", path.name)
    except (LockHeld, OSError) as error:
        logger.warning("partial files not removed now (the next run removes them): %s", error)


def _seconds(seconds: float | None, ok: bool | None) -> str:
    if seconds is None:
        return "—"
    return format_seconds(seconds) + ("" if ok or ok is None else " FAILED")


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
