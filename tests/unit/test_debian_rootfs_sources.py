"""The Debian images (the agent's, deploy/build_image.py, and the Docker tests' PostgreSQL one) take their
Debian mirror from the host's apt sources, in either of the forms a Debian 12 host has: deb822
`/etc/apt/sources.list.d/debian.sources` (the installer's images) or only the one-line
`/etc/apt/sources.list` (a system made with `debootstrap`, or upgraded from Debian 11). Before this, a
debootstrapped Debian 12 failed the whole Docker suite with `FileNotFoundError:
/etc/apt/sources.list.d/debian.sources`."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import debian_rootfs

DEB822 = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """# written by debootstrap, plus what an admin added
deb http://mirror.example/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian.gpg] http://mirror.example/debian-security bookworm-security main contrib
deb-src http://mirror.example/debian bookworm main
deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main
"""


def test_deb822_sources_are_used_as_they_are(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(DEB822)

    assert debian_rootfs.image_sources(sources, tmp_path / "absent.list") == DEB822
    assert debian_rootfs.debian_mirror(sources, tmp_path / "absent.list") == "http://mirror.example/debian"


def test_one_line_sources_list_of_a_debootstrapped_host(tmp_path: Path) -> None:
    legacy = tmp_path / "sources.list"
    legacy.write_text(ONE_LINE)

    text = debian_rootfs.image_sources(tmp_path / "absent.sources", legacy)

    assert debian_rootfs.debian_mirror(tmp_path / "absent.sources", legacy) == "http://mirror.example/debian"
    assert text == (
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main contrib\n"
    )
    assert "pgdg" not in text  # another vendor's repository stays out of the image


def test_no_sources_at_all_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match=r"neither .* nor .* exists"):
        debian_rootfs.image_sources(tmp_path / "absent.sources", tmp_path / "absent.list")


def test_sources_without_the_suite_name_the_file(tmp_path: Path) -> None:
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb http://mirror.example/debian trixie main\n")

    with pytest.raises(LookupError, match=f"no bookworm entry with URIs in {legacy}"):
        debian_rootfs.debian_mirror(tmp_path / "absent.sources", legacy)
