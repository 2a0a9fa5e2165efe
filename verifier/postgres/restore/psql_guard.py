"""Plain SQL is untrusted input to psql: nothing in it may run as a psql meta-command.

psql runs backslash commands it reads (`\\!`, `\\o |cmd`, `\\copy … program`, `\\setenv`,
`\\connect`) as whoever runs psql, anywhere outside quotes, comments and COPY data, also in the
middle of a line; object names with newlines made them appear in pg_dump's own output before
15.14/16.10/17.6 (CVE-2025-8714). Two layers keep them out:

- before anything runs, `scan_plain` lexes the whole file as psql does (quotes, dollar quotes,
  nested comments, `COPY … FROM stdin` data up to `\\.`) and a restore is refused when it finds a
  meta-command other than pg_dump's own `\\restrict KEY` … `\\unrestrict KEY` frame;
- psql itself runs in `\\restrict` mode (a random key, given with `--command`) where the installed
  psql has it, so a meta-command the scan could not see still cannot run. A file that brings its
  own frame (pg_dump 15.14+ writes one) is restricted by that frame instead: the scan guarantees
  nothing but comments stands outside it.

Without `\\restrict`, the scan is the only guard: it then also refuses a string whose end depends on
`standard_conforming_strings` (a quote after an odd run of backslashes), where psql's reading and
ours could differ.
"""

from __future__ import annotations

import gzip
import re
import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from verifier.process import Executor

BLOCK_BYTES = 1024 * 1024
STATEMENT_KEEP_BYTES = 64 * 1024  # enough of a statement's unquoted text to classify it
_OWN_FRAME = re.compile(rb"\\(un)?restrict ([A-Za-z0-9]+)[ \t]*\r?$")
_INTERESTING = re.compile(rb"['\"$\\;/\-\n()]")
_DOLLAR_TAG = re.compile(rb"\$([A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$")
_IDENTIFIER_BYTE = re.compile(rb"[A-Za-z0-9_$\x80-\xff]")
_SERVER_STATEMENT = re.compile(
    r"^(DROP DATABASE|(?:CREATE|ALTER|DROP) (?:ROLE|USER|GROUP)|ALTER SYSTEM|CREATE DATABASE|ALTER DATABASE)\b"
)
_COPY_FROM_STDIN = re.compile(r"^COPY (?:BINARY )?[^()]*?(?:\([^()]*\) ?)?FROM STDIN\b")
# psql 15.14+, 16.10+, 17.6+ (and 14.19+, 13.22+, all of 18) have \restrict
_FIRST_MINOR_WITH_RESTRICT = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}


@dataclass(frozen=True)
class Finding:
    """Something in the file, at a line (1-based, as psql numbers them)."""

    line: int
    what: str


@dataclass
class PlainScan:
    """What `scan_plain` found outside quotes, comments and COPY data."""

    meta_commands: list[Finding] = field(default_factory=list)  # pg_dump's own frame included
    server_statements: list[Finding] = field(default_factory=list)
    ambiguous_quote: Finding | None = None
    sql_outside_frame: Finding | None = None  # first SQL before an own \restrict or after \unrestrict

    def foreign_meta_command(self) -> Finding | None:
        """Returns the first meta-command that is not pg_dump's own `\\restrict`…`\\unrestrict` frame."""
        frame = self._own_frame()
        for finding in self.meta_commands:
            if frame is None or finding not in frame:
                return finding
        return None

    def restricts_itself(self) -> bool:
        """Returns whether the file opens with pg_dump's `\\restrict KEY` and closes with the same key."""
        return self._own_frame() is not None

    def _own_frame(self) -> tuple[Finding, ...] | None:
        if not self.meta_commands or not self.meta_commands[0].what.startswith("\\restrict "):
            return None
        first, last = self.meta_commands[0], self.meta_commands[-1]
        if len(self.meta_commands) == 1:  # a dump cut before its \unrestrict: psql stays restricted to its end
            return (first,)
        if last.what == "\\un" + first.what[1:]:
            return first, last
        return None


