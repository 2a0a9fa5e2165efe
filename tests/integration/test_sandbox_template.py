"""The sandbox starts from a copy of a pristine initdb kept per PostgreSQL version: quick, and out of
the sandbox account's reach (a dump's SQL runs in the sandbox server, as that account)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from verifier.config import DEFAULT_ACCOUNT
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.postgres.throwaway.cluster_template import TEMPLATE_PREFIX, template_for
from verifier.process import User


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A directory the sandbox account can reach (pytest's own tmp_path lies behind a 0700 one)."""
    directory = Path(tempfile.gettempdir()) / f"template-test-{secrets.token_hex(4)}"
    directory.mkdir()
    directory.chmod(0o755)  # whatever the umask (CI's is 077)
    yield directory
    shutil.rmtree(directory)


def test_the_template_is_made_once_and_only_the_agent_can_change_it(
    postgres_installation: binaries.Installation, base_dir: Path
) -> None:
    tmp_path = base_dir
    with TemporaryCluster(
        postgres_installation, run_as=DEFAULT_ACCOUNT, base_dir=tmp_path, templates=tmp_path / "templates"
    ) as first:
        assert first.directory is not None
        data = first.directory / "data"
        account = pwd.getpwnam(DEFAULT_ACCOUNT)
        assert data.stat().st_uid == account.pw_uid and (data / "base").stat().st_uid == account.pw_uid
        with first.connect() as connection:
            connection.execute("CREATE TABLE left_behind ()")  # nothing of a sandbox reaches the template
    [template] = (tmp_path / "templates").glob(f"{TEMPLATE_PREFIX}*")
    made = (template / "data" / "PG_VERSION").stat().st_mtime_ns
    for path in (template, *template.rglob("*")):
        assert path.lstat().st_uid == os.geteuid(), path
    assert template.stat().st_mode & 0o777 == 0o700  # the sandbox account cannot even look in
    with TemporaryCluster(
        postgres_installation, run_as=DEFAULT_ACCOUNT, base_dir=tmp_path, templates=tmp_path / "templates"
    ) as again:
        with again.connect() as connection:
            tables = connection.execute("SELECT count(*) FROM pg_class WHERE relname = 'left_behind'").fetchone()
        assert tables == (0,)
    assert (template / "data" / "PG_VERSION").stat().st_mtime_ns == made  # copied, not made again
    assert list((tmp_path / "templates").glob(f"{TEMPLATE_PREFIX}*")) == [template]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["templates"]  # no cluster directory stays


def test_an_interrupted_template_is_made_anew(postgres_installation: binaries.Installation, base_dir: Path) -> None:
    account = pwd.getpwnam(DEFAULT_ACCOUNT)
    user = User(name=DEFAULT_ACCOUNT, uid=account.pw_uid, gid=account.pw_gid)
    tmp_path = base_dir
    broken = tmp_path / f"{TEMPLATE_PREFIX}{postgres_installation.version}-{os.geteuid()}"
    (broken / "data").mkdir(parents=True)  # initdb killed half-way: no completion mark
    data = template_for(postgres_installation, tmp_path, user)
    assert data == broken / "data" and (data / "PG_VERSION").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [broken.name]
