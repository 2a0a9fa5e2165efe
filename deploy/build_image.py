"""The agent's container image built from Debian packages, for a machine with no image registry (run as
`deploy/build-image`; docs/docker.md). With a registry, deploy/Dockerfile builds the same image from
`debian:bookworm-slim`: same packages, user, paths, entrypoint (tests/unit/test_image_recipes.py).

Three steps, each skipped when its recipe (a hash of what it depends on) is already built:

- the system, a tarball (deploy/debian_rootfs.py): Debian 12 minbase from the host's apt mirror with
  python3, python3-venv and postgresql-client-15, and the agent's account (uid 10001) with its home,
  config and repository directories; rebuilt only when the packages or the mirror change (~2 min);
- the dependencies, a tarball: the system plus a venv at /opt/pg-backup-verifier holding the agent's
  dependencies from pyproject.toml, installed by the image's own pip in a chroot (from PyPI, or the
  index the PIP_* variables name); rebuilt when pyproject.toml changes (~1 min), `docker import`ed
  as `pg-backup-verifier-base:<hash>` into an engine that lacks it;
- the agent: a `docker build` on that base installing the checkout into the venv (no network, no
  dependencies: seconds) with the image settings (user, entrypoint, environment) and a label carrying
  the whole recipe's hash; an engine whose image of that tag has the label is left alone.

Needs root, debootstrap and the docker CLI (DOCKER_HOST names the engine, as for the CLI). Standard
library only.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from deploy import debian_rootfs

logger = logging.getLogger(__name__)

IMAGE = "pg-backup-verifier:local"
RECIPE_LABEL = "pg-backup-verifier.recipe"
CACHE_DIR = Path("/var/cache/pg-backup-verifier-image")
CHECKOUT = Path(__file__).resolve().parents[1]
# postgresql-client-15: the agent in a container proves backups in a `verify.sandbox: docker` container of
# the production image (pg_dump and pg_restore run in those containers); the local client programs serve
# `check --quick` (pg_restore reads an archive to its end), `dump.format: directory`, a source reached
# over TCP and `verify.sandbox: server`. ca-certificates for HTTPS (Zabbix API, S3), tzdata for TZ.
PACKAGES = ("python3", "python3-venv", "postgresql-client-15", "ca-certificates", "tzdata")
USER_NAME = "verifier"
USER_ID = 10001
HOME = "/var/lib/pg-backup-verifier"
VENV = "/opt/pg-backup-verifier"
CONFIG = "/etc/pg-backup-verifier/config.yaml"
REPOSITORY = "/var/backups/pg-backup-verifier"
# what `pip install <checkout>` reads: the rest of the checkout (tests, docs, .git) stays out of the key
SOURCE_PATHS = ("pyproject.toml", "README.md", "verifier", "checks")
SYSTEM_NAME = "agent-system"
DEPENDENCIES_NAME = "agent-dependencies"
BASE_IMAGE = "pg-backup-verifier-base"
BUILD_DIR = "tmp/pgbv-build"  # inside the root filesystem, removed before it is tarred
# the dependencies of pyproject.toml (and what builds the agent) into the venv, by the image's own Python
INSTALL_DEPENDENCIES = (
    "import subprocess, sys, tomllib\n"
    "project = tomllib.load(open(sys.argv[1], 'rb'))\n"
    "wanted = [*project['build-system']['requires'], *project['project']['dependencies']]\n"
    "subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', *wanted], check=True)\n"
)
# what pip in the chroot takes from the caller's environment: an index, a proxy
PASSED_THROUGH = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT")
PROXIES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

IMAGE_CHANGES = (
    f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    f"ENV HOME={HOME}",
    f"WORKDIR {HOME}",
    # numeric, so Kubernetes' runAsNonRoot can tell the user is not root without a runAsUser
    f"USER {USER_ID}:{USER_ID}",
    'ENTRYPOINT ["verifier"]',
    f'CMD ["daemon", "--config", "{CONFIG}"]',
)


class BuildError(Exception):
    """A build step failed; the message is one line for the user."""


def build(tag: str = IMAGE, *, cache_dir: Path = CACHE_DIR, checkout: Path = CHECKOUT) -> str:
    """Returns `tag` after making sure the engine (DOCKER_HOST, else the local socket) has the image of
    this recipe and `checkout`: each step built first where its result is missing.

    Raises BuildError naming the step that failed.
    """
    missing = [program for program in ("debootstrap", "chroot", "docker", "tar") if shutil.which(program) is None]
    if missing:
        raise BuildError(f"{', '.join(missing)} not found: apt-get install debootstrap docker.io")
    if os.geteuid() != 0:
        raise BuildError("debootstrap and chroot need root: run it with sudo")
    try:
        system_key = debian_rootfs.rootfs_key(PACKAGES, _user_recipe())
        dependencies_key = debian_rootfs.digest(system_key, (checkout / "pyproject.toml").read_text(), VENV)
        image_key = debian_rootfs.digest(dependencies_key, source_digest(checkout), "\n".join(IMAGE_CHANGES))
        if _label_of(tag) == image_key:
            logger.info("%s is up to date (recipe %s)", tag, image_key)
            return tag
        base = f"{BASE_IMAGE}:{dependencies_key}"
        if _label_of(base) is None:
            system = debian_rootfs.cached_tarball(cache_dir, SYSTEM_NAME, system_key, _make_system)
            dependencies = debian_rootfs.cached_tarball(
                cache_dir,
                DEPENDENCIES_NAME,
                dependencies_key,
                lambda rootfs: _make_dependencies(rootfs, system, checkout),
            )
            _timed(f"imported {base}", ["docker", "import", str(dependencies), base])
        with tempfile.TemporaryDirectory(prefix="pgbv-image-") as context:
            _agent_context(Path(context), checkout, base, image_key)
            _timed(f"built {tag}", ["docker", "build", "--network=none", "--quiet", "--tag", tag, context])
    except subprocess.CalledProcessError as error:
        last_line = ((error.stderr or "").strip().splitlines() or [""])[-1]
        raise BuildError(f"{' '.join(error.cmd[:3])} failed (exit {error.returncode}): {last_line}") from None
    except (LookupError, OSError) as error:
        raise BuildError(str(error)) from None
    return tag


def _timed(done: str, argv: list[str]) -> None:
    """Runs a docker command (the classic builder: no buildx needed) and logs `done` with its duration.

    Raises CalledProcessError."""
    started = time.monotonic()
    debian_rootfs.run(argv, {**os.environ, "DOCKER_BUILDKIT": "0"})
    logger.info("%s in %.1f s", done, time.monotonic() - started)


def _agent_context(context: Path, checkout: Path, base: str, image_key: str) -> None:
    """Writes the build context of the agent's layer into `context`: the checkout's installed files and
    a Dockerfile that installs them into the base's venv (offline) and sets the image's settings."""
    for path in _source_files(checkout):
        target = context / "src" / path.relative_to(checkout)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    install = f"{VENV}/bin/pip install --quiet --no-deps --no-build-isolation --no-index"
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "COPY src /tmp/pgbv-src\n"
        f"RUN {install} /tmp/pgbv-src && rm -rf /tmp/pgbv-src\n"
        + "".join(f"{change}\n" for change in IMAGE_CHANGES)
        + f"LABEL {RECIPE_LABEL}={image_key}\n"
    )


def source_digest(checkout: Path) -> str:
    """Returns a hash of the checkout's files that the agent's install reads (names and contents).

    Raises BuildError when the checkout lacks pyproject.toml."""
    if not (checkout / "pyproject.toml").is_file():
        raise BuildError(f"{checkout} is not a checkout of pg-backup-verifier (no pyproject.toml)")
    parts: list[str] = []
    for path in _source_files(checkout):
        parts += [str(path.relative_to(checkout)), path.read_bytes().hex()]
    return debian_rootfs.digest(*parts)


def _source_files(checkout: Path) -> Iterator[Path]:
    """Yields the files of SOURCE_PATHS in `checkout`, sorted, without bytecode or build leftovers."""
    for name in SOURCE_PATHS:
        top = checkout / name
        candidates = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in candidates:
            relative = path.relative_to(checkout).parts
            if path.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in relative):
                yield path


def _user_recipe() -> str:
    return f"{USER_NAME} {USER_ID} {HOME} {CONFIG} {REPOSITORY}"


def _make_system(rootfs: Path) -> None:
    """Fills `rootfs` with Debian 12, PACKAGES and the agent's account and directories."""
    debian_rootfs.bootstrap(rootfs, PACKAGES)
    debian_rootfs.chroot(rootfs, ["groupadd", "--system", "--gid", str(USER_ID), USER_NAME])
    debian_rootfs.chroot(
        rootfs,
        ["useradd", "--system", "--uid", str(USER_ID), "--gid", str(USER_ID), "--home-dir", HOME,
         "--shell", "/usr/sbin/nologin", USER_NAME],
    )  # fmt: skip
    for directory in (HOME, REPOSITORY, str(Path(CONFIG).parent)):
        path = rootfs / directory.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, USER_ID, USER_ID)
        path.chmod(0o750)
    (rootfs / "etc/hostname").write_text("pg-backup-verifier\n")


