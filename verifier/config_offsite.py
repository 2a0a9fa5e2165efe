"""The off-site sections of the config: where copies go (`offsite:`) and how they are encrypted (`encryption:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator

from verifier.config_section import Section, read_secret


class OffsiteTargetConfig(Section):
    """One off-site target: `s3://bucket/prefix/` (AWS or any S3-compatible store) or
    `rsync://user@host[:port]/path/` (rsync over ssh)."""

    url: Annotated[str, Field(pattern=r"^(s3|rsync)://[^/]+/")]
    name: str | None = Field(default=None, description="how reports and Zabbix name it; default: the url's host")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; omit for AWS")
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    ssh_key: Path | None = Field(default=None, description="rsync: private key file (default: the agent's ~/.ssh)")
    known_hosts: Path | None = Field(default=None, description="rsync: known_hosts file (default: ssh's own)")
    timeout: Annotated[float, Field(gt=0)] = 60.0

    _secret_file = field_validator("access_key_id", "secret_access_key", mode="before")(read_secret)

    @model_validator(mode="after")
    def _fits_scheme(self) -> OffsiteTargetConfig:
        if self.url.startswith("rsync://") and (self.access_key_id or self.secret_access_key or self.endpoint_url):
            raise ValueError("access keys and endpoint_url are for s3:// targets")
        if self.url.startswith("s3://") and (self.ssh_key or self.known_hosts):
            raise ValueError("ssh_key and known_hosts are for rsync:// targets")
        return self


class GpgConfig(Section):
    """GPG encryption of everything that leaves the host: public keys here, the private key optional."""

    recipients: Annotated[list[str], Field(min_length=1)]
    public_keys: Path
    private_key: SecretStr | None = Field(
        default=None, description="armored private key (file:/path): lets `check --offsite` restore a copy"
    )
    private_key_passphrase: SecretStr | None = Field(default=None, description="unlocks a protected private_key")

    _secret_file = field_validator("private_key", "private_key_passphrase", mode="before")(read_secret)

    @model_validator(mode="after")
    def _passphrase_needs_key(self) -> GpgConfig:
        if self.private_key_passphrase is not None and self.private_key is None:
            raise ValueError("private_key_passphrase is set but private_key is not: it would unlock nothing")
        return self


class EncryptionConfig(Section):
    """How off-site copies are encrypted."""

    gpg: GpgConfig


def offsite_target_name(target: OffsiteTargetConfig) -> str:
    """Returns the target's name: `name`, else the url's host (without user and port)."""
    if target.name:
        return target.name
    return target.url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
