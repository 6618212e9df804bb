#!/usr/bin/env bash
# Makes this machine a single-node swarm manager whose address pool is $ESC_POOL
# (10.201.0.0/16), then blackholes that pool on the host.
#
# The host has no route to overlay task IPs: a packet to one would leave through the
# default gateway. Pinning the pool and blackholing it makes such a mistake fail locally
# instead. A swarm made with another pool (or left half-joined) is left and re-created,
# which removes its services. Idempotent.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/common.sh
source "$here/common.sh"

"$here/docker-setup.sh"
need ip iproute2

# Prints why the current swarm is unusable, or nothing if it is fine.
swarm_problem() {
    local state control pools subnets s
    state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    case $state in
    inactive) echo "not in a swarm"; return ;;
    active) ;;
    *) echo "node state is '$state'"; return ;;
    esac
    control=$(docker info --format '{{.Swarm.ControlAvailable}}')
    [[ $control == true ]] || { echo "node is not a manager"; return; }
    pools=$(docker info --format '{{range .Swarm.Cluster.DefaultAddrPool}}{{.}} {{end}}')
    [[ ${pools% } == "$ESC_POOL" ]] || { echo "default address pool is '${pools% }'"; return; }
    # Older swarms can keep an ingress network from before the pool was set.
    if docker network inspect ingress >/dev/null 2>&1; then
        subnets=$(docker network inspect ingress --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}')
        for s in $subnets; do
            cidr_within "$s" "$ESC_POOL" || { echo "ingress subnet $s is outside $ESC_POOL"; return; }
        done
    fi
}

problem=$(swarm_problem)
if [[ -n $problem ]]; then
    log "swarm needs (re)creating: $problem"
    if [[ $problem != "not in a swarm" ]]; then
        docker swarm leave --force >/dev/null
    fi
    # Listening on loopback only keeps the swarm control port off the network.
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 \
        --default-addr-pool "$ESC_POOL" >/dev/null
    problem=$(swarm_problem)
    [[ -z $problem ]] || die "swarm still unusable after init: $problem"
    log "swarm initialised with pool $ESC_POOL"
else
    log "swarm already a manager with pool $ESC_POOL"
fi

for ((i = 0; i < 30; i++)); do
    [[ $(docker node ls --format '{{.Self}} {{.Status}}' | grep '^true ') == "true Ready" ]] && break
    sleep 1
done
[[ $(docker node ls --format '{{.Self}} {{.Status}}' | grep '^true ') == "true Ready" ]] ||
    die "swarm node not Ready"

ip route replace blackhole "$ESC_POOL"
ip route show "$ESC_POOL" | grep -q '^blackhole' || die "blackhole route for $ESC_POOL missing"
log "host traffic to $ESC_POOL is blackholed"
