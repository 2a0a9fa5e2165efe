"""A PostgreSQL 15 image built locally from a Debian mirror, because this machine has no image registry.

The recipe mirrors what the official `postgres` image does where the agent can notice it: the
server runs as `postgres` from `/usr/lib/postgresql/15/bin`, the entrypoint honours
`POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB`/`PGDATA`/`PGPORT` and the `*_FILE` variants,
sets up the database with a server that listens on no TCP address, then starts the final server
listening everywhere with scram-sha-256 for TCP and trust on the unix socket, and stops on SIGINT.

Build: `debootstrap --variant=minbase` from the mirror in apt's sources, `postgresql-15` installed
in a chroot (no main cluster, services kept from starting), the root filesystem tarred into
`/var/cache/pg-backup-verifier-tests/` (kept between runs, keyed by a hash of the recipe), then
`docker import` with the image config and a small build that adds the entrypoint and
`STOPSIGNAL SIGINT` (which `import --change` does not accept). On a fresh machine everything is built from nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker

logger = logging.getLogger(__name__)

CACHE_DIR = Path("/var/cache/pg-backup-verifier-tests")
IMAGE = "pg-backup-verifier-test/postgres:15"
RECIPE_LABEL = "pg-backup-verifier-test.recipe"
# Debian 12 as installed from its images lists the archive in deb822 form; a system made with
# debootstrap (or upgraded from Debian 11) has only the one-line /etc/apt/sources.list.
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LEGACY_SOURCES = Path("/etc/apt/sources.list")
SUITE = "bookworm"
# python3: the Docker tests also run the agent itself in a container of this image (the compose case)
PACKAGES = ("postgresql-15", "python3")
BIN_DIR = "/usr/lib/postgresql/15/bin"
ENTRYPOINT_PATH = "/usr/local/bin/docker-entrypoint.sh"  # also in the build's COPY below

ENTRYPOINT = r"""#!/usr/bin/env bash
# Entrypoint of the test image: the parts of the official postgres image's entrypoint the agent relies on.
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR from the environment, or from the file named by VAR_FILE (not both).
file_env() {
    local var="$1" file_var="${1}_FILE" default="${2:-}"
    if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"
        exit 1
    fi
    local value="$default"
    if [ "${!var:-}" ]; then
        value="${!var}"
    elif [ "${!file_var:-}" ]; then
        value="$(< "${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = 'postgres' ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    export PGPORT="${PGPORT:-5432}"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
            echo >&2 'error: database is uninitialized and POSTGRES_PASSWORD is not set'
            exit 1
        fi
        initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
            --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-} >/dev/null
        printf "\nhost all all all %s\n" "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
        printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
        # The set-up server listens on the unix socket only, so a TCP readiness probe sees only
        # the final server.
        PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        if [ "$POSTGRES_DB" != 'postgres' ]; then
            echo 'CREATE DATABASE :"db";' |
                psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --set db="$POSTGRES_DB" -q
        fi
        for script in /docker-entrypoint-initdb.d/*; do
            case "$script" in
                *.sh) . "$script" ;;
                *.sql) psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -q -f "$script" ;;
                *) ;;
            esac
        done
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        echo 'PostgreSQL init process complete; ready for start up.'
    fi
    unset POSTGRES_PASSWORD
fi

exec "$@"
"""

IMAGE_CHANGES = (
    f"ENV PATH={BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV PGDATA=/var/lib/postgresql/data",
    "ENV LANG=C.UTF-8",
    f'ENTRYPOINT ["{ENTRYPOINT_PATH}"]',
    'CMD ["postgres"]',
    "EXPOSE 5432",
)


def ensure_image(client: docker.DockerClient, *, cache_dir: Path = CACHE_DIR) -> str:
    """Returns the tag of the test image, importing it into the engine if the engine lacks it.

    The root filesystem tarball is built once per package recipe and kept in `cache_dir`; the
    entrypoint and image settings are added by a small build, so changing them costs seconds.
    Raises subprocess.CalledProcessError when debootstrap or apt fails, docker.errors.APIError
    when the engine rejects the import or build.
    """
    key = image_key()
    with contextlib.suppress(docker.errors.ImageNotFound):
        if client.images.get(IMAGE).labels.get(RECIPE_LABEL) == key:
            return IMAGE
    tarball = rootfs_tarball(cache_dir, rootfs_key())
    started = time.monotonic()
    imported = f"{IMAGE}-rootfs"
    repository, tag = imported.rsplit(":", 1)
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=list(IMAGE_CHANGES))
    dockerfile = (
        f"FROM {imported}\n"
        "COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
        "STOPSIGNAL SIGINT\n"
        f"LABEL {RECIPE_LABEL}={key}\n"
    )
    client.images.build(fileobj=_build_context(dockerfile), custom_context=True, tag=IMAGE, rm=True, forcerm=True)
    logger.info("imported and built %s in %.1f s", IMAGE, time.monotonic() - started)
    return IMAGE


def rootfs_key() -> str:
    """Returns a short hash of what the root filesystem depends on: suite, packages, apt sources."""
    return _digest(SUITE, " ".join(PACKAGES), image_sources())


def image_key() -> str:
    """Returns a short hash of everything the image depends on: a change to any part rebuilds it."""
    return _digest(rootfs_key(), ENTRYPOINT, "\n".join(IMAGE_CHANGES))


def _digest(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _build_context(dockerfile: str) -> io.BytesIO:
    """Returns a tar build context holding the Dockerfile and the entrypoint (mode 0755)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, text, mode in (("Dockerfile", dockerfile, 0o644), ("docker-entrypoint.sh", ENTRYPOINT, 0o755)):
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = mode
            archive.addfile(member, io.BytesIO(data))
    context.seek(0)
    return context


def rootfs_tarball(cache_dir: Path, key: str) -> Path:
    """Returns the cached root filesystem tarball for `key`, building it first when it is missing.

    A lock file serialises concurrent builds; tarballs of older recipes are deleted.
    Raises subprocess.CalledProcessError when a build step fails.
    """
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    tarball = cache_dir / f"postgres15-rootfs-{key}.tar"
    with _locked(cache_dir / ".lock"):
        if tarball.exists():
            return tarball
        for stale in cache_dir.glob("postgres15-rootfs-*.tar*"):
            stale.unlink()
        started = time.monotonic()
        work = cache_dir / f"build-{os.getpid()}"
        try:
            rootfs = work / "rootfs"
            rootfs.mkdir(parents=True)
            _bootstrap(rootfs)
            partial = tarball.with_suffix(".tar.partial")
            _run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."])
            partial.rename(tarball)
        finally:
            _remove_tree(work)
        logger.info("built %s in %.1f s", tarball, time.monotonic() - started)
        return tarball


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


def _bootstrap(rootfs: Path) -> None:
    """Fills `rootfs` with a minimal Debian and PostgreSQL 15, ready for `docker import`."""
    _run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror()])
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    cluster_defaults = rootfs / "etc/postgresql-common/createcluster.d"
    cluster_defaults.mkdir(parents=True)
    (cluster_defaults / "no-main-cluster.conf").write_text("create_main_cluster = false\n")
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(image_sources())
    environment = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    _run(["chroot", str(rootfs), "apt-get", "update", "-qq"], environment)
    _run(
        ["chroot", str(rootfs), "apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        environment,
    )
    _run(["chroot", str(rootfs), "apt-get", "clean"], environment)
    for bulky in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(rootfs / bulky, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "docker-entrypoint-initdb.d").mkdir()
    (rootfs / "etc/resolv.conf").write_text("")
    (rootfs / "etc/hostname").write_text("postgres\n")


def _run(argv: list[str], environment: dict[str, str] | None = None) -> None:
    """Runs a build step, logging its output only when it fails. Raises CalledProcessError."""
    completed = subprocess.run(argv, env=environment, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        logger.error("%s failed:\n%s\n%s", argv[:3], completed.stdout[-4000:], completed.stderr[-4000:])
        raise subprocess.CalledProcessError(completed.returncode, argv, completed.stdout, completed.stderr)


def _remove_tree(path: Path) -> None:
    """Unmounts whatever a failed debootstrap left mounted under `path`, then deletes it.

    Never deletes through a mount point: a bind-mounted /dev or /proc would be emptied otherwise.
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
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `path` for the duration of the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
