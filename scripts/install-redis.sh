#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing and this user may install packages.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
if command -v apt-get >/dev/null; then
  $SUDO apt-get install -y -q redis-server >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q redis-server >/dev/null; }
fi
command -v redis-server >/dev/null || { echo "redis-server is missing and could not be installed; set REDIS_URL" >&2; exit 1; }
