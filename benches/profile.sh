#!/usr/bin/env bash
# Per-request costs of one proxy in scenario a (1 route, keep-alive), numbers
# that do not move with machine noise:
#   - user-space instructions per request (valgrind callgrind), with the top
#     functions by self cost;
#   - syscalls and context switches per request (perf tracepoints, if the
#     kernel allows them);
#   - TCP segments per request, and how many are pure ACKs (nstat).
#
#   benches/profile.sh [escale|nginx|haproxy] [escale-binary]
#   CLOSE=1 benches/profile.sh ...   (scenario e: a new connection per request)
#   ROUTES=100000 benches/profile.sh ... (scenario c: that many host routes,
#                                         the last one hit)
#
# Needs valgrind (and perf for the second part): apt-get install valgrind
# linux-perf (nstat comes with iproute2). Proxy on CPU 1, wrk and the
# backend on CPU 0, 127.0.0.1 only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kind="${1:-escale}"
bin="${2:-$root/target/release/escale}"
routes="${ROUTES:-1}"
work="$(mktemp -d)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root/benches" && python3 -c "
import compare as c
c.write_backend_conf('$work', 1)
c.write_nginx_conf('$work', $routes, False)
c.write_haproxy_conf('$work', $routes, False)
open('$work/haproxy.cfg', 'a').close()
import os; os.makedirs('$work/dyn', exist_ok=True)
c.write_dynamic('$work/dyn/dyn.yml', $routes)
print(c.host_of($routes - 1), file=open('$work/host', 'w'))
")
sed -i 's/worker_processes auto;/worker_processes 1; master_process off;/' "$work/nginx.conf"
sed -i 's/nbthread 2/nbthread 1/' "$work/haproxy.cfg"

taskset -c 0 nginx -p "$work" -c "$work/backend.conf" -e "$work/backend-error.log" &
pids+=($!)

proxy_cmd() {
  case "$kind" in
    escale) echo "$bin --entrypoints.web.address=127.0.0.1:18080 --providers.file.filename=$work/dyn/dyn.yml --log.level=ERROR" ;;
    nginx) echo "nginx -p $work -c $work/nginx.conf -e $work/nginx-error.log" ;;
    haproxy) echo "haproxy -db -f $work/haproxy.cfg" ;;
  esac
}
host="$(cat "$work/host")"
wait_ready() {
  # Under valgrind, loading 100k routes takes about a minute.
  for _ in $(seq 1 $((routes > 1000 ? 3000 : 200))); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" 127.0.0.1:18080/)" == 200 ]] && return 0
    sleep 0.1
  done
  echo "proxy not ready" >&2
  return 1
}
# CLOSE=1: a new connection for every request (scenario e).
close_header=()
[[ -n "${CLOSE:-}" ]] && close_header=(-H 'Connection: close')
load() { taskset -c 0 wrk -t1 -c"$1" -d"$2"s -H "Host: $host" "${close_header[@]}" http://127.0.0.1:18080/; }
requests() { awk '/requests in/{print $1}'; }
# The proxy outside valgrind, on CPU 1, its pid in $px.
start_proxy() {
  # shellcheck disable=SC2046
  taskset -c 1 $(proxy_cmd) >"$work/proxy.log" 2>&1 &
  px=$!
  pids+=("$px")
  wait_ready
}

echo "== $kind: user-space instructions per request (callgrind, 8 connections, 8 s)"
# shellcheck disable=SC2046
taskset -c 1 /usr/bin/valgrind.bin --tool=callgrind --callgrind-out-file="$work/cg.out" \
  --dump-instr=no $(proxy_cmd) >"$work/cg.log" 2>&1 &
vg=$!
pids+=("$vg")
wait_ready
load 8 3 >/dev/null
callgrind_control -z "$vg" >/dev/null
req=$(load 8 8 | requests)
callgrind_control -d "$vg" >/dev/null
sleep 1
kill -INT "$vg" 2>/dev/null || true
sleep 1
kill -KILL "$vg" 2>/dev/null || true
dump="$work/cg.out.1"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "requests: $req   instructions/request: $((total / req))"
# KEEP=file keeps the callgrind dump (callgrind_annotate --inclusive=yes file).
[[ -n "${KEEP:-}" ]] && cp "$dump" "$KEEP" && echo "$req" >"$KEEP.requests"
# awk stops printing rather than `head` closing the pipe: with pipefail, a
# SIGPIPE upstream would end the script before the perf part.
callgrind_annotate --threshold=100 "$dump" 2>/dev/null | grep -v '(100.0%)' |
  grep -E '^\s*[0-9,]+ \(' |
  awk -v r="$req" -v top="${TOP:-20}" 'NR<=top {n=$1; gsub(",","",n); $1=""; $2=""; printf "  %6d  %s\n", n/r, substr($0, 1, 110)}'

if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
  echo "== $kind: syscalls and context switches per request (64 connections, 5 s)"
  start_proxy
  load 64 2 >/dev/null
  all=$(ps -e -o pid=,ppid= | awk -v p="$px" '$1==p||$2==p{print $1}' | paste -sd,)
  perf stat -e raw_syscalls:sys_enter,sched:sched_waking,context-switches,page-faults,task-clock -p "$all" -o "$work/stat.txt" -- sleep 5 &
  ps_pid=$!
  cpu_ticks() { for p in ${all//,/ }; do awk '{print $14, $15}' "/proc/$p/stat"; done |
    awk '{u+=$1; s+=$2} END {print u, s}'; }
  before=$(cpu_ticks)
  req=$(load 64 5 | requests)
  after=$(cpu_ticks)
  wait "$ps_pid" || true
  hz=$(getconf CLK_TCK)
  echo "$before $after" | awk -v r="$req" -v hz="$hz" '{
    printf "  %-28s %8.2f per request\n", "user CPU microseconds", ($3-$1)*1e6/hz/r
    printf "  %-28s %8.2f per request\n", "system CPU microseconds", ($4-$2)*1e6/hz/r }'
  awk -v r="$req" '/raw_syscalls|sched_waking|context-switches|page-faults/ {gsub(",","",$1); printf "  %-28s %8.3f per request\n", $2, $1/r}
    /task-clock/ {gsub(",","",$1); printf "  %-28s %8.2f per request\n", "CPU microseconds", $1*1000/r}' "$work/stat.txt"
fi

# Segments on the wire: what the kernel's work per request follows. nstat
# counts every TCP socket of the machine (all on loopback here: client,
# proxy and backend sides alike), so run it on a quiet machine.
if command -v nstat >/dev/null; then
  echo "== $kind: TCP segments per request (nstat, 64 connections, 5 s)"
  [[ -n "${px:-}" ]] || start_proxy
  load 64 2 >/dev/null
  nstat -n >/dev/null
  req=$(load 64 5 | requests)
  nstat | awk -v r="$req" '$1 ~ /^(TcpInSegs|TcpOutSegs|TcpExtTCPPureAcks|TcpExtDelayedACKs)$/ {
    printf "  %-28s %8.3f per request\n", $1, $2/r }'
fi
