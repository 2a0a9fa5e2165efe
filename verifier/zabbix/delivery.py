"""Delivering a run's values: spool first, then discovery, host items and discovered items.

Order and guarantees:
1. values waiting in the spool are resent first, oldest first, with their original clocks;
2. the discovery values (LLD) go before the values of the items they create;
3. a value for a newly discovered item that Zabbix refuses is retried until `lld_retry_seconds`
   have passed without Zabbix accepting one more of them (the server creates the items of one
   host's discovery rules one rule after another, and accepts values only after its next
   configuration cache update, 60 s by default: while it is still creating items, the wait goes
   on); tables already discovered on an earlier run are not waited for, so a table excluded by the
   LLD filter costs no time;
4. as soon as Zabbix cannot be reached, the rest (spooled and new) goes to the spool, bounded.
A value Zabbix refused is reported by key, never spooled: resending it cannot succeed until
someone imports the template or links the host.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from verifier.zabbix.sender import RAN_OUT, Transport, UnreachableError
from verifier.zabbix.spool import Spool, SpooledValue, write_durably
from verifier.zabbix.values import Value, Values

logger = logging.getLogger(__name__)

RETRY_INTERVAL_SECONDS = 2.0
SPOOL_SAVE_EVERY = 100


@dataclass
class Delivery:
    """What happened to one run's values."""

    delivered: int = 0
    resent_from_spool: int = 0
    refused: list[str] = field(default_factory=list)
    spooled: int = 0
    dropped_total: int = 0
    dropped_now: int = 0
    unreachable: str | None = None
    skipped: list[str] = field(default_factory=list)  # unreadable spool records, skipped (and now gone)


def deliver(
    values: Values,
    host: str,
    transport: Transport,
    spool: Spool,
    *,
    known_path: Path,
    lld_retry_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
) -> Delivery:
    """Sends the spool and then `values` for `host`. Returns what was delivered, refused and spooled.

    `known_path` remembers which discovered items' keys earlier runs sent, so only new ones are
    waited for. Once `deadline` (on `clock`) has passed, nothing more is sent: the rest is spooled, as
    when Zabbix is unreachable (the transport bounds a send in progress by the same deadline). Raises
    OSError when the spool cannot be read or written.
    """
    result = Delivery()
    content = spool.load()
    result.dropped_total = content.dropped
    result.skipped = list(content.skipped)
    if content.skipped:  # rewritten without them now, so they are named once, not every night
        spool.save(content.values, content.dropped)

    def send(value: SpooledValue) -> bool:
        if deadline is not None and clock() >= deadline:
            raise UnreachableError(RAN_OUT)
        return _send(transport, value)

    spooled = list(content.values)
    host_values = [_spooled(host, value) for value in (*values.discovery, *values.items)]
    prototype_values = [_spooled(host, value) for value in values.prototypes]
    queue = [*spooled, *host_values, *prototype_values]
    first_prototype = len(spooled) + len(host_values)
    refused_prototypes: list[SpooledValue] = []
    waiting = refused_prototypes  # refused so far in this pass, to be retried: spooled too if Zabbix goes away
    position = 0
    try:
        while position < len(queue):
            value = queue[position]
            accepted = send(value)
            if accepted and position < len(spooled):
                result.resent_from_spool += 1
            elif accepted:
                result.delivered += 1
            elif position >= first_prototype:
                refused_prototypes.append(value)
            else:
                result.refused.append(value.key)
            position += 1
            if position <= len(spooled) and (position == len(spooled) or position % SPOOL_SAVE_EVERY == 0):
                spool.save(spooled[position:], content.dropped)  # what was resent is never resent again
        known = _load_known(known_path)
        if any(value.key in result.refused for value in values.discovery):
            known = {value.key for value in refused_prototypes}  # no discovery, no items to wait for
        queue = [value for value in refused_prototypes if value.key not in known]
        position, waiting = 0, []
        result.refused += [value.key for value in refused_prototypes if value.key in known]
        retry_until = _window_end(clock(), lld_retry_seconds, deadline)
        while queue and clock() < retry_until:
            sleep(RETRY_INTERVAL_SECONDS)
            still_refused: list[SpooledValue] = []
            waiting = still_refused
            for position, value in enumerate(queue):  # noqa: B007 - position is read after an exception
                if send(value):
                    result.delivered += 1
                else:
                    still_refused.append(value)
            if len(still_refused) < len(queue):  # Zabbix is still creating items: wait a window more
                retry_until = _window_end(clock(), lld_retry_seconds, deadline)
            queue, position, waiting = still_refused, 0, []
        result.refused += [value.key for value in queue]
        _save_known(known_path, {value.key for value in prototype_values})
    except UnreachableError as error:
        result.unreachable = str(error)
        remaining = [*waiting, *queue[position:]]
        logger.warning("Zabbix unreachable (%s): spooling %d values", error, len(remaining))
        bounded = spool.bounded(remaining, content.dropped)
        spool.save(bounded.values, bounded.dropped)
        result.spooled = len(bounded.values)
        result.dropped_now = bounded.dropped - content.dropped
        result.dropped_total = bounded.dropped
    return result


def _window_end(now: float, seconds: float, deadline: float | None) -> float:
    """Returns when a retry window begun `now` ends: `seconds` later, and never past `deadline`."""
    return now + seconds if deadline is None else min(now + seconds, deadline)


def _spooled(host: str, value: Value) -> SpooledValue:
    return SpooledValue(host, value.key, value.value, value.clock, value.ns)


def _send(transport: Transport, value: SpooledValue) -> bool:
    return transport.send(value.host, value.key, value.value, value.clock, value.ns)


def _load_known(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, TypeError) as error:
        logger.warning("%s unreadable (%s): treating every discovered item as new", path, error)
        return set()


def _save_known(path: Path, keys: set[str]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_durably(path, json.dumps(sorted(keys), ensure_ascii=False) + "\n")
