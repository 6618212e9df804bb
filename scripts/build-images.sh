#!/usr/bin/env bash
# Builds the static release binaries of escale and the whoami example, then the two
# FROM scratch images escale:dev and escale-whoami:dev.
#
# The static build uses its own target dir (target/static) so it does not evict the
# normal debug build. Each image is built from a temporary context holding only its
# binary and Dockerfile.
#
# Env: ESCALE_IMAGE (default escale:dev), WHOAMI_IMAGE (default escale-whoami:dev),
#      ESC_TARGET_DIR (default target/static), CARGO (default cargo).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/common.sh"
root=$(cd "$here/.." && pwd)

ESCALE_IMAGE=${ESCALE_IMAGE:-escale:dev}
WHOAMI_IMAGE=${WHOAMI_IMAGE:-escale-whoami:dev}
ESC_TARGET_DIR=${ESC_TARGET_DIR:-$root/target/static}
CARGO=${CARGO:-cargo}
triple=x86_64-unknown-linux-gnu
# The engine here (20.10) ships no BuildKit frontend for a newer client; the classic
# builder handles FROM scratch + COPY fine.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

log "building static binaries into $ESC_TARGET_DIR"
(
    cd "$root"
    RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" "$CARGO" build --release \
        --target "$triple" --target-dir "$ESC_TARGET_DIR" --bin escale --example whoami
)
out=$ESC_TARGET_DIR/$triple/release
escale_bin=$out/escale
whoami_bin=$out/examples/whoami

# A dynamically linked binary would only fail at container start ("no such file").
assert_static() {
    [[ -x $1 ]] || die "$1 missing"
    if command -v readelf >/dev/null; then
        if readelf -l "$1" | grep -q 'Requesting program interpreter'; then
            die "$1 is dynamically linked"
        fi
    fi
}
assert_static "$escale_bin"
assert_static "$whoami_bin"

ctx_root=$(mktemp -d /tmp/escale-image.XXXXXX)
trap 'rm -rf "$ctx_root"' EXIT

# build_image TAG BINARY DOCKERFILE
build_image() {
    local tag=$1 bin=$2 dockerfile=$3 ctx
    ctx=$ctx_root/${tag//[:\/]/_}
    mkdir "$ctx"
    cp "$bin" "$ctx/"
    cp "$dockerfile" "$ctx/Dockerfile"
    log "building $tag ($(du -h "$bin" | cut -f1) binary)"
    docker build -q -t "$tag" "$ctx" >/dev/null
}

"$here/docker-setup.sh"
build_image "$ESCALE_IMAGE" "$escale_bin" "$root/Dockerfile"
build_image "$WHOAMI_IMAGE" "$whoami_bin" "$root/docker/whoami.Dockerfile"
# The binaries must start in an empty image (no loader, no libc files); no network needed.
docker run --rm --network none "$WHOAMI_IMAGE" --help >/dev/null ||
    die "$WHOAMI_IMAGE does not start"
if ! out=$(timeout 30 "$(docker_bin)" run --rm --network none "$ESCALE_IMAGE" --version 2>&1); then
    log "warning: '$ESCALE_IMAGE --version' failed: $out"
fi
# Each rebuild leaves the previous image dangling; drop only ours.
docker image prune -f --filter label=io.escale.image >/dev/null
docker image ls --filter label=io.escale.image --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >&2
