#!/usr/bin/env bash
# Installs the browser the web page's tests drive (Debian's Chromium at /usr/bin/chromium) when missing.
# Playwright for Python (pinned in pyproject.toml) drives it through `executable_path`; it never
# downloads a browser build of its own, so nothing is fetched at test time.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

echo "install-browser: installing chromium"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-browser: need root (or sudo) to install chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium
