"""`verify.assertions:` the user's own rules about the data, each a single SELECT run on the restored copy.

An assertion is `{name, sql, expect}`: `sql` returns one row with one column; `expect` is either a value
compared with that column's text form ("3", "t", "active") or a numeric comparison ("= 0", ">= 3",
"< 100"). Assertions are not the verdict: a backup is good or bad on its own; an assertion says whether
the data in it is what the user expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from verifier.config_section import Duration, Section

_COMPARISON = re.compile(r"^(>=|<=|<>|!=|=|<|>)\s*(\S+)$")
_FIRST_WORD = re.compile(r"^\s*(\w+)")


@dataclass(frozen=True)
class Expectation:
    """What the assertion's one value must be: equal as text (`operator` None) or compare as a number."""

    operator: str | None
    operand: str

    def holds(self, got: str | None) -> bool:
        """Returns True when `got` (the column's text form, None for NULL) meets the expectation."""
        if got is None:
            return False
        if self.operator is None:
            return got == self.operand
        try:
            number = Decimal(got)
        except InvalidOperation:
            return False
        expected = Decimal(self.operand)
        return {
            "=": number == expected,
            "<>": number != expected,
            "!=": number != expected,
            "<": number < expected,
            "<=": number <= expected,
            ">": number > expected,
            ">=": number >= expected,
        }[self.operator]


def parse_expectation(text: str) -> Expectation:
    """Returns the expectation `text` spells: "OP NUMBER" compares numerically, anything else as text.

    Raises ValueError when an operator is followed by something that is not a number.
    """
    match = _COMPARISON.match(text.strip())
    if match is None:
        if text.strip()[:1] in ("<", ">", "=", "!"):
            raise ValueError(f"expected a value or a comparison such as '>= 3', got {text!r}")
        return Expectation(None, text)
    operator, operand = match.groups()
    try:
        Decimal(operand)
    except InvalidOperation:
        raise ValueError(f"'{operator}' compares numbers: {operand!r} is not a number (e.g. '{operator} 3')") from None
    return Expectation(operator, operand)


def _expect_text(value: Any) -> Any:
    """YAML's `expect: 3` and `expect: true` are the text forms PostgreSQL shows: "3" and "t"."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    return value


class Assertion(Section):
    """One rule about the restored data, e.g. "there are at least 3 plans"."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        description="short label (letters, digits, _ . -): the check `assertion NAME`, the Zabbix {#ASSERTION}"
    )
    sql: str = Field(description="one SELECT returning one row with one column, run read-only on the restored copy")
    expect: Annotated[str, BeforeValidator(_expect_text)] = Field(
        description="the value as text ('3', 't') or a numeric comparison ('>= 3', '= 0', '< 100')"
    )
    timeout: Duration = Field(default=60.0, description="the query's statement_timeout")

    @field_validator("sql")
    @classmethod
    def _one_select(cls, sql: str) -> str:
        first = _FIRST_WORD.match(sql)
        if first is None or first.group(1).upper() not in ("SELECT", "WITH"):
            raise ValueError("expected one SELECT (or WITH ... SELECT) returning one row with one column")
        if ";" in sql.strip().rstrip(";"):
            raise ValueError("expected one statement: remove the ';' between statements")
        return sql.strip().rstrip(";")

    @field_validator("expect")
    @classmethod
    def _valid_expectation(cls, expect: str) -> str:
        parse_expectation(expect)
        return expect

    @property
    def expectation(self) -> Expectation:
        """Returns the parsed `expect`."""
        return parse_expectation(self.expect)


def _unique_names(assertions: list[Assertion]) -> list[Assertion]:
    names = [assertion.name for assertion in assertions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"assertion names must be unique: {', '.join(duplicates)} used more than once")
    return assertions


Assertions = Annotated[list[Assertion], AfterValidator(_unique_names)]
"""`verify.assertions`: names unique (each is its own check and Zabbix item)."""
