"""A config file other users can read that holds a secret written inline: the sandbox account, under
which a restored dump's code runs, could read it too. Found by `config check`, `doctor` and `run`, each
a WARNING with the fix; a secret given as `${ENV}` or `file:/path` is not inline."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

SECRET_KEYS = frozenset({"password", "secret_access_key", "private_key", "private_key_passphrase"})


def config_exposures(config_path: Path) -> list[str]:
    """Returns the warnings about the config file at `config_path` (none, or its inline secret's)."""
    warning = inline_secret_warning(config_path)
    return [warning] if warning else []


def inline_secret_warning(config_path: Path) -> str | None:
    """Returns the warning when `config_path` is readable by others and holds a secret inline, else None
    (also when it cannot be read: loading the config reports that)."""
    try:
        mode = config_path.stat().st_mode
        if not mode & stat.S_IROTH:
            return None
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    inline = inline_secrets(data, ())
    if not inline:
        return None
    return (
        f"config file {config_path} is readable by every user (mode {stat.S_IMODE(mode):04o}) and holds "
        f"{', '.join(inline)} inline: `chmod 600 {config_path}`, or give the secret as file:/path "
        "(a file only the agent can read) or ${ENV_VAR}"
    )


def inline_secrets(value: Any, where: tuple[str, ...]) -> list[str]:
    """Returns the YAML paths (dotted) of secrets in `value` written as plain text, not `file:` or `${…}`."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in inline_secrets(item, (*where, str(key)))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in inline_secrets(item, (*where, str(index)))]
    if where and where[-1] in SECRET_KEYS and isinstance(value, str | int) and value != "":
        text = str(value)
        if not text.startswith("file:") and "${" not in text:
            return [".".join(where)]
    return []
