#!/usr/bin/env bash
# Runs the swarm end-to-end suite (tests/swarm_e2e.rs) on this machine's swarm:
# engine, single-node swarm with the pinned pool and host blackhole route, the
# FROM scratch images, then the tests one at a time. Each test uses its own
# name prefix and removes what it created; the first removes earlier leftovers.
#
# Env: ESCALE_IMAGE, WHOAMI_IMAGE (image tags, default escale:dev and
#      escale-whoami:dev), SKIP_BUILD=1 to reuse existing images, and any
#      extra arguments are passed to the test binary (e.g. a test name).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/common.sh"
root=$(cd "$here/.." && pwd)

export ESCALE_IMAGE=${ESCALE_IMAGE:-escale:dev}
export WHOAMI_IMAGE=${WHOAMI_IMAGE:-escale-whoami:dev}

"$here/swarm-setup.sh"
if [[ ${SKIP_BUILD:-} != 1 ]]; then
    "$here/build-images.sh"
fi
cd "$root"
log "running the swarm end-to-end suite against $ESCALE_IMAGE"
cargo test --test swarm_e2e -- --test-threads=1 "$@"
