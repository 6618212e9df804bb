#!/usr/bin/env bash
# The one test command: prepares what the tests need (Docker engine, a local
# swarm with the pinned address pool, the FROM scratch images, a real Traefik
# 3.7 binary, headless Chromium) and runs every test, swarm end-to-end tests
# included. Idempotent; run as root on Debian 12 (CI does).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

"$here/swarm-setup.sh"
"$here/build-images.sh"
"$here/get-traefik.sh" >/dev/null
if [[ -x "$here/browser-setup.sh" ]]; then
    "$here/browser-setup.sh"
fi

cargo test --all-targets
