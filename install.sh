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

missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
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

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
else
    .venv/bin/python -m pip install -q --disable-pip-version-check .
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
fi
echo "install: done — $(.venv/bin/verifier --version); try: .venv/bin/verifier demo"
