"""The installed `verifier` with `source.databases`: `run` opens with one line per database, and `list`,
`history`, `check` and `report` cover every database or the one `--db` names; `selftest` tests the one
`--db` names, or the one whose last self-test is oldest."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import yaml
from psycopg import sql

from tests.e2e.conftest import verifier
from tests.support import agent, leftovers
from verifier.postgres.throwaway.cluster import TemporaryCluster

SCHEMA = """
CREATE TABLE items (id int PRIMARY KEY, label text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g;
"""


def write_config(path: Path, cluster: TemporaryCluster, **source: Any) -> Path:
    data = {
        "source": {"host": cluster.host, "port": cluster.port, "user": "postgres", **source},
        "repository": {"path": str(path.parent / "repo")},
        "checks": {"min_count": 1},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_night_of_several_databases_from_the_command_line(cluster: TemporaryCluster, tmp_path: Path) -> None:
    for name in ("app", "shop", "other"):
        with cluster.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with cluster.connect(name) as connection:
            connection.execute(SCHEMA)
    config = write_config(tmp_path / "config.yaml", cluster, databases=["app", "shop"])

    run = verifier("run", "--config", config)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("app ") and lines[0].endswith("verified, OK"), run.stdout
    assert lines[1].startswith("shop ") and lines[1].endswith("verified, OK"), run.stdout
    assert lines[2] == "2 databases; the sandbox started 1 time; exit 0"

    listing = verifier("list", "--config", config, "--json")
    assert listing.returncode == 0, listing.stderr
    backups = json.loads(listing.stdout)
    assert sorted(backups) == ["app", "shop"] and backups["shop"][0]["verification"] == "OK"
    one = verifier("list", "--config", config, "--db", "shop")
    assert one.stdout.startswith("── database shop ──\n") and "shop_" in one.stdout and "app_" not in one.stdout

    history = verifier("history", "--config", config)
    assert "── database app ──" in history.stdout and "── database shop ──" in history.stdout

    check = verifier("check", "--config", config, "--db", "app")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[0].startswith("app ") and "shop" not in check.stdout

    selftest = verifier("selftest", "--config", config, "--db", "shop")
    assert selftest.returncode == 0 and selftest.stdout.startswith("OK: "), selftest.stdout + selftest.stderr
    assert "shop_" in selftest.stdout.splitlines()[0]
    # without --db, the database whose last self-test is oldest: app, never tested; then shop, tested before app
    for expected, why in (("app", "never self-tested"), ("shop", "last self-tested ")):
        unnamed = verifier("selftest", "--config", config)
        assert unnamed.returncode == 0 and unnamed.stdout.startswith("OK: "), unnamed.stdout + unnamed.stderr
        lines = unnamed.stdout.splitlines()
        assert f"the restored copy of {expected}_" in lines[0], unnamed.stdout
        assert lines[1].startswith(f"  database {expected}, next in rotation: {why}"), unnamed.stdout

    quick = verifier("check", "--config", config, "--quick")
    assert quick.returncode == 0, quick.stdout + quick.stderr
    assert [line.split()[0] for line in quick.stdout.splitlines()[:2]] == ["app", "shop"]
    assert all(line.endswith("checksums match, OK") for line in quick.stdout.splitlines()[:2]), quick.stdout

    report = verifier("report", "--config", config, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert sorted(json.loads(report.stdout)) == ["app", "shop"]

    prune = verifier("prune", "--config", config, "--dry-run", "--db", "shop")
    assert prune.returncode == 0, prune.stdout + prune.stderr
    assert prune.stdout.startswith("── database shop ──\n") and "keep" in prune.stdout and "app_" not in prune.stdout

    unknown = verifier("list", "--config", config, "--db", "nope")
    assert unknown.returncode == 3
    assert unknown.stderr.strip().splitlines() == [
        f"verifier: --db nope: the repository {tmp_path / 'repo'} holds no such database (it holds app, shop)"
    ]


def test_dbname_and_databases_together_is_one_line_by_yaml_path(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: app, databases: all}}\nrepository: {{path: {tmp_path / 'repo'}}}\n")
    result = verifier("run", "--config", config)
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"verifier: {config}: source: name either dbname (one database) or databases (several), not both"
    ]
    assert not (tmp_path / "repo").exists()


def test_sigterm_during_a_night_removes_its_one_sandbox_and_exits_3(cluster: TemporaryCluster, tmp_path: Path) -> None:
    for name in ("a_big", "b_small"):
        with cluster.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with cluster.connect("a_big") as connection:
        connection.execute(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 1500000) g"
        )
        connection.execute("CREATE INDEX big_payload ON big (payload)")
    config = write_config(tmp_path / "config.yaml", cluster, databases="all")
    servers_before = leftovers.postgres_servers()
    process = agent.start("run", "--config", config)
    agent.wait_for_sandbox(process, servers_before)
    time.sleep(1.0)  # into the first database's restore
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert leftovers.postgres_servers() - servers_before == set()
    assert list((tmp_path / "repo").rglob("*.partial")) == []