def _make_dependencies(rootfs: Path, system: Path, checkout: Path) -> None:
    """Fills `rootfs` with the `system` tarball and a venv at VENV holding the dependencies in
    `checkout`'s pyproject.toml, installed by the image's own pip in a chroot."""
    debian_rootfs.extract(system, rootfs)
    build_dir = rootfs / BUILD_DIR
    build_dir.mkdir(parents=True)
    shutil.copyfile(checkout / "pyproject.toml", build_dir / "pyproject.toml")
    environment = {"HOME": "/root", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
    environment |= {name: os.environ[name] for name in (*PASSED_THROUGH, *PROXIES) if name in os.environ}
    certificates = _certificate_bundle()
    if certificates is not None:  # the build host's trust (a proxy's CA included), not the image's
        shutil.copyfile(certificates, build_dir / "ca.pem")
        environment["PIP_CERT"] = f"/{BUILD_DIR}/ca.pem"
    environment["PIP_NO_CACHE_DIR"] = "1"
    resolv = rootfs / "etc/resolv.conf"
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        debian_rootfs.chroot(rootfs, ["python3", "-m", "venv", VENV], environment)
        debian_rootfs.chroot(
            rootfs, [f"{VENV}/bin/python", "-c", INSTALL_DEPENDENCIES, f"/{BUILD_DIR}/pyproject.toml"], environment
        )
    finally:
        resolv.write_text("")
    shutil.rmtree(build_dir)


def _certificate_bundle() -> Path | None:
    """Returns the build host's CA bundle for pip (PIP_CERT, SSL_CERT_FILE, else OpenSSL's default
    file), or None when there is none (pip then uses its own)."""
    default = ssl.get_default_verify_paths()
    candidates = (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), default.cafile, default.openssl_cafile)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _label_of(tag: str) -> str | None:
    """Returns the recipe label of the engine's image `tag`, or None when it has no such image."""
    completed = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{RECIPE_LABEL}" }}}}', tag],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    """Builds the image; returns the exit code (0, or 1 after one line naming what failed)."""
    parser = argparse.ArgumentParser(
        prog="deploy/build-image",
        description="Builds the agent's image from Debian packages (no image registry needed) into the "
        "engine DOCKER_HOST names. Needs root, debootstrap and the docker CLI.",
    )
    parser.add_argument("--tag", default=IMAGE, help=f"image name (default {IMAGE})")
    parser.add_argument(
        "--cache-dir", type=Path, default=CACHE_DIR, help=f"where the root filesystems are kept (default {CACHE_DIR})"
    )
    parser.add_argument("--checkout", type=Path, default=CHECKOUT, help="the pg-backup-verifier checkout to install")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="build-image: %(message)s")
    try:
        tag = build(arguments.tag, cache_dir=arguments.cache_dir, checkout=arguments.checkout.resolve())
    except BuildError as error:
        print(f"build-image: {error}", file=sys.stderr)
        return 1
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
