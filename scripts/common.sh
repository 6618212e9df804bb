# Shared helpers for the scripts in this directory. Source it; do not run it.
# shellcheck shell=bash

# The swarm address pool escale's tests assume; the host blackholes it (swarm-setup.sh).
ESC_POOL=${ESC_POOL:-10.201.0.0/16}
# Engine 20.10 speaks API 1.41; raw API calls pin it so a newer client changes nothing.
ESC_DOCKER_API=${ESC_DOCKER_API:-v1.41}
ESC_DOCKER_SOCK=${ESC_DOCKER_SOCK:-/var/run/docker.sock}

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# /usr/bin/docker is Debian's client, the same version as the engine. Another client
# (e.g. /usr/local/bin/docker 28.x) also works by downgrading the API, so it is the fallback.
docker_bin() {
    if [[ -n ${DOCKER:-} ]]; then
        printf '%s\n' "$DOCKER"
    elif [[ -x /usr/bin/docker ]]; then
        printf '%s\n' /usr/bin/docker
    else
        command -v docker || true
    fi
}

docker() {
    local bin
    bin=$(docker_bin)
    [[ -n $bin ]] || die "no docker client installed (run scripts/docker-setup.sh)"
    "$bin" "$@"
}

# ip_to_int A.B.C.D
ip_to_int() {
    local IFS=.
    # shellcheck disable=SC2086
    set -- $1
    echo $((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))
}

# cidr_within SUBNET POOL: true if every address of SUBNET lies inside POOL.
cidr_within() {
    local net=${1%/*} len=${1#*/} pool=${2%/*} plen=${2#*/}
    [[ $1 == */* && $2 == */* ]] || return 1
    ((len >= plen)) || return 1
    local mask=$(((0xffffffff << (32 - plen)) & 0xffffffff))
    (($(($(ip_to_int "$net") & mask)) == $(($(ip_to_int "$pool") & mask))))
}

_ESC_APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    if [[ -z $_ESC_APT_UPDATED ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        _ESC_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -q "$@"
}

# Installs the Debian package $2 unless command $1 exists.
need() {
    command -v "$1" >/dev/null || apt_install "$2"
    command -v "$1" >/dev/null || die "$1 still missing after installing $2"
}

# GET on the Docker API over the unix socket: docker_api PATH [curl args...]
docker_api() {
    local path=$1
    shift
    curl -fsS --unix-socket "$ESC_DOCKER_SOCK" "$@" "http://localhost/$ESC_DOCKER_API$path"
}
