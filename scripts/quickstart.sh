#!/usr/bin/env bash
# Quickstart without Docker: builds escale and the whoami backend, starts
# whoami on 127.0.0.1:8081 and escale on 127.0.0.1:8000 with
# examples/quickstart/dynamic.yml, shows a real answer proxied through
# escale, then keeps the proxy running until Ctrl-C.
#
# QUICKSTART_ONESHOT=1 stops after showing the answer (used by the tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
web_port=${QUICKSTART_PORT:-8000}
whoami_port=${QUICKSTART_WHOAMI_PORT:-8081}

cargo build --release --quiet --bin escale --example whoami
bin=target/release

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin/examples/whoami" --port "$whoami_port" --bind 127.0.0.1 --name quickstart >/dev/null &
pids+=($!)
dynamic="$root/examples/quickstart/dynamic.yml"
if [[ $whoami_port != 8081 ]]; then
    dynamic=$(mktemp --suffix=.yml)
    sed "s/127.0.0.1:8081/127.0.0.1:$whoami_port/" "$root/examples/quickstart/dynamic.yml" >"$dynamic"
fi
"$bin/escale" \
    --entrypoints.web.address="127.0.0.1:$web_port" \
    --providers.file.filename="$dynamic" \
    --providers.file.watch=true &
pids+=($!)

url="http://127.0.0.1:$web_port/api/hello"
for _ in $(seq 1 100); do
    if curl -fsS -H 'Host: whoami.localhost' "$url" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
echo "== curl -H 'Host: whoami.localhost' $url"
curl -fsS -H 'Host: whoami.localhost' "$url"
echo "== escale is serving on 127.0.0.1:$web_port (Ctrl-C to stop)"
if [[ ${QUICKSTART_ONESHOT:-0} == 1 ]]; then exit 0; fi
wait "${pids[1]}"
