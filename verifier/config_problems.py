"""A config file's text on its way to the models: `${ENV}` interpolation, and every validation problem as
one line named by its YAML path, with a suggestion for a misspelt key."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, path: tuple[str | int, ...], environment: Any, problems: list[str]) -> Any:
    """Returns `value` with every `${NAME}` / `${NAME:-default}` replaced from `environment`; a variable
    that is not set (and has no default) is added to `problems`, named by its YAML path."""
    if isinstance(value, dict):
        return {key: interpolate(item, (*path, key), environment, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, (*path, index), environment, problems) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environment:
            return str(environment[name])
        if default is not None:
            return default
        problems.append(f"{_dotted(path)}: environment variable {name} is not set")
        return ""

    return _ENV_REFERENCE.sub(substitute, value)


_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "path_type": "expected a path",
}


def describe(detail: ErrorDetails, root: type[BaseModel]) -> str:
    """Returns one validation problem as one line: its YAML path (below the `root` model) and what to fix."""
    location = [part for part in detail["loc"] if not (isinstance(part, str) and "[" in part)]
    path = _dotted(tuple(location))
    kind = detail["type"]
    given = detail.get("input")
    if kind == "missing":
        return f"{path}: required"
    if kind == "extra_forbidden":
        return f"{path}: unknown key{_suggestion(location, root)}"
    if kind in _EXPECTED:
        return f"{path}: {_EXPECTED[kind]}, got {_show(given)}"
    if kind == "literal_error":
        expected = str(detail.get("ctx", {}).get("expected", ""))
        several = " or " in expected  # pydantic lists several allowed values as "'a', 'b' or 'c'"
        return f"{path}: expected {'one of ' if several else ''}{expected}, got {_show(given)}"
    message = detail["msg"].removeprefix("Value error, ")
    return f"{path}: {message}" + (f", got {_show(given)}" if kind not in ("value_error", "assertion_error") else "")


def _suggestion(location: list[Any], root: type[BaseModel]) -> str:
    model = root
    for part in location[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = next((c for c in candidates if issubclass(c, BaseModel)), None)
        if nested is None:
            return ""
        model = nested
    names = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(location[-1]), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(names)})"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"
