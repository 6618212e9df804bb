#!/usr/bin/env bash
# Makes a Docker engine answer on this machine: installs Debian's docker.io if dockerd is
# missing, starts dockerd in the background (no init system is assumed), and waits until
# `docker info` answers. Idempotent: does nothing when the engine already answers.
#
# Env: DOCKERD_LOG (default /tmp/escale-dockerd.log), DOCKERD_WAIT seconds (default 60).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/escale-dockerd.log}
DOCKERD_WAIT=${DOCKERD_WAIT:-60}

engine_answers() { timeout 10 "$(docker_bin)" info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null; then
    log "dockerd missing: installing docker.io"
    # The package's postinst may fail to start the service without an init system; what
    # matters is that the binaries are there, which is checked right after.
    apt_install docker.io || log "apt-get reported an error; checking what got installed"
fi
command -v dockerd >/dev/null || die "dockerd not installed"
[[ -n $(docker_bin) ]] || die "docker client not installed"

if engine_answers; then
    log "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

# A dockerd that is still starting (from a concurrent run) must not get a twin.
pidfile=/var/run/docker.pid
if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "dockerd (pid $(cat "$pidfile")) is running but not answering yet; waiting"
else
    log "starting dockerd, log in $DOCKERD_LOG"
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

for ((i = 0; i < DOCKERD_WAIT; i++)); do
    if engine_answers; then
        log "engine answers after ${i}s"
        exit 0
    fi
    sleep 1
done
tail -n 30 "$DOCKERD_LOG" >&2 || true
die "docker engine did not answer within ${DOCKERD_WAIT}s"
