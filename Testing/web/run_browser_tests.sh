#!/usr/bin/env bash
# The web page's browser tests (docs/web.md): installs what they need, then drives
# `tareplanner serve` in headless Chromium. Run from anywhere; CI runs it after the default
# tests. Screenshots go to $TAREPLANNER_WEB_SCREENSHOTS when it is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    # the package lists of a fresh machine may be missing or stale: read them again if needed
    $SUDO apt-get install -y chromium || { $SUDO apt-get update && $SUDO apt-get install -y chromium; }
fi
pip install -e ".[web,test]"
# every test of the web page with the extra installed: the browser tests and those that
# import the page's module (skipped by the default run, which has no web extra)
pytest -m "browser or not browser" Testing/web
