"""A config file for the verifier command, pointing at a test source database."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.integration.conftest import SourceDatabase


def write_config(path: Path, source_db: SourceDatabase, repository: Path, **extra: object) -> Path:
    data = {
        "source": {
            "host": source_db.cluster.host,
            "port": source_db.cluster.port,
            "dbname": source_db.dbname,
            "user": "postgres",
            "password": "${E2E_PASSWORD:-unused-secret}",
        },
        "repository": {"path": str(repository)},
        "checks": {"min_count": 1},
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path
