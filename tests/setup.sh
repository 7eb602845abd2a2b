#!/bin/sh
# Test set-up on a fresh Debian/Ubuntu machine: Debian's Chromium (for the browser test and PNG
# export; from the system package manager, never a browser downloaded by a tool), then the venv.
set -eu
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
