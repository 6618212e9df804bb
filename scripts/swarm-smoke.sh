#!/usr/bin/env bash
# First proof that the swarm environment works, without escale: an attachable overlay
# network, two whoami services with two replicas each, task IPs read from the Docker API
# over the unix socket (NetworksAttachments[].Addresses, which bollard's typed Task drops),
# and a third whoami service published in host mode on 127.0.0.1:$SMOKE_PORT, fetched
# from the host. Everything it creates is removed on exit, as are leftovers of earlier
# runs. The host never talks to a task IP: only to the host-mode port on loopback.
#
# Env: SMOKE_PORT (default 18081), WHOAMI_IMAGE (default escale-whoami:dev; built with
# scripts/build-images.sh when missing), SMOKE_WAIT seconds per wait (default 90).
#
# Observed on the dev machine (Engine 20.10.24, API 1.41, single node, pool 10.201.0.0/16,
# no IPVS), one run in about 10 s:
# - the overlay got 10.201.1.0/24 (ingress holds 10.201.0.0/24); each service still gets a
#   VirtualIP (10.201.1.2, .5, .8) even though without IPVS nothing answers on it, so
#   routing must use task addresses: a.1/a.2 = 10.201.1.3/.4, b = .6/.7, c = .9 (all /24);
# - dockerd logs once "Could not get ipvs family information from the kernel"; tasks
#   start anyway;
# - `docker service ps` shows the host-mode port twice (*:18081->80/tcp, IPv4 and IPv6);
# - curl 127.0.0.1:18081 reaches task c through docker_gwbridge: whoami saw
#   RemoteAddr 172.18.0.1:PORT and listed IP 10.201.1.9 (overlay, as the API reported),
#   127.0.0.1 and 172.18.0.7 (gwbridge); the container's hostname is its short id;
# - while a service is removed, dockerd may log "unknown network ... remove failed" for
#   its tasks; this is noise, the network is gone afterwards.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/common.sh"

SMOKE_PORT=${SMOKE_PORT:-18081}
SMOKE_WAIT=${SMOKE_WAIT:-90}
WHOAMI_IMAGE=${WHOAMI_IMAGE:-escale-whoami:dev}

"$here/swarm-setup.sh"
need curl curl
need jq jq

if ! docker image inspect "$WHOAMI_IMAGE" >/dev/null 2>&1; then
    log "$WHOAMI_IMAGE missing: building images"
    "$here/build-images.sh"
fi

# Smoke runs cannot overlap (they share the published port), so any earlier smoke object
# is a leftover; other esc- objects are only taken once they are an hour old.
"$here/swarm-clean.sh" esc-smoke-
"$here/swarm-clean.sh" esc- 3600

if (exec 3<>"/dev/tcp/127.0.0.1/$SMOKE_PORT") 2>/dev/null; then
    die "127.0.0.1:$SMOKE_PORT is already in use"
fi

P=esc-smoke-$(date +%s)-$RANDOM
net=$P-net
cleanup() {
    local rc=$?
    "$here/swarm-clean.sh" "$P" || rc=1
    exit "$rc"
}
trap cleanup EXIT

log "prefix $P"
docker network create --driver overlay --attachable --label "io.escale.test=$P" "$net" >/dev/null

# --no-resolve-image: there is no registry, and the engine must not try to reach one.
service() {
    local name=$1
    shift
    docker service create --detach --quiet --no-resolve-image \
        --name "$P-$name" --network "$net" --label "io.escale.test=$P" \
        --env "WHOAMI_NAME=$P-$name" --env WHOAMI_ENV_PREFIX=SMOKE_ --env "SMOKE_SERVICE=$name" \
        --stop-grace-period 5s "$@" "$WHOAMI_IMAGE" >/dev/null
}
service a --replicas 2
service b --replicas 2
# One replica: a host-mode port can be bound by one task per node.
service c --replicas 1 --publish "mode=host,published=$SMOKE_PORT,target=80"

# running_tasks SERVICE: the service's tasks that should run, as the API returns them.
running_tasks() {
    local filters
    filters=$(jq -cn --arg s "$1" '{service: [$s], "desired-state": ["running"]}')
    docker_api /tasks -G --data-urlencode "filters=$filters"
}

# wait_running SERVICE COUNT
wait_running() {
    local n=0
    for ((i = 0; i < SMOKE_WAIT; i++)); do
        n=$(running_tasks "$1" | jq '[.[] | select(.Status.State == "running")] | length')
        ((n == $2)) && return 0
        sleep 1
    done
    docker service ps --no-trunc "$1" >&2 || true
    die "$1: $n of $2 tasks running after ${SMOKE_WAIT}s"
}
for s in a:2 b:2 c:1; do
    wait_running "$P-${s%:*}" "${s#*:}"
done
log "all tasks running"
docker service ls --filter "name=$P" >&2
docker service ps --filter desired-state=running "$P-a" "$P-b" "$P-c" >&2

for s in a b c; do
    vips=$(docker service inspect --format '{{json .Endpoint.VirtualIPs}}' "$P-$s")
    log "$P-$s VirtualIPs: $vips"
done

# Task addresses on our network, one "task-id address" line per task.
task_addrs() {
    running_tasks "$1" | jq -r --arg net "$net" '.[] | select(.Status.State == "running")
        | .ID as $id | .NetworksAttachments[]? | select(.Network.Spec.Name == $net)
        | .Addresses[] | "\($id[0:12]) \(.)"'
}
for s in a b c; do
    addrs=$(task_addrs "$P-$s")
    want=2
    [[ $s == c ]] && want=1
    [[ $(wc -l <<<"$addrs") -eq $want && -n $addrs ]] ||
        die "$P-$s: expected $want task addresses on $net, got: $addrs"
    while read -r id addr; do
        cidr_within "$addr" "$ESC_POOL" || die "task $id address $addr is outside $ESC_POOL"
        log "$P-$s task $id on $net: $addr"
    done <<<"$addrs"
done

# Host-mode publishing: the only way in from the host, on loopback.
body=
for ((i = 0; i < 30; i++)); do
    body=$(curl -fsS --max-time 5 "http://127.0.0.1:$SMOKE_PORT/smoke?from=host" 2>/dev/null) && break
    body=
    sleep 1
done
[[ -n $body ]] || die "no answer on 127.0.0.1:$SMOKE_PORT"
printf '%s\n' "$body" | sed 's/^/    /' >&2
grep -qx "Name: $P-c" <<<"$body" || die "answer does not come from $P-c"
grep -qx "Env: SMOKE_SERVICE=c" <<<"$body" || die "service env did not reach the container"
grep -qx "GET /smoke?from=host HTTP/1.1" <<<"$body" || die "request line not echoed"
# whoami reads its interface addresses from /proc inside the container; the overlay one
# must be the address the API reports for the task.
c_ip=$(task_addrs "$P-c" | awk '{print $2}')
grep -qx "IP: ${c_ip%/*}" <<<"$body" || die "whoami does not list its overlay address ${c_ip%/*}"
log "swarm smoke OK"
