#!/usr/bin/env bash
# Runs the `escale stack` end-to-end suite (tests/stack_e2e.rs, tests/stack_cli.rs)
# on this machine's swarm: engine, single-node swarm with the pinned pool and
# host blackhole route, the FROM scratch images escale:dev and escale-whoami:dev
# (which examples/stack/local.toml deploys), then the tests. Each test uses its
# own esc-stack-<random>- prefix and removes what it created; leftovers of
# crashed runs older than 15 minutes are removed first. Host ports 19110-19112.
#
# Env: SKIP_BUILD=1 to reuse existing images; extra arguments go to the test
#      binary (e.g. a test name).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/common.sh"
root=$(cd "$here/.." && pwd)

"$here/swarm-setup.sh"
if [[ ${SKIP_BUILD:-} != 1 ]]; then
    "$here/build-images.sh"
fi
cd "$root"
log "running the stack end-to-end suite"
cargo test --test stack_cli --test stack_e2e -- "$@"