@dataclass(frozen=True)
class PsqlPlan:
    """How psql may restore a file: refused (with the reason), or with an optional restrict key."""

    refusal: str | None
    restrict_key: str | None = None


def plan_restore(executor: Executor, dump_path: Path, *, server: bool) -> PsqlPlan:
    """Scans `dump_path` (gzip or not) and decides how psql may restore it. Returns the plan.

    `server` (the scratch-database sandbox) also refuses statements acting on the whole server.
    Raises OSError when the file cannot be opened; a damaged compressed stream is scanned as far as it
    reads (the restore stops at the same place and reports it).
    """
    with dump_path.open("rb") as raw:
        scan = scan_plain(_open_plain(raw))
    restricting = psql_has_restrict(executor)
    refusal = _refusal(scan, server=server, restricting=restricting)
    if refusal is not None:
        return PsqlPlan(refusal)
    if not restricting or scan.restricts_itself():
        return PsqlPlan(None)
    return PsqlPlan(None, restrict_key=secrets.token_hex(16))


def psql_has_restrict(executor: Executor) -> bool:
    """Returns whether the executor's psql has `\\restrict` (asks `psql --version`)."""
    program = executor.start(["psql", "--version"], environment={})
    output = b"".join(program.stdout_chunks()).decode(errors="replace")
    program.wait()
    return supports_restrict(output)


def supports_restrict(version_output: str) -> bool:
    """Returns whether a `psql --version` output names a psql with `\\restrict`."""
    match = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?", version_output)
    if match is None:
        return False
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    if major >= 18:
        return True
    return major in _FIRST_MINOR_WITH_RESTRICT and minor >= _FIRST_MINOR_WITH_RESTRICT[major]


def scan_plain(stream: BinaryIO) -> PlainScan:
    """Lexes plain SQL as psql reads it. Returns the meta-commands, server-wide statements and
    ambiguous quotes found outside quotes, comments and COPY data (at most the first 100 of each).
    A read error ends the scan where it occurs.
    """
    return _Lexer().run(_blocks(stream))


def _refusal(scan: PlainScan, *, server: bool, restricting: bool) -> str | None:
    foreign = scan.foreign_meta_command()
    if foreign is not None:
        return f"the dump contains psql meta-commands (line {foreign.line}: {foreign.what}); nothing of it was run"
    if scan.restricts_itself() and scan.sql_outside_frame is not None:
        where = scan.sql_outside_frame.line
        return f"the dump has SQL outside its \\restrict frame (line {where}); nothing of it was run"
    if server and scan.server_statements:
        first = scan.server_statements[0]
        return (
            f"the dump contains {first.what} (line {first.line}), which acts on the whole server: "
            f"verify.sandbox server does not restore it (use the local sandbox); nothing of it was run"
        )
    if not restricting and scan.ambiguous_quote is not None:
        return (
            f"the dump has a string whose end depends on standard_conforming_strings (line "
            f"{scan.ambiguous_quote.line}) and this psql has no \\restrict: restore it with psql 15.14+, "
            f"16.10+ or 17.6+; nothing of it was run"
        )
    return None


