"""A PostgreSQL 15 image built locally from a Debian mirror, because this machine has no image registry.

The recipe mirrors what the official `postgres` image does where the agent can notice it: the
server runs as `postgres` from `/usr/lib/postgresql/15/bin`, the entrypoint honours
`POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB`/`PGDATA`/`PGPORT` and the `*_FILE` variants,
sets up the database with a server that listens on no TCP address, then starts the final server
listening everywhere with scram-sha-256 for TCP and trust on the unix socket, and stops on SIGINT.

Build: a Debian 12 root filesystem with `postgresql-15` (no main cluster) from deploy/debian_rootfs.py,
the same recipe as the agent's own image, tarred into `/var/cache/pg-backup-verifier-tests/` (kept
between runs, keyed by a hash of the recipe), then `docker import` with the image config and a small
build that adds the entrypoint and `STOPSIGNAL SIGINT` (which `import --change` does not accept). On a
fresh machine everything is built from nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import time
from pathlib import Path

import docker

from deploy import debian_rootfs

logger = logging.getLogger(__name__)

CACHE_DIR = Path("/var/cache/pg-backup-verifier-tests")
IMAGE = "pg-backup-verifier-test/postgres:15"
RECIPE_LABEL = "pg-backup-verifier-test.recipe"
# not `postgres15-rootfs`, the name of the older recipe (with python3): a checkout of that one building
# on the same machine deletes its stale tarballs by name, and this one would be rebuilt every time
ROOTFS_NAME = "postgres-15-rootfs"
PACKAGES = ("postgresql-15",)
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
    tarball = debian_rootfs.cached_tarball(cache_dir, ROOTFS_NAME, rootfs_key(), _bootstrap)
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
    return debian_rootfs.rootfs_key(PACKAGES)


def image_key() -> str:
    """Returns a short hash of everything the image depends on: a change to any part rebuilds it."""
    return debian_rootfs.digest(rootfs_key(), ENTRYPOINT, "\n".join(IMAGE_CHANGES))


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


def _bootstrap(rootfs: Path) -> None:
    """Fills `rootfs` with a minimal Debian and PostgreSQL 15 (no cluster), ready for `docker import`."""

    def no_main_cluster(tree: Path) -> None:
        cluster_defaults = tree / "etc/postgresql-common/createcluster.d"
        cluster_defaults.mkdir(parents=True)
        (cluster_defaults / "no-main-cluster.conf").write_text("create_main_cluster = false\n")

    debian_rootfs.bootstrap(rootfs, PACKAGES, before_install=no_main_cluster)
    (rootfs / "docker-entrypoint-initdb.d").mkdir()
    (rootfs / "etc/hostname").write_text("postgres\n")
