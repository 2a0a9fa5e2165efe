"""SIGTERM in the middle of a run (what systemd sends on stop) tears the sandbox down."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.integration.conftest import SourceDatabase
from tests.support import agent, leftovers
from tests.support.cli_config import write_config


def test_sigterm_during_restore_removes_the_sandbox_and_exits_3(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 1500000) g")
    source_db.execute("CREATE INDEX big_payload ON big (payload)")
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    servers_before = leftovers.postgres_servers()
    process = agent.start("run", "--config", config)
    agent.wait_for_sandbox(process, servers_before)
    time.sleep(1.0)  # into the restore
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, stdout + stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    assert leftovers.postgres_servers() - servers_before == set()
    assert list((tmp_path / "repo").glob("*.partial")) == []
