"""What the agent says when PostgreSQL programs of the needed major are missing: packages and steps that
exist on Debian/Ubuntu (Debian 12's own archive has only PostgreSQL 15; 13, 14, 16, 17 and 18 come from the
PostgreSQL project's apt repository, which postgresql-common's script adds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.errors import BinaryMissing
from verifier.postgres import binaries

ADD_REPOSITORY = "apt-get install postgresql-common && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y"


def test_a_newer_client_names_the_postgresql_apt_repository_and_the_package() -> None:
    with pytest.raises(BinaryMissing) as raised:
        binaries.choose(("pg_dump", "pg_restore"), minimum_major=99, purpose="dumping the source")
    message = str(raised.value)
    assert "dumping the source needs pg_dump/pg_restore of PostgreSQL 99 or newer" in message
    assert ADD_REPOSITORY in message and "apt-get install postgresql-client-99;" in message
    assert "postgres.bin_dir" in message and "\n" not in message


def test_a_newer_server_names_the_server_package() -> None:
    message = binaries.how_to_install(("initdb", "postgres", "pg_restore"), 18)
    assert ADD_REPOSITORY in message and "apt-get install postgresql-18;" in message


def test_debian_12s_own_major_needs_no_other_repository() -> None:
    assert binaries.how_to_install(("pg_dump",), 15) == (
        "apt-get install postgresql-client-15; or set postgres.bin_dir to a directory that holds them"
    )


def test_the_script_the_message_names_exists_where_postgresql_common_is_installed() -> None:
    script = Path("/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh")
    if not Path("/usr/share/postgresql-common").is_dir():
        pytest.skip("postgresql-common is not installed")
    assert script.is_file()


def test_the_config_example_shows_where_programs_of_another_major_are_named() -> None:
    from importlib import resources

    from verifier.config import parse_config

    text = resources.files("verifier").joinpath("config.example.yaml").read_text()
    assert "#   bin_dir: /usr/lib/postgresql/18/bin" in text
    uncommented = text.replace("# postgres:", "postgres:").replace("#   bin_dir:", "  bin_dir:")
    config = parse_config(uncommented, environment={"PGPASSWORD": "x"})
    assert config.postgres.bin_dir == Path("/usr/lib/postgresql/18/bin")


def test_a_program_missing_from_an_installation_names_its_package(tmp_path: Path) -> None:
    installation = binaries.Installation(bin_dir=tmp_path, major=17, version="17.2")
    with pytest.raises(BinaryMissing) as raised:
        installation.program("initdb")
    message = str(raised.value)
    assert message.startswith(f"initdb not found in {tmp_path} (PostgreSQL 17); ")
    assert ADD_REPOSITORY in message and "apt-get install postgresql-17;" in message
