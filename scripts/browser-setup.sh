#!/usr/bin/env bash
# Installs what the dashboard browser test (tests/admin_dashboard.rs) uses:
# Debian's Chromium and playwright-core from tests/dashboard's lockfile.
# Idempotent; run as root on Debian 12 (CI does, through scripts/test.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ! -x /usr/bin/chromium ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
cd "$root/tests/dashboard"
if [[ ! -d node_modules/playwright-core ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
