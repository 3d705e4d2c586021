#!/usr/bin/env bash
# Installs Debian's chromium (the console's browser tests drive it through Playwright; no
# browser download) when it is missing and this user may install packages.
set -euo pipefail
CHROMIUM="${KAFKA_RELIABLE_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
if command -v apt-get >/dev/null; then
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
[ -x "$CHROMIUM" ] || { echo "chromium is missing and could not be installed (apt-get install chromium)" >&2; exit 1; }
