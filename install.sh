#!/usr/bin/env bash
# Installs pg-backup-verifier into ./.venv, with what it needs from Debian when missing:
# PostgreSQL 15 server and client programs (the local sandbox and the demo start temporary
# clusters from them) and Python's venv. `--dev` adds the test and lint tools.
# Run as root, or as a user with sudo for the apt step. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The Python the venv is built with: on Debian/Ubuntu the distribution's own /usr/bin/python3 (what a
# server has and what the tests run), not whatever python3 a PATH puts first (pyenv, conda);
# PYTHON=/path/to/python3 chooses another. pyproject.toml's requires-python is checked here too.
if [ -z "${PYTHON:-}" ] && [ -f /etc/debian_version ] && [ ! -x /usr/bin/python3 ] && command -v apt-get >/dev/null; then
    # a minimal Debian (debootstrap, a container image) has no Python at all
    echo "install: apt-get install python3 python3-venv"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
if [ -n "${PYTHON:-}" ]; then
    python="$PYTHON"
elif [ -f /etc/debian_version ] && [ -x /usr/bin/python3 ]; then
    python=/usr/bin/python3
else
    python=$(command -v python3 || true)
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install: pg-backup-verifier needs Python 3.11 or newer; found: ${python:-no python3} $("${python:-false}" --version 2>&1 || true)" >&2
    echo "install: on Debian 12 / Ubuntu 24.04 that is the python3 package; elsewhere set PYTHON=/path/to/python3.11" >&2
    exit 3
fi

missing=()
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
have_postgres=false
for bin_dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$bin_dir/initdb" ] && [ -x "$bin_dir/pg_dump" ] && [ -x "$bin_dir/pg_restore" ]; then have_postgres=true; fi
done
$have_postgres || missing+=(postgresql-15 postgresql-client-15)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

base_of() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'; }
if [ -x .venv/bin/python ] && [ "$(base_of .venv/bin/python)" != "$(base_of "$python")" ]; then
    echo "install: .venv was built with another Python; rebuilding it with $python"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
else
    .venv/bin/python -m pip install -q --disable-pip-version-check .
fi
# `verifier` on PATH and where deploy/pg-backup-verifier.service runs it: /usr/local/bin/verifier, a link
# to this venv's script (the README's commands and the shipped unit use it). Not replaced when it is
# something else already (another install's file). The shipped unit's ReadWritePaths= (the default
# repository) must exist when the service starts, so it is made too (0700, empty).
if [ "$(id -u)" -eq 0 ]; then
    [ -e /var/backups/pg-backup-verifier ] || install -d -m 0700 /var/backups/pg-backup-verifier
    link=/usr/local/bin/verifier
    if [ -L "$link" ] || [ ! -e "$link" ]; then
        ln -sfn "$(pwd)/.venv/bin/verifier" "$link"
    elif [ "$(readlink -f "$link")" != "$(readlink -f .venv/bin/verifier)" ]; then
        echo "install: $link exists and is not a link to this venv: left as it is" >&2
    fi
fi
# the local sandbox's own account (pgbv-sandbox): code inside a restored dump runs as it, never as
# postgres or root. `verifier doctor --fix` creates it and prints what the sandbox could read;
# exit 2 (something exposed) is shown, not fatal; 3 (could not create it) is.
if [ "$(id -u)" -eq 0 ]; then
    doctor_status=0
    .venv/bin/verifier doctor --fix || doctor_status=$?
    [ "$doctor_status" -le 2 ] || exit "$doctor_status"
else
    echo "install: as root, run .venv/bin/verifier doctor --fix to create the sandbox account"
    echo "install: \`verifier\` is not on PATH: use $(pwd)/.venv/bin/verifier, or run ./install.sh as root (links /usr/local/bin/verifier)"
fi
echo "install: done — $(.venv/bin/verifier --version) on $("$python" --version); try: .venv/bin/verifier demo"