def _open_plain(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[return-value]


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """Yields the stream's blocks up to its end or to the first read error: the restore then stops at
    the same place and reports it, so everything psql will see has been scanned."""
    try:
        while block := stream.read(BLOCK_BYTES):
            yield block
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return


class _Lexer:
    """psql's reading of a script, reduced to what matters here. Works on whole lines of a buffer."""

    LIMIT = 100

    def __init__(self) -> None:
        self.scan = PlainScan()
        self.line = 1  # line number at the buffer's position
        self.state = "normal"  # normal | quote | estring | identifier | dollar | comment | copy
        self.dollar_tag = b""
        self.comment_depth = 0
        self.paren_depth = 0
        self.statement = bytearray()  # the current statement's unquoted text (quoted parts as placeholders)
        self.statement_line = 0
        self.frame_open = False
        self.frame_closed = False

    def run(self, blocks: Iterator[bytes]) -> PlainScan:
        pending = b""
        for block in blocks:
            data = pending + block
            cut = data.rfind(b"\n") + 1  # lex whole lines; the rest waits for the next block
            self._lex(data[:cut])
            pending = data[cut:]
        if pending:
            self._lex(pending + b"\n")
        self._end_statement()
        return self.scan

    # -- the states ------------------------------------------------------------------------------

    def _lex(self, data: bytes) -> None:
        position = 0
        while position < len(data):
            if self.state == "copy":
                position = self._copy_data(data, position)
            elif self.state == "normal":
                position = self._normal(data, position)
            elif self.state in ("quote", "estring"):
                position = self._quoted(data, position, b"'")
            elif self.state == "identifier":
                position = self._quoted(data, position, b'"')
            elif self.state == "dollar":
                position = self._dollar(data, position)
            else:
                position = self._comment(data, position)

    def _copy_data(self, data: bytes, position: int) -> int:
        """COPY data runs to a line that is exactly `\\.` (psql also takes `\\.\\r`)."""
        search = position
        while True:
            found = data.find(b"\\.", search)
            if found < 0:
                self.line += data.count(b"\n", position)
                return len(data)
            at_line_start = found == 0 or data[found - 1 : found] == b"\n"
            rest = data[found + 2 : found + 4]
            if at_line_start and (rest.startswith(b"\n") or rest == b"\r\n"):
                end = data.index(b"\n", found) + 1
                self.line += data.count(b"\n", position, end)
                self.state = "normal"
                return end
            search = found + 2

    def _normal(self, data: bytes, position: int) -> int:
        match = _INTERESTING.search(data, position)
        end = match.start() if match else len(data)
        self._keep(data[position:end])
        if match is None:
            return end
        char = data[end : end + 1]
        if char == b"\n":
            self.line += 1
            self._keep(b" ")
            return end + 1
        if char == b"\\":
            return self._meta_command(data, end)
        if char == b"'":
            escaped = end > 0 and data[end - 1 : end] in (b"e", b"E") and not _identifier_before(data, end - 1)
            self.state = "estring" if escaped else "quote"
            self._keep(b"?")
            return end + 1
        if char == b'"':
            self.state = "identifier"
            self._keep(b'"x"')
            return end + 1
        if char == b"$":
            tag = _DOLLAR_TAG.match(data, end)
            if tag is None or _identifier_before(data, end):
                self._keep(char)
                return end + 1
            self.state, self.dollar_tag = "dollar", tag.group(0)
            self._keep(b"?")
            return tag.end()
        if char == b"-" and data[end + 1 : end + 2] == b"-":
            newline = data.find(b"\n", end)
            return newline if newline >= 0 else len(data)
        if char == b"/" and data[end + 1 : end + 2] == b"*":
            self.state, self.comment_depth = "comment", 1
            return end + 2
        if char == b"(":
            self.paren_depth += 1
        elif char == b")":
            self.paren_depth = max(0, self.paren_depth - 1)
        elif char == b";" and self.paren_depth == 0:
            copy_follows = self._end_statement()
            if copy_follows:  # data starts on the next line
                newline = data.find(b"\n", end)
                if data[end + 1 : newline].strip():  # psql would read it after the data: pg_dump never writes it
                    self._record(self.scan.meta_commands, Finding(self.line, "text after COPY … FROM stdin;"))
                self.line += 1
                self.state = "copy"
                return newline + 1
            return end + 1
        self._keep(char)
        return end + 1

    def _meta_command(self, data: bytes, position: int) -> int:
        newline = data.find(b"\n", position)
        text = data[position:newline].rstrip(b"\r")
        own = _OWN_FRAME.match(text)
        if own is not None and position > 0 and data[position - 1 : position] != b"\n":
            own = None  # pg_dump writes its frame on lines of their own
        shown = text.decode(errors="replace") if own else text.split()[0].decode(errors="replace")[:20]
        self._record(self.scan.meta_commands, Finding(self.line, shown))
        if own is not None and own.group(1) is None and not self.frame_open:
            self.frame_open = True
        elif own is not None and own.group(1) is not None:
            self.frame_closed = True
        self.line += 1
        return newline + 1

    def _quoted(self, data: bytes, position: int, quote: bytes) -> int:
        escapes = self.state == "estring"
        while True:
            found = data.find(quote, position)
            scanned_to = found if found >= 0 else len(data)
            if escapes:  # E'…': a backslash takes the next byte, so an escaped quote does not end it
                backslash = data.find(b"\\", position, scanned_to)
                if backslash >= 0:
                    self.line += data.count(b"\n", position, backslash + 2)
                    position = backslash + 2
                    continue
            self.line += data.count(b"\n", position, scanned_to)
            if found < 0:
                return len(data)
            if quote == b"'" and not escapes and _odd_backslashes_before(data, found):
                self._ambiguous()
            if data[found + 1 : found + 2] == quote:  # doubled: part of the text
                position = found + 2
                continue
            self.state = "normal"
            return found + 1

    def _dollar(self, data: bytes, position: int) -> int:
        found = data.find(self.dollar_tag, position)
        scanned_to = found if found >= 0 else len(data)
        self.line += data.count(b"\n", position, scanned_to)
        if found < 0:
            return len(data)
        self.state = "normal"
        return found + len(self.dollar_tag)

    def _comment(self, data: bytes, position: int) -> int:
        while True:
            opening, closing = data.find(b"/*", position), data.find(b"*/", position)
            if closing < 0 and opening < 0:
                self.line += data.count(b"\n", position)
                return len(data)
            if opening >= 0 and (closing < 0 or opening < closing):
                self.comment_depth += 1
                self.line += data.count(b"\n", position, opening)
                position = opening + 2
                continue
            self.comment_depth -= 1
            self.line += data.count(b"\n", position, closing)
            position = closing + 2
            if self.comment_depth == 0:
                self.state = "normal"
                return position

    # -- statements ----------------------------------------------------------------------------

    def _keep(self, text: bytes) -> None:
        if text.strip() and not self.statement.strip():
            self.statement_line = self.line
            if (not self.frame_open or self.frame_closed) and self.scan.sql_outside_frame is None:
                self.scan.sql_outside_frame = Finding(self.line, "SQL")
        if len(self.statement) < STATEMENT_KEEP_BYTES:
            self.statement += text

    def _end_statement(self) -> bool:
        """Classifies the statement that just ended. Returns whether psql now reads COPY data."""
        words = " ".join(self.statement.decode(errors="replace").split()).upper()
        self.statement.clear()
        if not words:
            return False
        server = _SERVER_STATEMENT.match(words)
        if server is not None:
            self._record(self.scan.server_statements, Finding(self.statement_line, server.group(1)))
        return _COPY_FROM_STDIN.match(words) is not None

    def _ambiguous(self) -> None:
        if self.scan.ambiguous_quote is None:
            self.scan.ambiguous_quote = Finding(self.line, "quote after a backslash")

    def _record(self, findings: list[Finding], finding: Finding) -> None:
        if len(findings) < self.LIMIT:
            findings.append(finding)


def _identifier_before(data: bytes, position: int) -> bool:
    return position > 0 and _IDENTIFIER_BYTE.match(data, position - 1) is not None


def _odd_backslashes_before(data: bytes, position: int) -> bool:
    count = 0
    while position - count - 1 >= 0 and data[position - count - 1] == 0x5C:
        count += 1
    return count % 2 == 1
