"""A real Zabbix 6.0 server for the session, the template imported, and helpers to read it back.

Each test makes its own host (`host_for`), so tests do not see each other's values or problems.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from zabbix_utils import ZabbixAPI

from tests.support import leftovers
from tests.support.requirements import need
from tests.support.zabbix_server import ADMIN_PASSWORD, ADMIN_USER, ZabbixServer, zabbix_installed
from verifier.config import Config
from verifier.postgres.binaries import Installation
from verifier.zabbix.setup import ApiCredentials, SetupOutcome, setup

T = TypeVar("T")
POLL_SECONDS = 60.0


@pytest.fixture(scope="session")
def zabbix_server(postgres_installation: Installation) -> Iterator[ZabbixServer]:
    """Zabbix server + API + its database, started once per session (about 2 s from the cache)."""
    need(zabbix_installed(), "Zabbix server 6.0 with frontend and php-cli (dev/install-zabbix)")
    with ZabbixServer(postgres_installation) as server:
        yield server


@pytest.fixture(autouse=True)
def nothing_left_behind(zabbix_server: ZabbixServer) -> Iterator[None]:
    """The integration guard, with the session's Zabbix server already running before the snapshot."""
    servers_before, dirs_before = leftovers.postgres_servers(), leftovers.temp_dirs()
    yield
    assert leftovers.postgres_servers() - servers_before == set(), "a postgres server was left running"
    assert leftovers.temp_dirs() - dirs_before == set(), "a temp directory was left behind"


@pytest.fixture(scope="session")
def zabbix_api(zabbix_server: ZabbixServer) -> Iterator[ZabbixAPI]:
    """The API, logged in as the default administrator."""
    api = ZabbixAPI(url=zabbix_server.api_url, user=ADMIN_USER, password=ADMIN_PASSWORD)
    yield api
    api.logout()


@pytest.fixture
def host_name() -> str:
    """A host name no other test uses."""
    return f"pgbv-test-{secrets.token_hex(4)}"


def zabbix_section(server: ZabbixServer, host: str) -> dict[str, Any]:
    """Returns the config's zabbix: section for `host` on the test server, with an LLD retry window of
    300 s. A first push to a new host discovers several rules at once (the database, its tables, the proof
    checks, the optional features), and Zabbix creates one host's rules one after another (its LLD manager
    queues by host). On the loaded 2-core CI machine, measured in a full run, the rules' items came 2 s,
    about 12 s, about 60 s and more than 150 s after the push. The product's 90 s default is a window
    since the last item Zabbix created, and it was exceeded there. A healthy push ends as soon as every
    value is accepted, so the longer window costs nothing unless Zabbix is slow."""
    return {"server": "127.0.0.1", "port": server.trapper_port, "host": host, "lld_retry_seconds": 300}


def set_up_host(server: ZabbixServer, config: Config) -> SetupOutcome:
    """Runs the product's setup for the config's host and waits until the server has cached it."""
    before = server.cached()
    outcome = setup(
        server.api_url,
        ApiCredentials(user=ADMIN_USER, password=ADMIN_PASSWORD),
        config.zabbix,
        config.checks,
        logical=config.dump.enabled,
    )
    server.wait_for_config_sync(before)
    return outcome


def eventually(probe: Callable[[], T | None], what: str, timeout: float = POLL_SECONDS) -> T:
    """Returns the first truthy result of `probe`, polling: Zabbix writes history and problems
    asynchronously (history syncer, timer). Fails the test naming `what` when it never comes."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"Zabbix never showed {what}")
        time.sleep(0.5)


def host_id(api: ZabbixAPI, host: str) -> str:
    [found] = api.host.get(filter={"host": [host]}, output=["hostid"])
    return str(found["hostid"])


def items_of(api: ZabbixAPI, host: str, key_prefix: str = "pgbackup.") -> dict[str, dict[str, Any]]:
    """Returns the host's items by key (including discovered ones)."""
    found = api.item.get(
        hostids=[host_id(api, host)], search={"key_": key_prefix}, startSearch=True,
        output=["itemid", "key_", "value_type", "flags", "status"],
    )  # fmt: skip
    return {item["key_"]: item for item in found}


def history_of(
    api: ZabbixAPI, item: dict[str, Any], *, since: int | None = None, until: int | None = None
) -> list[tuple[int, str]]:
    """Returns the item's stored values as (clock, value), oldest first."""
    params: dict[str, Any] = {
        "history": int(item["value_type"]), "itemids": [item["itemid"]], "output": "extend",
        "sortfield": "clock", "sortorder": "ASC",
    }  # fmt: skip
    if since is not None:
        params["time_from"] = since
    if until is not None:
        params["time_till"] = until
    return [(int(row["clock"]), str(row["value"])) for row in api.history.get(**params)]


def open_problems(api: ZabbixAPI, host: str) -> set[str]:
    """Returns the names of the host's triggers that are in the problem state (discovered ones with
    their table names filled in). Problem *events* carry the longer event name with the threshold."""
    found = api.trigger.get(hostids=[host_id(api, host)], filter={"value": 1}, output=["description"])
    return {trigger["description"] for trigger in found}


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """Writes a YAML config for the `verifier` command."""
    path.write_text(yaml.safe_dump(data))
    return path


def disabled_items(api: ZabbixAPI, host: str) -> set[str]:
    """Returns the keys of the host's disabled items (not monitored: Zabbix shows them disabled)."""
    return {key for key, item in items_of(api, host).items() if str(item["status"]) != "0"}


def empty_items(api: ZabbixAPI, host: str) -> set[str]:
    """Returns the keys of the host's enabled items (discovered ones included) that hold no value, waiting up
    to `POLL_SECONDS` for the history Zabbix writes asynchronously to fill them: empty when every item has
    one. A test names the disabled ones (`disabled_items`) itself."""
    items = {key: item for key, item in items_of(api, host).items() if str(item["status"]) == "0"}
    deadline = time.monotonic() + POLL_SECONDS
    while (left := {key for key, item in items.items() if not history_of(api, item)}) and time.monotonic() < deadline:
        time.sleep(0.5)
        items = {key: items[key] for key in left}
    return left


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed Zabbix test carries what the server said of its discovery rules: their state and error
    through the API, and the server log's lines about discovery (a refused value of a discovered item is
    otherwise a mystery after the fact: the server and its log are gone with the session)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    server: ZabbixServer | None = item.funcargs.get("zabbix_server")  # type: ignore[attr-defined]
    if server is None:
        return
    lines: list[str] = []
    host = item.funcargs.get("host_name")  # type: ignore[attr-defined]
    api = item.funcargs.get("zabbix_api")  # type: ignore[attr-defined]
    if host and api is not None:
        try:
            hostids = [found["hostid"] for found in api.host.get(output=["hostid"], filter={"host": host})]
            rules = api.discoveryrule.get(output=["key_", "state", "error"], hostids=hostids) if hostids else []
            lines += [f"rule {rule['key_']}: state {rule['state']} error {rule['error']!r}" for rule in rules]
        except Exception as error:  # a diagnostic must not hide the failure it explains
            lines.append(f"discovery rules unreadable: {error}")
    try:
        log = server.server_log.read_text(errors="replace").splitlines()
        lines += [line for line in log if "discover" in line.lower() or "lld" in line.lower()][-40:]
    except OSError as error:
        lines.append(f"server log unreadable: {error}")
    report.sections.append(("Zabbix discovery", "\n".join(lines)))
