#!/usr/bin/env bash
# Removes the swarm services, containers and networks whose names start with PREFIX.
#
#   scripts/swarm-clean.sh PREFIX [MIN_AGE_SECONDS]
#
# With MIN_AGE_SECONDS, only objects created at least that long ago go: leftovers of
# crashed runs, not the objects of a run still in progress. PREFIX must start with `esc-`
# so that nothing outside escale's test namespace can be touched.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

prefix=${1:-}
min_age=${2:-0}
[[ $prefix == esc-* ]] || die "prefix must start with esc- (got '$prefix')"
[[ $min_age =~ ^[0-9]+$ ]] || die "MIN_AGE_SECONDS must be a number"
now=$(date +%s)

# old_enough JSON_TIMESTAMP
old_enough() {
    local created
    ((min_age == 0)) && return 0
    created=$(date -d "$(tr -d '"' <<<"$1")" +%s 2>/dev/null) || return 1
    ((now - created >= min_age))
}

# Name filters match substrings; the exact prefix test is done here.
services=()
while read -r name; do
    [[ $name == "$prefix"* ]] || continue
    old_enough "$(docker service inspect --format '{{json .CreatedAt}}' "$name")" || continue
    services+=("$name")
done < <(docker service ls --filter "name=$prefix" --format '{{.Name}}')

# Standalone containers only: task containers go with their service.
containers=()
while read -r name task; do
    [[ $name == "$prefix"* && -z $task ]] || continue
    old_enough "$(docker container inspect --format '{{json .Created}}' "$name")" || continue
    containers+=("$name")
done < <(docker container ls -a --filter "name=$prefix" \
    --format '{{.Names}} {{.Label "com.docker.swarm.task.id"}}')

networks=()
while read -r name; do
    [[ $name == "$prefix"* ]] || continue
    old_enough "$(docker network inspect --format '{{json .Created}}' "$name")" || continue
    networks+=("$name")
done < <(docker network ls --filter "name=$prefix" --format '{{.Name}}')

if ((${#services[@]} + ${#containers[@]} + ${#networks[@]} == 0)); then
    exit 0
fi
log "removing ${#services[@]} services, ${#containers[@]} containers, ${#networks[@]} networks with prefix $prefix"

if ((${#services[@]})); then
    docker service rm "${services[@]}" >/dev/null
    # Task containers stop asynchronously (each gets its stop grace period); a network
    # cannot go while they hold endpoints on it.
    for ((i = 0; i < 60; i++)); do
        left=0
        for s in "${services[@]}"; do
            n=$(docker container ls -aq --filter "label=com.docker.swarm.service.name=$s" | wc -l)
            left=$((left + n))
        done
        ((left == 0)) && break
        sleep 1
    done
    ((left == 0)) || log "warning: $left task containers still present"
fi
if ((${#containers[@]})); then
    # One may already be gone (e.g. started with --rm); that is the wanted outcome.
    docker container rm -f "${containers[@]}" >/dev/null 2>&1 || true
fi
for n in "${networks[@]}"; do
    for ((i = 0; i < 30; i++)); do
        docker network rm "$n" >/dev/null 2>&1 && break
        sleep 1
    done
    if docker network inspect "$n" >/dev/null 2>&1; then
        log "warning: network $n could not be removed"
    fi
done
