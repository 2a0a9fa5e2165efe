"""A Debian 12 root filesystem built from the host's apt mirror, tarred for `docker import`: images
without a registry. The agent's image (deploy/build_image.py) and the test suite's PostgreSQL image
(tests/support/postgres_image.py) are both made with it.

`debootstrap --variant=minbase` from the mirror in apt's sources, the packages installed in a chroot
(services kept from starting), the tree tarred into a cache directory under a name carrying a hash of
its recipe: a tarball is built once per recipe and kept between runs; older ones of the same name are
deleted. Standard library only, so it runs with the system's python3 on a machine without the agent.
Needs root and debootstrap.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

# Debian 12 as installed from its images lists the archive in deb822 form; a system made with
# debootstrap (or upgraded from Debian 11) has only the one-line /etc/apt/sources.list.
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LEGACY_SOURCES = Path("/etc/apt/sources.list")
SUITE = "bookworm"
CHROOT_ENVIRONMENT = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def digest(*parts: str) -> str:
    """Returns a short hash of `parts` (in order): the cache key of a recipe."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part.encode())
        hashed.update(b"\0")
    return hashed.hexdigest()[:16]


def rootfs_key(packages: tuple[str, ...], *extra: str) -> str:
    """Returns the cache key of a root filesystem: suite, `packages`, the host's apt sources, `extra`."""
    return digest(SUITE, " ".join(packages), image_sources(), *extra)


def cached_tarball(cache_dir: Path, name: str, key: str, fill: Callable[[Path], None]) -> Path:
    """Returns `cache_dir/<name>-<key>.tar`, building it first when it is missing: `fill` gets an empty
    directory to make the root filesystem in, which is then tarred (numeric owners, xattrs).

    A lock file in `cache_dir` serialises concurrent builds (of any name: its stale tarballs are
    deleted by whoever builds, and older versions of this code held the same lock); tarballs of the
    name's older keys are deleted.
    `name` must not be a prefix of another name in the same directory followed by a dash.
    Raises subprocess.CalledProcessError when a build step fails.
    """
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    tarball = cache_dir / f"{name}-{key}.tar"
    with locked(cache_dir / ".lock"):
        if tarball.exists():
            return tarball
        for stale in cache_dir.glob(f"{name}-*.tar*"):
            stale.unlink()
        started = time.monotonic()
        work = cache_dir / f"build-{name}-{os.getpid()}"
        try:
            rootfs = work / "rootfs"
            rootfs.mkdir(parents=True)
            fill(rootfs)
            partial = tarball.with_suffix(".tar.partial")
            run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."])
            partial.rename(tarball)
        finally:
            remove_tree(work)
        logger.info("built %s in %.1f s", tarball, time.monotonic() - started)
        return tarball


def bootstrap(rootfs: Path, packages: tuple[str, ...], before_install: Callable[[Path], None] | None = None) -> None:
    """Fills `rootfs` with a minimal Debian 12 and `packages` (no recommends), apt pointed at the host's
    mirror, no apt lists, documentation or locales, an empty resolv.conf. `before_install` gets the
    tree after debootstrap, before the packages (to put package settings in place).

    Raises subprocess.CalledProcessError when debootstrap or apt fails, LookupError when the host's apt
    sources name no mirror for the suite.
    """
    run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror()])
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(image_sources())
    if before_install is not None:
        before_install(rootfs)
    chroot(rootfs, ["apt-get", "update", "-qq"])
    chroot(rootfs, ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages])
    chroot(rootfs, ["apt-get", "clean"])
    for bulky in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(rootfs / bulky, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "etc/resolv.conf").write_text("")


def extract(tarball: Path, rootfs: Path) -> None:
    """Unpacks a tarball made by `cached_tarball` into `rootfs` (owners and xattrs kept).

    Raises subprocess.CalledProcessError when tar fails."""
    run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(rootfs), "-xf", str(tarball)])


def chroot(rootfs: Path, argv: list[str], environment: dict[str, str] | None = None) -> None:
    """Runs `argv` inside `rootfs` with a clean environment (plus `environment`).

    Raises subprocess.CalledProcessError when it fails."""
    run(["chroot", str(rootfs), *argv], {**CHROOT_ENVIRONMENT, **(environment or {})})


def image_sources(sources: Path = SOURCES, legacy: Path = LEGACY_SOURCES) -> str:
    """Returns the apt sources the image gets, in deb822 form: the host's entries for this suite.

    From `sources` (deb822) when it exists, else from the one-line `legacy` file, keeping only
    `deb` lines of this suite and its -updates/-security (a PostgreSQL or vendor repository stays
    out of the image). Raises LookupError when neither file names a mirror for the suite.
    """
    if sources.exists():
        text = sources.read_text()
        debian_mirror_from(text, sources)
        return text
    if not legacy.exists():
        raise LookupError(f"no apt sources: neither {sources} nor {legacy} exists")
    paragraphs = []
    for line in legacy.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "deb" and len(words) > 1 and words[1].startswith("["):
            options_end = next((index for index, word in enumerate(words) if word.endswith("]")), len(words))
            words = ["deb", *words[options_end + 1 :]]
        if len(words) < 3 or words[0] != "deb" or words[2] not in _suites():
            continue
        components = " ".join(words[3:]) or "main"
        paragraphs.append(f"Types: deb\nURIs: {words[1]}\nSuites: {words[2]}\nComponents: {components}\n")
    text = "\n".join(paragraphs)
    debian_mirror_from(text, legacy)
    return text


def _suites() -> tuple[str, ...]:
    return (SUITE, f"{SUITE}-updates", f"{SUITE}-security")


def debian_mirror(sources: Path = SOURCES, legacy: Path = LEGACY_SOURCES) -> str:
    """Returns the first mirror URI of the host's sources that carries the `bookworm` suite.

    Raises LookupError when there is none.
    """
    return debian_mirror_from(image_sources(sources, legacy), sources if sources.exists() else legacy)


def debian_mirror_from(text: str, origin: Path) -> str:
    """Returns the first mirror URI of the deb822 `text` whose entry carries the `bookworm` suite.

    Raises LookupError naming `origin` when there is none.
    """
    for paragraph in text.split("\n\n"):
        fields = {}
        for line in paragraph.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.split()
        if SUITE in fields.get("suites", []) and fields.get("uris"):
            return fields["uris"][0]
    raise LookupError(f"no {SUITE} entry with URIs in {origin}")


def run(argv: list[str], environment: dict[str, str] | None = None) -> None:
    """Runs a build step, logging its output only when it fails. Raises CalledProcessError."""
    completed = subprocess.run(argv, env=environment, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        logger.error("%s failed:\n%s\n%s", argv[:3], completed.stdout[-4000:], completed.stderr[-4000:])
        raise subprocess.CalledProcessError(completed.returncode, argv, completed.stdout, completed.stderr)


def remove_tree(path: Path) -> None:
    """Unmounts whatever a failed debootstrap left mounted under `path`, then deletes it.

    Never deletes through a mount point: a bind-mounted /dev or /proc would be emptied otherwise.
    Raises RuntimeError when something stays mounted below it.
    """
    if not path.exists():
        return
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)
    still = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    if any(m.startswith(prefix) for m in still):
        raise RuntimeError(f"refusing to delete {path}: something is still mounted below it")
    shutil.rmtree(path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `path` for the duration of the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
