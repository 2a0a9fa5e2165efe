"""pg_restore's stderr turned into failed objects: one issue per TOC entry that failed, with its entry
number and error text, and each issue that merely follows from an earlier failure grouped under it.

pg_restore (run with --verbose) writes, for every failed entry:

    pg_restore: from TOC entry 217; 1259 16403 TABLE orders app
    pg_restore: error: could not execute query: ERROR:  relation "orders" already exists
    Command was: CREATE TABLE public.orders (...

Under `--jobs` the workers share stderr, so other workers' progress lines may fall between the two
lines, and a line's "pg_restore: " prefix may be split from its text; an entry line is therefore kept
until the next error consumes it. An error that is no SQL error (a damaged archive: "could not read",
"could not uncompress") belongs to the archive, whatever entry was being read.
"""

from __future__ import annotations

import re

from verifier.report import RestoreIssue

ARCHIVE = "archive"  # the object of errors reading the archive itself (checks/archive.py looks for it)

_TOC_ENTRY = re.compile(r"from TOC entry (?P<entry>\d+); \d+ \d+ (?P<object>.+?)(?: \S+)?$")
_ERROR_PREFIX = "pg_restore: error:"
_SQL_ERRORS = ("could not execute query:", "COPY failed for table")
_QUOTED = re.compile(r'"([^"]+)"')
_COMMAND = re.compile(r"^Command was: (?P<command>.*)$")


def parse_pg_restore_errors(stderr: str) -> list[RestoreIssue]:
    """Returns one issue per failed TOC entry (several errors of one entry joined with "; "), in the
    order pg_restore reported them; `caused_by` names the earlier failed object an issue follows from.
    An error without its entry line is named by its "Command was:" statement; archive errors by
    ARCHIVE. (pg_restore's own "errors ignored" total is not used: under --jobs it over-counts.)"""
    issues: list[RestoreIssue] = []
    by_entry: dict[int, int] = {}  # TOC entry → index in issues
    pending: tuple[int, str] | None = None  # the entry line not yet followed by its error
    last: tuple[int, str] | None = None  # the entry of the previous SQL error
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        entry = _TOC_ENTRY.search(line)
        if entry is not None:
            pending = (int(entry.group("entry")), entry.group("object"))
            continue
        if not line.startswith(_ERROR_PREFIX):
            continue
        message = _clean(line.removeprefix(_ERROR_PREFIX))
        if not any(sign in line for sign in _SQL_ERRORS):
            issues.append(RestoreIssue(ARCHIVE, message))
            continue
        detail, command = _continuation(lines, index + 1)
        if detail:
            message = f"{message} ({detail})"
        if pending is None and last is not None:  # pg_restore names an entry once, before its first error
            pending = last
        toc_entry, name = pending if pending is not None else (None, _object_of(command, line))
        last, pending = pending, None
        if toc_entry is not None and toc_entry in by_entry:  # a second error of the same entry (e.g. its OWNER TO)
            earlier = issues[by_entry[toc_entry]]
            issues[by_entry[toc_entry]] = RestoreIssue(
                earlier.object, f"{earlier.message}; {message}", earlier.toc_entry, earlier.caused_by
            )
            continue
        if toc_entry is not None:
            by_entry[toc_entry] = len(issues)
        issues.append(RestoreIssue(name, message, toc_entry, _cause(name, message, issues)))
    return issues


def failed_object_lines(issues: list[RestoreIssue]) -> list[str]:
    """Returns one line per failed object, each followed by the (indented) objects that failed because
    of it, e.g. `TABLE orders (TOC 217): relation "orders" already exists`. Pure."""
    roots = [issue for issue in issues if issue.caused_by is None]
    lines: list[str] = []
    for root in roots:
        lines.append(describe(root))
        lines.extend(f"  ↳ {describe(issue)}" for issue in issues if issue.caused_by == root.object)
    return lines


def describe(issue: RestoreIssue) -> str:
    """Returns `object (TOC n): message` (without the TOC part when the entry is unknown). Pure."""
    entry = f" (TOC {issue.toc_entry})" if issue.toc_entry is not None else ""
    return f"{issue.object}{entry}: {issue.message}"


# -- helpers ------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Returns pg_restore's error text without its boilerplate, whitespace collapsed."""
    text = text.replace("could not execute query: ", "").replace("ERROR:  ", "")
    return " ".join(text.split())


