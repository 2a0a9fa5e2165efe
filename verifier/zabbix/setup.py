"""`verifier zabbix setup`: import the template through the Zabbix API, create or update the host,
link the template and set the host macros from the config. Running it twice changes nothing.

The API token or password comes from the environment (`ZABBIX_API_TOKEN`, `ZABBIX_API_PASSWORD`)
or from a file, never from the command line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zabbix_utils import ZabbixAPI
from zabbix_utils.exceptions import APIRequestError, ProcessingError

from verifier.config import ChecksConfig, ZabbixConfig
from verifier.errors import ConfigError, ZabbixSetupError, one_line
from verifier.zabbix import keys
from verifier.zabbix.export import render_template, template_fingerprint
from verifier.zabbix.sender import destination
from verifier.zabbix.template import TEMPLATE_NAME

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "ZABBIX_API_TOKEN"
PASSWORD_VARIABLE = "ZABBIX_API_PASSWORD"
DEFAULT_HOST_GROUP = "Databases"

IMPORT_RULES: dict[str, dict[str, bool]] = {
    "groups": {"createMissing": True},
    "templates": {"createMissing": True, "updateExisting": True},
    "valueMaps": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "templateDashboards": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "templateLinkage": {"createMissing": True},
    "items": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "discoveryRules": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "triggers": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "graphs": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
}


@dataclass(frozen=True)
class ApiCredentials:
    """Either an API token, or a user name with its password."""

    token: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class SetupOutcome:
    """What the setup did; an empty `changes` list means everything was already in place."""

    host: str
    hostid: str
    templateid: str
    changes: list[str] = field(default_factory=list)


def credentials(
    *,
    user: str | None,
    token_file: Path | None,
    password_file: Path | None,
    environment: Mapping[str, str] | None = None,
) -> ApiCredentials:
    """Returns the API credentials: a password for `user`, else a token.

    Raises ConfigError naming the variable or file to provide when the secret is missing.
    """
    environment = os.environ if environment is None else environment
    if user:
        password = _secret(password_file) if password_file else environment.get(PASSWORD_VARIABLE)
        if not password:
            raise ConfigError(f"zabbix setup --user {user}: set {PASSWORD_VARIABLE} or pass --password-file")
        return ApiCredentials(user=user, password=password)
    token = _secret(token_file) if token_file else environment.get(TOKEN_VARIABLE)
    if not token:
        raise ConfigError(
            f"zabbix setup: set {TOKEN_VARIABLE} (or --token-file FILE), or use --user NAME with {PASSWORD_VARIABLE}"
        )
    return ApiCredentials(token=token)


def host_macros(checks: ChecksConfig) -> dict[str, str]:
    """Returns the host macros the config implies: the age and count thresholds of the checks."""
    seconds = round(checks.max_age_hours * 3600)
    age = f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"
    return {"{$PGBACKUP.AGE.MAX}": age, "{$PGBACKUP.COUNT.MIN}": str(checks.min_count)}


def setup(
    url: str,
    secrets: ApiCredentials,
    zabbix: ZabbixConfig | None,
    checks: ChecksConfig,
    *,
    logical: bool = True,
    group: str = DEFAULT_HOST_GROUP,
    verify_tls: bool = True,
) -> SetupOutcome:
    """Imports the template, creates or updates the host named by `zabbix.host`, links the template
    and sets the host macros; without `logical` dumps (`dump.enabled: false`) disables the host items only
    they fill (`keys.LOGICAL_HOST_ITEMS`), with them enables them again. Returns what changed.

    Raises ConfigError without a zabbix section, ZabbixSetupError when the API refuses or is unreachable.
    """
    if zabbix is None:
        raise ConfigError("zabbix: section missing: name the server and the host first")
    host = destination(zabbix).host
    try:
        api = ZabbixAPI(
            url=url, token=secrets.token, user=secrets.user, password=secrets.password, validate_certs=verify_tls
        )
    except (APIRequestError, ProcessingError, OSError, ValueError) as error:
        raise ZabbixSetupError(f"zabbix setup: cannot log in to {url}: {one_line(error, first_line=True)}") from None
    try:
        outcome = _setup(api, host, host_macros(checks), group)
        _set_logical_items(api, outcome, enabled=logical)
        return outcome
    except (APIRequestError, ProcessingError, OSError, ValueError) as error:
        raise ZabbixSetupError(f"zabbix setup: {url}: {one_line(error, first_line=True)}") from None
    finally:
        if secrets.user:
            try:
                api.logout()
            except (APIRequestError, ProcessingError, OSError):
                logger.debug("logout failed", exc_info=True)


# -- steps --------------------------------------------------------------------------------------


def _setup(api: Any, host: str, macros: dict[str, str], group: str) -> SetupOutcome:
    changes: list[str] = []
    before = _template(api)
    if before is None or template_fingerprint() not in str(before.get("description", "")).splitlines():
        api.configuration.import_(format="yaml", source=render_template(), rules=IMPORT_RULES)
        changes.append(f"template {TEMPLATE_NAME} {'imported' if before is None else 'updated'}")
    after = _template(api)
    if after is None:
        raise ZabbixSetupError(f"zabbix setup: the import did not create template {TEMPLATE_NAME!r}")
    templateid = str(after["templateid"])
    groupid = _group(api, group, changes)
    found = api.host.get(filter={"host": [host]}, output=["hostid"], selectParentTemplates=["templateid"])
    if not found:
        created = api.host.create(host=host, groups=[{"groupid": groupid}], templates=[{"templateid": templateid}])
        hostid = str(created["hostids"][0])
        changes.append(f"host {host} created in group {group} with the template linked")
    else:
        hostid = str(found[0]["hostid"])
        linked = [str(parent["templateid"]) for parent in found[0]["parentTemplates"]]
        if templateid not in linked:
            api.host.update(hostid=hostid, templates=[{"templateid": t} for t in [*linked, templateid]])
            changes.append(f"template linked to host {host}")
    _set_macros(api, hostid, macros, changes)
    return SetupOutcome(host=host, hostid=hostid, templateid=templateid, changes=changes)


def _template(api: Any) -> dict[str, Any] | None:
    found = api.template.get(filter={"host": [TEMPLATE_NAME]}, output=["templateid", "description"])
    return dict(found[0]) if found else None


def _group(api: Any, name: str, changes: list[str]) -> str:
    found = api.hostgroup.get(filter={"name": [name]}, output=["groupid"])
    if found:
        return str(found[0]["groupid"])
    created = api.hostgroup.create(name=name)
    changes.append(f"host group {name} created")
    return str(created["groupids"][0])


def _set_macros(api: Any, hostid: str, macros: dict[str, str], changes: list[str]) -> None:
    existing = {m["macro"]: m for m in api.usermacro.get(hostids=[hostid], output=["hostmacroid", "macro", "value"])}
    for name, value in macros.items():
        current = existing.get(name)
        if current is None:
            api.usermacro.create(hostid=hostid, macro=name, value=value)
            changes.append(f"macro {name}={value} set")
        elif current.get("value") != value:
            api.usermacro.update(hostmacroid=current["hostmacroid"], value=value)
            changes.append(f"macro {name} changed to {value}")


def _set_logical_items(api: Any, outcome: SetupOutcome, *, enabled: bool) -> None:
    """Enables or disables the host's logical items (`keys.LOGICAL_HOST_ITEMS`), noting in `outcome` what
    changed: a host that takes no logical dump never fills them, and a disabled item is not monitored."""
    status = "0" if enabled else "1"
    found = api.item.get(
        hostids=[outcome.hostid], filter={"key_": sorted(keys.LOGICAL_HOST_ITEMS)}, output=["itemid", "status"]
    )
    changed = [item["itemid"] for item in found if str(item["status"]) != status]
    for itemid in changed:
        api.item.update(itemid=itemid, status=status)
    if changed:
        why = "logical dumps taken" if enabled else "dump.enabled is false: no logical dump fills them"
        outcome.changes.append(f"{len(changed)} logical backup items {'enabled' if enabled else 'disabled'} ({why})")


def _secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"cannot read secret file {path}: {error.strerror}") from None
