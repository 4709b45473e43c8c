#!/usr/bin/env bash
# CI (as root): Debian's chromium for the console's browser tests (tests/console/test_console_browser.py
# drives it through Playwright with executable_path=/usr/bin/chromium; no `playwright install`,
# which downloads a browser). Idempotent: a second run installs nothing.
set -euo pipefail

say() { echo "chromium.sh: $*" >&2; }

if [ -x /usr/bin/chromium ]; then
    say "$(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "run me as root (apt-get)"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null || true
apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null
say "$(/usr/bin/chromium --version 2>/dev/null) installed"
