"""What a Zabbix item key is, apart from which keys there are (`keys.py`, the list): value types, items and
discovery rules as the template declares them, and the key syntax the template and the sender share
(`item_key`, its inverse `key_parameters`, the per-table, per-database and optional-feature forms)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from verifier.names import qualified

SINGLETON = "{#SINGLETON}"
"""The macro of an optional feature's discovery: one row, `{#SINGLETON}` empty, when the feature is on, none
when it is off, so its items exist only on hosts that use it (the pattern of Zabbix's own templates)."""

STATUS_VALUE_MAP = "PG backup status"
"""Value map of the 0/1 status items: 0 Failed, 1 OK."""


class ValueType(enum.Enum):
    """Zabbix's value types as spelled in a 6.0 export, with the code history.get takes."""

    FLOAT = ("FLOAT", 0)
    TEXT = ("TEXT", 4)
    UNSIGNED = ("UNSIGNED", 3)

    @property
    def export_name(self) -> str:
        """Returns the name used in the YAML export."""
        return self.value[0]


@dataclass(frozen=True)
class Item:
    """One trapper item (or item prototype, when its key holds LLD macros)."""

    key: str
    name: str
    value_type: ValueType
    description: str
    component: str
    units: str = ""
    value_map: str | None = None
    discard_unchanged: bool = False
    history: str = "90d"


@dataclass(frozen=True)
class DiscoveryRule:
    """A trapper low-level discovery rule and its item prototypes."""

    key: str
    name: str
    description: str
    macros: tuple[str, ...]
    prototypes: tuple[Item, ...]
    object_tags: tuple[tuple[str, str], ...]
    lifetime: str = "30d"


def item_key(base: str, *parameters: str) -> str:
    """Returns `base["p1","p2"]`: every parameter quoted, `"` escaped as Zabbix's key syntax requires.

    Used both for the template's prototypes (parameters are LLD macros) and for the values the
    sender sends (parameters are real names), so the two always agree.
    """
    quoted = ",".join('"' + parameter.replace('"', '\\"') + '"' for parameter in parameters)
    return f"{base}[{quoted}]"


def key_parameters(key: str) -> tuple[str, tuple[str, ...]]:
    """Returns (base, parameters) of a key as `item_key` or `feature_item_key` made it: the inverse of both
    (`base` alone has no parameters, `base[]` one empty one). Raises ValueError for a key of other syntax."""
    base, bracket, rest = key.partition("[")
    if not bracket:
        return key, ()
    if not rest.endswith("]"):
        raise ValueError(f"not an item key: {key}")
    body, parameters, position = rest[:-1], [], 0
    while True:
        if body.startswith('"', position):
            end = position + 1
            while end < len(body) and not (body[end] == '"' and body[end - 1] != "\\"):
                end += 1
            if end >= len(body):
                raise ValueError(f"not an item key: {key}")
            parameters.append(body[position + 1 : end].replace('\\"', '"'))
            position = end + 1
        else:
            end = body.find(",", position)
            end = len(body) if end < 0 else end
            parameters.append(body[position:end])
            position = end
        if position == len(body):
            return base, tuple(parameters)
        if body[position] != ",":
            raise ValueError(f"not an item key: {key}")
        position += 1


def table_item_key(base: str, database: str, schema: str, table: str) -> str:
    """Returns the key of a per-table item, e.g. `pgbackup.table.rows["shop","public.orders"]`, the names
    quoted as quote_ident quotes them (and `{#SCHEMA}`, `{#TABLE}` carry them): plain names stay plain."""
    return item_key(base, database, qualified(schema, table))


def feature_item_key(base: str, singleton: str = "") -> str:
    """Returns the key of an optional feature's item: `base[]` as the agent sends it, or with `SINGLETON`
    the prototype's `base[{#SINGLETON}]`, which the feature's discovery turns into the same key."""
    return f"{base}[{singleton}]"


def db_item_key(base: str, database: str) -> str:
    """Returns the key of a per-database item, e.g. `pgbackup.db.rows["shop"]`."""
    return item_key(base, database)
