"""A restore key protected by a passphrase (as a real one is): `check --offsite` unlocks it with
`encryption.gpg.private_key_passphrase` (file: or ${ENV}), handed to gpg on a pipe, never on argv, in
logs, reports or the spool; a wrong or missing passphrase is one line and exit 3 before anything is
downloaded, and nothing is lost. Real gpg, real sshd + rsync, real PostgreSQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import (
    RESTORE_PASSPHRASE,
    GpgKeys,
    SshServer,
    free_port,
    offsite_config,
    rsync_target,
)
from verifier import process as runner
from verifier.cli.main import main
from verifier.config import load_config
from verifier.config_offsite import GpgConfig
from verifier.offsite import crypto
from verifier.offsite.crypto import EncryptionError
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.backups import Repository

pytestmark = pytest.mark.integration


def config_file(path: Path, data: dict[str, Any], gpg_keys: GpgKeys, **gpg: str) -> Path:
    """Writes `data` (a dumped config) as the YAML/JSON file `verifier --config` reads, secrets as file: paths."""
    data = json.loads(json.dumps(data))
    data["encryption"]["gpg"] = {**data["encryption"]["gpg"], "private_key": f"file:{gpg_keys.private}", **gpg}
    data["encryption"]["gpg"] = {key: value for key, value in data["encryption"]["gpg"].items() if value}
    path.write_text(json.dumps(data))
    return path


def record_argv(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Returns the list every program's argv is appended to (as one line) while the test runs."""
    argvs: list[str] = []
    for name in ("run", "start"):
        real = getattr(runner, name)

        def recording(argv: Any, *, real: Any = real, **keywords: Any) -> Any:
            argvs.append(" ".join(map(str, argv)))
            return real(argv, **keywords)

        monkeypatch.setattr(runner, name, recording)
    return argvs


def remote_files(target: dict[str, Any], ssh_server: SshServer) -> dict[str, bytes]:
    remote = Path(target["url"].split(str(ssh_server.port), 1)[1])
    return {path.name: path.read_bytes() for path in remote.iterdir()}


def test_a_protected_restore_key_is_unlocked_by_the_passphrase_from_a_file_or_the_environment(
    source_db: SourceDatabase, ssh_server: SshServer, protected_gpg_keys: GpgKeys, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    argvs = record_argv(monkeypatch)
    caplog.set_level(logging.DEBUG)
    target = rsync_target(ssh_server)
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(RESTORE_PASSPHRASE + "\n")
    zabbix_down = {"server": "127.0.0.1", "port": free_port(), "host": "h", "timeout": 1}  # values go to the spool
    config = offsite_config(source_db, tmp_path / "repo", [target], protected_gpg_keys, zabbix=zabbix_down)
    assert commands.run(config).verification_passed
    newest = Repository(tmp_path / "repo").newest()
    assert newest is not None
    newest.dump_path.unlink()  # the disaster: only the off-site copy is left

    data = config.model_dump(mode="json", exclude_unset=True)
    for how, value in (("file", f"file:{passphrase_file}"), ("env", "${RESTORE_KEY_PASSPHRASE}")):
        monkeypatch.setenv("RESTORE_KEY_PASSPHRASE", RESTORE_PASSPHRASE)
        path = config_file(tmp_path / f"{how}.json", data, protected_gpg_keys, private_key_passphrase=value)
        drill = commands.check(load_config(path), offsite="vault")
        result = next(result for result in drill.results if result.name == "offsite vault")
        assert result.status is Status.OK, f"{how}: {result.summary}"
        assert drill.verification is not None and drill.verification_passed, how
        assert drill.verification.exact and all(table.difference == 0 for table in drill.verification.tables)
        written = caplog.text + json.dumps(drill.to_dict()) + "\n".join(argvs)
        assert RESTORE_PASSPHRASE not in written, f"{how}: the passphrase reached argv, a log or the report"
        assert any("--pinentry-mode loopback" in argv for argv in argvs), "the passphrase is not handed to gpg"
    assert Repository(tmp_path / "repo").spool_path.exists()
    for path in (tmp_path / "repo").rglob("*"):
        if path.is_file():
            assert RESTORE_PASSPHRASE.encode() not in path.read_bytes(), f"the passphrase is in {path}"


@pytest.mark.parametrize(
    ("passphrase", "expected"),
    [
        ("not the passphrase", "encryption.gpg.private_key_passphrase does not unlock encryption.gpg.private_key"),
        ("", "encryption.gpg.private_key is protected by a passphrase: set encryption.gpg.private_key_passphrase"),
    ],
    ids=["wrong", "missing"],
)
def test_a_wrong_or_missing_passphrase_is_one_line_exit_3_and_nothing_is_lost(
    passphrase: str, expected: str, source_db: SourceDatabase, ssh_server: SshServer, protected_gpg_keys: GpgKeys,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    target = rsync_target(ssh_server)
    config = offsite_config(source_db, tmp_path / "repo", [target], protected_gpg_keys)
    assert commands.run(config).verification_passed
    local_before = sorted(path.name for path in (tmp_path / "repo").iterdir())
    remote_before = remote_files(target, ssh_server)
    path = config_file(
        tmp_path / "config.json", config.model_dump(mode="json", exclude_unset=True), protected_gpg_keys,
        private_key_passphrase=passphrase,
    )  # fmt: skip
    capsys.readouterr()

    assert main(["check", "--offsite", "vault", "--config", str(path)]) == 3
    output = capsys.readouterr()
    lines = [line for line in output.err.splitlines() if line.startswith("verifier: ")]
    assert len(lines) == 1 and expected in lines[0], output.err
    assert "Traceback" not in output.err + output.out
    assert not passphrase or passphrase not in output.err + output.out
    assert sorted(path.name for path in (tmp_path / "repo").iterdir()) == local_before
    assert remote_files(target, ssh_server) == remote_before, "the off-site copy changed"
    assert not [p for p in (tmp_path / "repo" / "state").glob("offsite-*") if p.is_dir()], "staging left behind"


def test_a_private_key_that_is_no_recipients_is_refused_before_anything_is_fetched(
    gpg_keys: GpgKeys, protected_gpg_keys: GpgKeys
) -> None:
    gpg = GpgConfig(
        recipients=[protected_gpg_keys.recipient],
        public_keys=protected_gpg_keys.public,
        private_key=SecretStr(gpg_keys.private.read_text()),
    )
    with pytest.raises(EncryptionError) as refused, crypto.keyring(gpg, with_private_key=True):
        pass
    assert str(refused.value) == "encryption.gpg.private_key is not the private key of any of encryption.gpg.recipients"
    assert refused.value.exit_code == 3