def _continuation(lines: list[str], start: int) -> tuple[str, str]:
    """Returns (DETAIL text, the first line of "Command was:") from the lines after an error line,
    up to the next pg_restore line."""
    detail, command = "", ""
    for line in lines[start:]:
        if line.startswith("pg_restore:"):
            break
        if line.startswith("DETAIL:") and not detail:
            detail = " ".join(line.removeprefix("DETAIL:").split())
        match = _COMMAND.match(line)
        if match is not None:
            command = match.group("command").strip()
    return detail, command


def _object_of(command: str, error_line: str) -> str:
    """Returns the object a failed statement was restoring, from its first words, e.g.
    "CREATE INDEX tagged_label ON public.tagged USING …" → "INDEX tagged_label ON public.tagged"."""
    copy_failed = re.search(r'COPY failed for table "(?P<table>[^"]+)"', error_line)
    if copy_failed is not None:
        return f"TABLE DATA {copy_failed.group('table')}"
    words = command.rstrip(";(").split()
    if not words:
        return "unknown object"
    if words[0] == "COPY" and len(words) > 1:
        return f"TABLE DATA {words[1]}"
    if words[0] == "CREATE":
        words = [word for word in words[1:] if word not in ("OR", "REPLACE", "UNIQUE")]
        cut = words.index("USING") if "USING" in words else min(len(words), 4 if "ON" in words[:3] else 2)
        return " ".join(words[:cut]).split("(")[0]
    return " ".join(words[:4])


def _cause(name: str, message: str, earlier: list[RestoreIssue]) -> str | None:
    """Returns the earlier failed (root) object this failure follows from: one whose name is the
    first word of this object's name (TABLE DATA orders after TABLE orders, CONSTRAINT orders
    orders_pkey), or which the message quotes ("relation "public.orders" does not exist")."""
    quoted = {part.rsplit(".", 1)[-1] for part in _QUOTED.findall(message)}
    parts = name.split()
    for issue in earlier:
        if issue.caused_by is not None or issue.object == ARCHIVE:
            continue
        root_name = issue.object.split()[-1].rsplit(".", 1)[-1]
        own = [part.rsplit(".", 1)[-1] for part in parts]
        if root_name in quoted or (len(own) > 1 and root_name in own[1:] and issue.object != name):
            return issue.object
    return None


# -- what the sandbox cannot reach ---------------------------------------------------------------

_FOREIGN_SERVER = re.compile(r'could not connect to server "(?P<server>[^"]+)"')  # postgres_fdw
_NO_CONNECTION = ("could not establish connection", "Network is unreachable", "Connection refused")
_VIEW_DATA = "MATERIALIZED VIEW DATA "
_PSQL_LINE = re.compile(r" \(line \d+\)$")  # psql's issues name the failing line after the object


def outside_need(issue: RestoreIssue) -> str | None:
    """Returns what a failure needed from outside the sandbox ("foreign server X", or "a connection out
    of the sandbox" for dblink and the like), or None when it failed for another reason. Pure."""
    server = _FOREIGN_SERVER.search(issue.message)
    if server is not None:
        return f"foreign server {server.group('server')}"
    if any(sign in issue.message for sign in _NO_CONNECTION):
        return "a connection out of the sandbox"
    return None


def unverifiable_views(issues: list[RestoreIssue]) -> dict[str, str]:
    """Returns {materialized view (as the restore named it, without its kind): what it needed} for the
    views whose REFRESH failed only because the sandbox reaches no other server. Pure."""
    views = {}
    for issue in issues:
        need = outside_need(issue)
        if need is not None and issue.object.startswith(_VIEW_DATA):
            views[_view_name(issue)] = need
    return views


def _view_name(issue: RestoreIssue) -> str:
    return _PSQL_LINE.sub("", issue.object.removeprefix(_VIEW_DATA)).strip()


def failures(issues: list[RestoreIssue]) -> list[RestoreIssue]:
    """Returns the issues that are the backup's failures: all but the REFRESHes the sandbox could not run
    for want of a foreign server (`unverifiable_views`), which the materialized views' check names. Pure."""
    views = unverifiable_views(issues)
    return [issue for issue in issues if not (issue.object.startswith(_VIEW_DATA) and _view_name(issue) in views)]
