"""The agent's image has two recipes, deploy/Dockerfile (a machine with a registry, FROM
debian:bookworm-slim) and deploy/build_image.py (no registry, debootstrap): both must give the same
image — the same Debian packages, account, paths, settings and entrypoint."""

from __future__ import annotations

import re
from pathlib import Path

from deploy import build_image

DOCKERFILE = Path(build_image.__file__).with_name("Dockerfile")


def instructions() -> list[str]:
    """Returns the Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", "", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_installs_the_same_packages() -> None:
    (apt,) = [line for line in instructions() if "apt-get install" in line]
    installed = apt.split("--no-install-recommends", 1)[1].split("&&", 1)[0].split()
    assert tuple(installed) == build_image.PACKAGES


def test_the_dockerfile_has_the_same_image_settings() -> None:
    lines = instructions()
    for change in build_image.IMAGE_CHANGES:
        assert change in lines


def test_the_dockerfile_makes_the_same_account_and_directories() -> None:
    run = " && ".join(line for line in instructions() if line.startswith("RUN"))
    uid = str(build_image.USER_ID)
    assert f"useradd --system --uid {uid} --gid {uid} --home-dir {build_image.HOME}" in run
    assert f"--shell /usr/sbin/nologin {build_image.USER_NAME}" in run
    (directories,) = re.findall(rf"install -d -o {uid} -g {uid} -m 0750 ([^&]+)", run)
    assert set(directories.split()) == {build_image.HOME, build_image.REPOSITORY, str(Path(build_image.CONFIG).parent)}
    assert f"python3 -m venv {build_image.VENV}" in run


def test_the_dockerfile_installs_the_same_part_of_the_checkout() -> None:
    copied = [line.split()[1:-1] for line in instructions() if line.startswith("COPY")]
    assert sorted(name for names in copied for name in names) == sorted(build_image.SOURCE_PATHS)
