"""Delivery order, the spool's bound and the retry of newly discovered items, without a server.

The transport here is a fake standing in for a Zabbix server, because unit tests need nothing
but Python; `tests/integration/zabbix/` proves the same behaviour against a real Zabbix server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from verifier.zabbix.delivery import deliver
from verifier.zabbix.sender import UnreachableError
from verifier.zabbix.spool import Spool, SpooledValue
from verifier.zabbix.values import Value, Values


@dataclass
class FakeZabbix:
    """Accepts values for `known` keys; a key in `created_after` is known after that many refusals."""

    known: set[str]
    created_after: dict[str, int] = field(default_factory=dict)
    down: bool = False
    down_after: int | None = None
    stored: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    attempts: int = 0

    def send(self, host: str, key: str, value: str, clock: int, ns: int) -> bool:
        if self.down or (self.down_after is not None and self.attempts >= self.down_after):
            raise UnreachableError("connection refused")
        self.attempts += 1
        if key in self.created_after:
            if self.created_after[key] > 0:
                self.created_after[key] -= 1
                return False
            self.known.add(key)
        if key not in self.known:
            return False
        self.stored.append((host, key, value, clock, ns))
        return True


def run_values(clock: int) -> Values:
    return Values(
        discovery=[Value("pgbackup.table.discovery", "[]", clock)],
        items=[Value("pgbackup.heartbeat", str(clock), clock), Value("pgbackup.backup.count", "1", clock)],
        prototypes=[Value('pgbackup.table.rows["db","public.t"]', "5", clock)],
    )


KNOWN = {
    "pgbackup.table.discovery",
    "pgbackup.heartbeat",
    "pgbackup.backup.count",
    'pgbackup.table.rows["db","public.t"]',
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def send(values: Values, zabbix: FakeZabbix, spool: Spool, tmp_path: Path, retry: float = 10.0):  # type: ignore[no-untyped-def]
    clock = Clock()
    return deliver(
        values, "agent-host", zabbix, spool, known_path=tmp_path / "known.json",
        lld_retry_seconds=retry, sleep=clock.sleep, clock=clock,
    )  # fmt: skip


def test_values_go_discovery_first_then_items_then_discovered_items(tmp_path: Path) -> None:
    zabbix = FakeZabbix(known=set(KNOWN))
    result = send(run_values(100), zabbix, Spool(tmp_path / "spool", 10), tmp_path)
    assert [stored[1] for stored in zabbix.stored] == [value.key for value in run_values(100).all()]
    assert zabbix.stored[0][1] == "pgbackup.table.discovery"
    assert zabbix.stored[-1][1] == 'pgbackup.table.rows["db","public.t"]'
    assert result.delivered == 4 and result.refused == [] and result.unreachable is None


def test_server_down_spools_everything_and_the_next_run_resends_it_first_with_original_clocks(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 100)
    down = FakeZabbix(known=set(KNOWN), down=True)
    first = send(run_values(100), down, spool, tmp_path)
    assert first.unreachable == "connection refused" and first.spooled == 4
    assert [value.clock for value in spool.load().values] == [100] * 4

    up = FakeZabbix(known=set(KNOWN))
    second = send(run_values(200), up, spool, tmp_path)
    assert [(key, clock) for _, key, _, clock, _ in up.stored][:4] == [(v.key, 100) for v in run_values(100).all()]
    assert [clock for *_, clock, _ in up.stored[4:]] == [200] * 4
    assert second.resent_from_spool == 4 and second.delivered == 4
    assert not spool.path.exists()

    third = send(run_values(300), up, spool, tmp_path)
    assert third.resent_from_spool == 0
    assert len(up.stored) == 12, "spooled values were sent twice"


def test_server_going_down_mid_run_spools_only_the_undelivered_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 100)
    zabbix = FakeZabbix(known=set(KNOWN), down_after=2)
    result = send(run_values(100), zabbix, spool, tmp_path)
    assert result.delivered == 2 and result.spooled == 2
    assert [value.key for value in spool.load().values] == [
        "pgbackup.backup.count",
        'pgbackup.table.rows["db","public.t"]',
    ]


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 6)
    down = FakeZabbix(known=set(KNOWN), down=True)
    send(run_values(100), down, spool, tmp_path)
    result = send(run_values(200), down, spool, tmp_path)
    content = spool.load()
    assert [value.clock for value in content.values] == [100, 100, 200, 200, 200, 200]
    assert content.dropped == 2 and result.dropped_now == 2 and result.dropped_total == 2
    assert [value.key for value in content.values][:2] == [
        "pgbackup.backup.count",
        'pgbackup.table.rows["db","public.t"]',
    ]


def test_refused_values_are_reported_by_key_and_not_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 100)
    zabbix = FakeZabbix(known={"pgbackup.table.discovery", "pgbackup.heartbeat"})
    result = send(run_values(100), zabbix, spool, tmp_path)
    assert "pgbackup.backup.count" in result.refused
    assert not spool.path.exists()


def test_values_of_newly_discovered_items_are_retried_until_the_server_created_them(tmp_path: Path) -> None:
    key = 'pgbackup.table.rows["db","public.t"]'
    zabbix = FakeZabbix(known=set(KNOWN) - {key}, created_after={key: 3})
    result = send(run_values(100), zabbix, Spool(tmp_path / "spool", 10), tmp_path)
    assert result.refused == []
    assert (key, 100) in [(stored[1], stored[3]) for stored in zabbix.stored]


def test_the_wait_goes_on_while_zabbix_is_still_creating_items(tmp_path: Path) -> None:
    """One LLD worker creates a host's items rule after rule: the last may come well after the window
    began, but never longer than the window after the one before it."""
    early, late = 'pgbackup.table.rows["db","public.t"]', 'pgbackup.proof.problems["contents"]'
    values = run_values(100)
    values.prototypes.append(Value(late, "0", 100))
    zabbix = FakeZabbix(known=set(KNOWN) - {early}, created_after={early: 4, late: 8})
    result = send(values, zabbix, Spool(tmp_path / "spool", 10), tmp_path, retry=10)
    assert result.refused == []
    assert late in [stored[1] for stored in zabbix.stored]


def test_the_wait_ends_a_window_after_the_last_item_zabbix_created(tmp_path: Path) -> None:
    early, never = 'pgbackup.table.rows["db","public.t"]', 'pgbackup.proof.problems["contents"]'
    values = run_values(100)
    values.prototypes.append(Value(never, "0", 100))
    zabbix = FakeZabbix(known=set(KNOWN) - {early}, created_after={early: 4})
    result = send(values, zabbix, Spool(tmp_path / "spool", 10), tmp_path, retry=10)
    assert result.refused == [never]
    # a first pass of 5 values, 4 retries of both (the table's item is created at the 4th, 8 s in),
    # then 10 s more of retries every 2 s: 5 more attempts at the one never created
    assert zabbix.attempts == 5 + 2 * 4 + 5, zabbix.attempts


def test_items_seen_on_an_earlier_run_are_not_waited_for(tmp_path: Path) -> None:
    key = 'pgbackup.table.rows["db","public.t"]'
    filtered = FakeZabbix(known=set(KNOWN) - {key})
    send(run_values(100), filtered, Spool(tmp_path / "spool", 10), tmp_path, retry=10)
    attempts_first_run = filtered.attempts
    result = send(run_values(200), filtered, Spool(tmp_path / "spool", 10), tmp_path, retry=10)
    assert result.refused == [key]
    assert filtered.attempts - attempts_first_run == 4, "a table refused before was retried again"


def test_spool_survives_unreadable_lines(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 10)
    spool.save([SpooledValue("h", "pgbackup.heartbeat", "1", 1)], dropped=3)
    with spool.path.open("a") as handle:
        handle.write("{not json\n")
    content = spool.load()
    assert content.dropped == 3 and [value.key for value in content.values] == ["pgbackup.heartbeat"]
    assert oct(spool.path.stat().st_mode & 0o777) == "0o600"


def test_zabbix_going_away_while_new_items_are_retried_spools_them_all(tmp_path: Path) -> None:
    """Two new tables' values are refused (items not created yet); Zabbix dies during the retry:
    both values are spooled, the one refused in this pass included, none lost."""
    values = Values(
        discovery=[Value("pgbackup.table.discovery", "[]", 100)],
        items=[Value("pgbackup.heartbeat", "100", 100)],
        prototypes=[Value('pgbackup.table.rows["db","public.a"]', "1", 100),
                    Value('pgbackup.table.rows["db","public.b"]', "2", 100)],
    )  # fmt: skip
    zabbix = FakeZabbix(known={"pgbackup.table.discovery", "pgbackup.heartbeat"}, down_after=5)
    spool = Spool(tmp_path / "spool.jsonl", 100)
    result = send(values, zabbix, spool, tmp_path)
    assert result.unreachable == "connection refused"
    assert sorted(value.key for value in spool.load().values) == [
        'pgbackup.table.rows["db","public.a"]',
        'pgbackup.table.rows["db","public.b"]',
    ]
    assert result.spooled == 2 and result.refused == []


def test_a_non_utf8_spool_record_is_skipped_named_once_and_the_rest_kept(tmp_path: Path) -> None:
    """One byte that is not UTF-8 made the whole spool unreadable (UnicodeDecodeError) on every run."""
    spool = Spool(tmp_path / "spool.jsonl", 10)
    spool.save([SpooledValue("h", "pgbackup.heartbeat", "1", 1), SpooledValue("h", "pgbackup.heartbeat", "2", 2)], 0)
    lines = spool.path.read_bytes().splitlines()
    lines.insert(2, b'{"host": "h", "key": "pgbackup.backup.count", "value": "\xff", "clock": 1}')
    spool.path.write_bytes(b"\n".join(lines) + b"\n")
    content = spool.load()
    assert [value.value for value in content.values] == ["1", "2"]
    assert len(content.skipped) == 1 and content.skipped[0].startswith("line 3: UnicodeDecodeError")
    result = send(run_values(100), FakeZabbix(known=set(), down=True), spool, tmp_path)
    assert len(result.skipped) == 1
    assert spool.load().skipped == ()  # rewritten without it: named once, not every night
    assert [value.value for value in spool.load().values][:2] == ["1", "2"]


def test_past_the_deadline_nothing_more_is_sent_and_the_rest_is_spooled(tmp_path: Path) -> None:
    zabbix = FakeZabbix(known=set(KNOWN))
    spool = Spool(tmp_path / "spool.jsonl", 100)
    clock = Clock()

    class SlowZabbix(FakeZabbix):
        def send(self, host: str, key: str, value: str, clock_value: int, ns: int) -> bool:
            clock.sleep(4.0)  # each value takes 4 s
            return super().send(host, key, value, clock_value, ns)

    slow = SlowZabbix(known=zabbix.known)
    result = deliver(
        run_values(100), "agent-host", slow, spool, known_path=tmp_path / "known.json",
        lld_retry_seconds=60, sleep=clock.sleep, clock=clock, deadline=10.0,
    )  # fmt: skip
    assert result.delivered == 3 and result.spooled == 1
    assert result.unreachable is not None and "run_timeout" in result.unreachable
    assert [value.key for value in spool.load().values] == ['pgbackup.table.rows["db","public.t"]']
