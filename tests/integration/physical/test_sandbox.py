"""The restored cluster's configuration is untrusted input: production's settings (ALTER SYSTEM included)
never reach the sandbox, which runs as its own account, on a unix socket only, archiving nothing, and is
gone afterwards. Real pgBackRest, real PostgreSQL."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from tests.integration.physical.conftest import PhysicalProduction
from verifier.config import DEFAULT_ACCOUNT, PostgresConfig, VerifyConfig
from verifier.physical.instant_proof import restore_to_instant, take_instant


def test_productions_configuration_never_reaches_the_sandbox(logical_production: PhysicalProduction) -> None:
    production = logical_production
    # read by a server that trusted the restored files: a library that does not exist would stop it
    production.execute("ALTER SYSTEM SET shared_preload_libraries = 'no_such_library_pgbv'")
    production.execute("ALTER SYSTEM SET work_mem = '7MB'")
    production.backup("full")
    with (
        take_instant(production.physical, production.params) as instant,
        restore_to_instant(
            production.physical, VerifyConfig(), PostgresConfig(), production.params, instant
        ) as restored,
    ):
        with restored.connect() as connection:
            settings = dict(
                connection.execute(  # type: ignore[arg-type]
                    "SELECT name, setting FROM pg_settings WHERE name IN ('shared_preload_libraries', "
                    "'work_mem', 'archive_mode', 'archive_command', 'ssl', 'listen_addresses', 'port', "
                    "'hba_file', 'data_directory')"
                ).fetchall()
            )
        server = int((restored.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        server_uid = Path(f"/proc/{server}/status").stat().st_uid
        server_network = os.readlink(f"/proc/{server}/ns/net")
        directory = restored.cluster.data_dir.parent
        owner = pwd.getpwuid(os.stat(restored.cluster.data_dir).st_uid).pw_name
        hba = (restored.cluster.data_dir / "pg_hba.conf").read_text()
    assert settings["shared_preload_libraries"] == ""
    assert settings["work_mem"] == "4096"
    assert (settings["archive_mode"], settings["ssl"]) == ("off", "off")
    assert "pgbackrest" not in settings["archive_command"]  # '(disabled)' shown with archive_mode off
    assert settings["listen_addresses"] == ""
    assert settings["port"] != str(production.cluster.port)
    assert Path(settings["hba_file"]).parent == Path(settings["data_directory"])
    assert hba == "local all all trust\n"
    assert owner == DEFAULT_ACCOUNT
    assert server_uid == pwd.getpwnam(DEFAULT_ACCOUNT).pw_uid  # never root, never production's postgres
    assert server_network != os.readlink("/proc/self/ns/net")  # the jail: no network of the host's
    assert not directory.exists()
    production.execute("ALTER SYSTEM RESET ALL")
