"""Off-site copies against real servers: SeaweedFS (S3) and sshd + rsync, with real GPG and real
PostgreSQL. Each test asserts what an operator would notice: the report's status, what lies on the
target, what a restore from it gives back."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    GpgKeys,
    S3Server,
    SshServer,
    free_port,
    offsite_config,
    rsync_target,
    s3_target,
)
from verifier import process as runner
from verifier.pipeline import commands
from verifier.report import Report, Status

pytestmark = pytest.mark.integration


def offsite_result(report: Report, target: str):  # type: ignore[no-untyped-def]
    return next(result for result in report.results if result.name == f"offsite {target}")


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="nightly/").get("Contents", [])
    return {e["Key"].removeprefix("nightly/"): client.get_object(Bucket=bucket, Key=e["Key"])["Body"].read()
            for e in listed}  # fmt: skip


def test_upload_read_back_and_catch_up_after_the_target_was_down(
    source_db: SourceDatabase, s3_server: S3Server, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    down = {**s3_target(s3_server, bucket), "endpoint_url": f"http://127.0.0.1:{free_port()}", "timeout": 2}
    first = commands.run(offsite_config(source_db, tmp_path / "repo", [down], gpg_keys))
    assert first.verification_passed
    result = offsite_result(first, "s3")
    assert result.status is Status.WARNING and result.metrics["upload_status"] == 0
    assert first.status is Status.WARNING, "a target down is a WARNING, not the night's failure"
    assert bucket_objects(s3_server, bucket) == {}

    up = offsite_config(source_db, tmp_path / "repo", [s3_target(s3_server, bucket)], gpg_keys)
    second = commands.run(up)
    result = offsite_result(second, "s3")
    assert result.status is Status.OK, result.summary
    assert result.metrics["upload_status"] == 1 and result.metrics["count"] == 2
    uploaded = [line.removeprefix("uploaded and read back: ") for line in result.details]
    assert uploaded == [first.backup_name, second.backup_name], "catch-up: the older backup first"
    objects = bucket_objects(s3_server, bucket)
    for name in uploaded:
        index = json.loads(objects[f"{name}.offsite.json"])
        for entry in index["files"]:
            assert hashlib.sha256(objects[entry["key"]]).hexdigest() == entry["sha256"]
    assert not list((tmp_path / "repo" / "state").glob("offsite-*/*")), "staging left behind"


def test_encrypted_bytes_hold_no_table_or_row_and_decrypt_to_the_recorded_plaintext(
    source_db: SourceDatabase, s3_server: S3Server, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    config = offsite_config(source_db, tmp_path / "repo", [s3_target(s3_server, bucket)], gpg_keys)
    report = commands.run(
        config,
    )
    objects = bucket_objects(s3_server, bucket)
    index = json.loads(objects[f"{report.backup_name}.offsite.json"])
    manifest = json.loads((tmp_path / "repo" / f"{report.backup_name}.json").read_text())
    recorded = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet"]
    subprocess.run([*gpg, "--import", str(gpg_keys.private)], check=True)
    try:
        for entry in index["files"]:
            ciphertext = objects[entry["key"]]
            for secret_text in (b"OrderLines", b"measurements", b"line 17", b"capital", b"weird"):
                assert secret_text not in ciphertext, f"{secret_text!r} readable in {entry['key']}"
            plain = subprocess.run([*gpg, "--decrypt"], input=ciphertext, check=True, capture_output=True).stdout
            assert hashlib.sha256(plain).hexdigest() == entry["plaintext_sha256"]
            if entry["local_name"] in recorded:
                assert entry["plaintext_sha256"] == recorded[entry["local_name"]], "not the verified file"
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def test_one_byte_changed_on_the_target_is_critical_naming_target_and_object(
    source_db: SourceDatabase, s3_server: S3Server, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    config = offsite_config(source_db, tmp_path / "repo", [s3_target(s3_server, bucket)], gpg_keys)
    report = commands.run(config)
    key = f"nightly/{report.backup_name}.dump.zst.gpg"
    client = s3_server.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    checked = commands.check(config, offsite="s3")
    result = offsite_result(checked, "s3")
    assert checked.status is Status.CRITICAL and result.status is Status.CRITICAL
    assert "s3" in result.summary and f"{report.backup_name}.dump.zst.gpg" in result.summary
    assert checked.verification is None, "a damaged copy is not restored"


@pytest.mark.parametrize("kind", ["s3", "rsync"])
def test_check_offsite_restores_the_copy_with_the_full_comparison(
    kind: str, source_db: SourceDatabase, s3_server: S3Server, ssh_server: SshServer, gpg_keys: GpgKeys,
    tmp_path: Path,
) -> None:  # fmt: skip
    target = s3_target(s3_server, s3_server.new_bucket()) if kind == "s3" else rsync_target(ssh_server)
    config = offsite_config(source_db, tmp_path / "repo", [target], gpg_keys)
    report = commands.run(config)
    assert offsite_result(report, target["name"]).status is Status.OK
    (tmp_path / "repo" / f"{report.backup_name}.dump.zst").unlink()  # the disaster: the local copy is gone

    drill = commands.check(config, offsite=target["name"])
    assert drill.command == "check --offsite"
    assert offsite_result(drill, target["name"]).status is Status.OK
    assert drill.verification is not None and drill.verification.restored and drill.verification_passed
    assert drill.verification.exact and len(drill.verification.tables) >= 10
    assert all(table.difference == 0 for table in drill.verification.tables)
    assert not [p for p in (tmp_path / "repo" / "state").glob("offsite-*") if p.is_dir()], "decrypted copy left"


def test_offsite_retention_plan_and_apply(
    source_db: SourceDatabase, ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from verifier.cli.main import main

    target = rsync_target(ssh_server)
    keep_all = offsite_config(source_db, tmp_path / "repo", [target], gpg_keys,
                              offsite_retention={"keep_days": 0, "keep_min": 10})  # fmt: skip
    names = [commands.run(keep_all).backup_name for _ in range(3)]
    config_file = tmp_path / "config.yaml"
    data = keep_all.model_dump(mode="json", exclude_unset=True)
    data["encryption"]["gpg"]["private_key"] = f"file:{gpg_keys.private}"
    data["offsite"][0].pop("access_key_id", None)
    data["offsite_retention"] = {"keep_days": 0, "keep_min": 1}
    config_file.write_text(json.dumps(data))
    capsys.readouterr()

    assert main(["prune", "--offsite", "--dry-run", "--config", str(config_file)]) == 0
    plan = capsys.readouterr().out
    assert "would delete 2 copies" in plan and f"keep    {names[-1]}" in plan
    assert main(["offsite", "list", "--json", "--config", str(config_file)]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["copies"]) == 3, "a dry run deletes nothing"

    assert main(["prune", "--offsite", "--config", str(config_file)]) == 0
    capsys.readouterr()
    assert main(["offsite", "list", "--json", "--config", str(config_file)]) == 0
    copies = json.loads(capsys.readouterr().out)[0]["copies"]
    assert [copy["backup"] for copy in copies] == [names[-1]], "the newest copy stays, keep_min 1"
    remote = Path(target["url"].split(str(ssh_server.port), 1)[1])
    assert sorted(path.name for path in remote.iterdir()) == sorted(
        f"{names[-1]}{suffix}" for suffix in (".dump.zst.gpg", ".json.gpg", ".globals.sql.gpg", ".offsite.json")
    )


def test_credentials_never_reach_argv_logs_reports_or_spool(
    source_db: SourceDatabase, s3_server: S3Server, ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    argvs: list[list[str]] = []
    real_run, real_start = runner.run, runner.start

    def recording_run(argv, **keywords):  # type: ignore[no-untyped-def]
        argvs.append([str(part) for part in argv])
        return real_run(argv, **keywords)

    def recording_start(argv, **keywords):  # type: ignore[no-untyped-def]
        argvs.append([str(part) for part in argv])
        return real_start(argv, **keywords)

    monkeypatch.setattr(runner, "run", recording_run)
    monkeypatch.setattr(runner, "start", recording_start)
    caplog.set_level(logging.DEBUG)
    targets = [s3_target(s3_server, s3_server.new_bucket()), rsync_target(ssh_server)]
    config = offsite_config(source_db, tmp_path / "repo", targets, gpg_keys,
                            zabbix={"server": "127.0.0.1", "port": free_port(), "host": "h", "timeout": 1})  # fmt: skip
    report = commands.run(config)
    drill = commands.check(config, offsite="vault")
    assert offsite_result(report, "s3").status is Status.OK and offsite_result(drill, "vault").status is Status.OK

    private_key = gpg_keys.private.read_text()
    secrets_ = [S3_ACCESS_KEY, S3_SECRET_KEY, private_key.splitlines()[3]]
    assert any("rsync" in argv[0] for argv in argvs) and any(argv[0] == "gpg" for argv in argvs)
    written = caplog.text + json.dumps(report.to_dict()) + json.dumps(drill.to_dict())
    written += "\n".join(" ".join(argv) for argv in argvs)
    for path in (tmp_path / "repo").rglob("*"):
        if path.is_file() and not path.name.endswith((".dump", ".dump.zst", ".sql")):
            written += path.read_text(errors="replace")
    for secret in secrets_:
        assert secret not in written
