#!/usr/bin/env python3
"""Side-by-side load benchmark: escale, Traefik, nginx and HAProxy.

Every proxy is started in turn on the same port, in front of the same
backend (a separate nginx answering `return 200`), with the same CPU
pinning, and loaded by the same wrk / h2load command. escale and Traefik
read the very same dynamic configuration file; nginx and HAProxy get an
equivalent configuration generated from the same route list. A run of the
backend alone gives the ceiling.

Run it through `benches/compare.sh`, which installs the tools, builds
escale and fetches Traefik. Standard library only. Every wait and every
load run is bounded in time; all traffic stays on 127.0.0.1.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

BACKEND_PORT = 18081
BACKEND_H2_PORT = 18082
PROXY_PORT = 18080
HOST_SUFFIX = "bench.test"

# Scenario key -> (description, routes, path, client, extra wrk headers).
SCENARIOS = {
    "a": dict(desc="1 route, keep-alive, 64 connections", routes=1, path="/", client="wrk"),
    "b": dict(desc="10,000 host routes, last one hit", routes=10_000, path="/", client="wrk"),
    "c": dict(desc="100,000 host routes, last one hit", routes=100_000, path="/", client="wrk"),
    "d": dict(desc="64 KiB responses", routes=1, path="/64k", client="wrk"),
    "e": dict(desc="new connection per request", routes=1, path="/", client="wrk", close=True),
    "f": dict(desc="HTTP/2 client (h2c, 8 connections x 8 streams)", routes=1, path="/", client="h2load"),
}
PROXIES = ["backend", "escale", "nginx", "haproxy", "traefik"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc

def children_of(pid):
    """pid and all its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def status_kib(pids, key):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def threads(pids):
    return status_kib(pids, "Threads")


def machine_busy():
    """(busy seconds, total seconds) over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def load1():
    return os.getloadavg()[0]


# ---------------------------------------------------------------- HTTP probe

def probe(host, path="/", port=PROXY_PORT, timeout=1.0):
    """Status code of one GET on a fresh connection, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = s.recv(64)
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") else None
    except (OSError, ValueError):
        return None


def wait_status(host, want, deadline, path="/", port=PROXY_PORT, pause=0.001):
    while time.monotonic() < deadline:
        if probe(host, path, port) == want:
            return True
        time.sleep(pause)
    return False


def h2_probe(h2load, host, port=PROXY_PORT):
    """Status class of one HTTP/2 (prior knowledge) GET, for h2-only listeners."""
    try:
        p = subprocess.run(
            [h2load, "-n1", "-c1", "-H", f":authority: {host}", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in p.stdout.splitlines():
        if line.startswith("status codes:"):
            return 200 if line.split()[2] == "1" else None
    return None


def wait_h2(h2load, host, deadline):
    while time.monotonic() < deadline:
        if h2_probe(h2load, host) == 200:
            return True
        time.sleep(0.05)
    return False


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ---------------------------------------------------------------- configs

def host_of(i):
    return f"h{i}.{HOST_SUFFIX}"


def write_dynamic(path, routes, extra_hosts=(), per_route_services=False):
    """Traefik v3 dynamic file, read by escale and Traefik alike."""
    backend = f"http://127.0.0.1:{BACKEND_PORT}"
    lines = ["http:", "  routers:"]
    names = [(f"r{i}", host_of(i)) for i in range(routes)]
    names += [(f"x{i}", h) for i, h in enumerate(extra_hosts)]
    for name, host in names:
        svc = f"s-{name}" if per_route_services else "app"
        lines += [
            f"    {name}:",
            f"      rule: Host(`{host}`)",
            f"      service: {svc}",
            "      entryPoints: [web]",
        ]
    lines.append("  services:")
    svcs = [f"s-{n}" for n, _ in names] if per_route_services else ["app"]
    for svc in svcs:
        lines += [
            f"    {svc}:",
            "      loadBalancer:",
            "        servers:",
            f"          - url: {backend}",
        ]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def nginx_common(workdir, name):
    return f"""daemon off;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}-error.log warn;
worker_rlimit_nofile 16384;
"""


def nginx_temp_paths(workdir, name):
    t = f"{workdir}/{name}-tmp"
    os.makedirs(t, exist_ok=True)
    return "\n".join(
        f"  {k}_temp_path {t}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


def write_backend_conf(workdir, workers):
    with open(f"{workdir}/64k.bin", "wb") as f:
        f.write(b"x" * 65536)
    conf = nginx_common(workdir, "backend") + f"""worker_processes {workers};
events {{ worker_connections 8000; }}
http {{
  access_log off;
{nginx_temp_paths(workdir, "backend")}
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  sendfile on;
  default_type text/plain;
  server {{
    listen 127.0.0.1:{BACKEND_PORT} backlog=4096;
    listen 127.0.0.1:{BACKEND_H2_PORT} http2 backlog=4096;
    location = /64k {{ alias {workdir}/64k.bin; }}
    location / {{ return 200 "ok\\n"; }}
  }}
}}
"""
    path = f"{workdir}/backend.conf"
    with open(path, "w") as f:
        f.write(conf)
    return path


# Request headers every proxy sends upstream, as Traefik does by default.
NGINX_FORWARDED = """  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Forwarded-Host $http_host;
  proxy_set_header X-Forwarded-Port $server_port;
  proxy_set_header X-Forwarded-Server $hostname;
  proxy_set_header X-Real-IP $remote_addr;"""


def write_nginx_conf(workdir, routes, h2, extra_hosts=()):
    hosts = [host_of(i) for i in range(routes)] + list(extra_hosts)
    # Host routes as a `map`, nginx's way to route many hosts: one server
    # block per host costs nginx about 50 KiB each (547 MiB at 10k hosts).
    entries = "\n".join(f"    {h} app;" for h in hosts)
    listen = f"127.0.0.1:{PROXY_PORT}{' http2' if h2 else ''}"
    conf = nginx_common(workdir, "nginx") + f"""worker_processes auto;
events {{ worker_connections 8000; }}
http {{
  access_log off;
{nginx_temp_paths(workdir, "nginx")}
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  map_hash_max_size 262144;
  map_hash_bucket_size 128;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
{NGINX_FORWARDED}
  map $host $route {{
    default "";
{entries}
  }}
  upstream app {{
    server 127.0.0.1:{BACKEND_PORT};
    keepalive 128;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }}
  server {{
    listen {listen} default_server backlog=4096;
    location / {{
      if ($route = "") {{ return 404; }}
      proxy_pass http://$route;
    }}
  }}
}}
"""
    path = f"{workdir}/nginx.conf"
    with open(path + ".tmp", "w") as f:
        f.write(conf)
    os.replace(path + ".tmp", path)
    return path


def write_haproxy_conf(workdir, routes, h2, extra_hosts=()):
    hosts = [host_of(i) for i in range(routes)] + list(extra_hosts)
    with open(f"{workdir}/hosts.map.tmp", "w") as f:
        f.write("".join(f"{h} app\n" for h in hosts))
    os.replace(f"{workdir}/hosts.map.tmp", f"{workdir}/hosts.map")
    conf = f"""global
  nbthread 2
  maxconn 8000
  pidfile {workdir}/haproxy.pid

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  http-reuse always
  option forwardfor

frontend web
  bind 127.0.0.1:{PROXY_PORT}{' proto h2' if h2 else ''}
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Forwarded-Port %[dst_port]
  http-request set-header X-Real-IP %[src]
  use_backend %[req.hdr(host),field(1,:),lower,map({workdir}/hosts.map,nomatch)]

backend app
  server s1 127.0.0.1:{BACKEND_PORT}

backend nomatch
  http-request return status 404
"""
    path = f"{workdir}/haproxy.cfg"
    with open(path, "w") as f:
        f.write(conf)
    return path


# ---------------------------------------------------------------- processes

class Proc:
    def __init__(self, name, argv, cpus, logpath, env=None):
        self.name = name
        cmd = ["taskset", "-c", cpus] + argv
        self.log = open(logpath, "ab")
        self.p = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.p.pid

    def pids(self):
        return children_of(self.p.pid)

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, grace=10):
        if self.alive():
            # Own session: signal our process group only (nginx workers, ...).
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()


def proxy_argv(kind, tools, workdir, dyn, routes, h2):
    common_traefik = [
        f"--entrypoints.web.address=127.0.0.1:{PROXY_PORT}",
        f"--providers.file.filename={dyn}",
        "--providers.file.watch=true",
        "--log.level=ERROR",
    ]
    if kind == "escale":
        return [tools["escale"]] + common_traefik, None
    if kind in tools.get("variants", {}):
        return [tools["variants"][kind]] + common_traefik, None
    if kind == "traefik":
        return [
            tools["traefik"],
            *common_traefik,
            "--global.checknewversion=false",
            "--global.sendanonymoususage=false",
        ], None
    if kind == "nginx":
        conf = write_nginx_conf(workdir, routes, h2)
        return [tools["nginx"], "-p", workdir, "-c", conf, "-e", f"{workdir}/nginx-error.log"], None
    if kind == "haproxy":
        conf = write_haproxy_conf(workdir, routes, h2)
        return [tools["haproxy"], "-W", "-db", "-f", conf], None
    raise ValueError(kind)


# ---------------------------------------------------------------- load

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"errors\":%d,\"non2xx\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"bytes\":%d}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99), latency.max, summary.bytes))
end
"""


def run_wrk(tools, cpus, threads_, conns, secs, port, host, path, close):
    argv = [
        "taskset", "-c", cpus, tools["wrk"], f"-t{threads_}", f"-c{conns}", f"-d{secs}s",
        "--timeout", "5s", "-s", tools["wrk_lua"], "-H", f"Host: {host}",
    ]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, ru = os.wait4(p.pid, 0)
    out = p.stdout.read().decode(errors="replace")
    p.stdout.close()
    p.returncode = status
    elapsed = time.monotonic() - t0
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            return dict(
                requests=r["requests"],
                seconds=r["duration_us"] / 1e6,
                errors=r["errors"],
                non2xx=r["non2xx"],
                p50_ms=r["p50_us"] / 1000,
                p99_ms=r["p99_us"] / 1000,
                max_ms=r["max_us"] / 1000,
                client_cpu=ru.ru_utime + ru.ru_stime,
                wall=elapsed,
            )
    raise RuntimeError(f"wrk gave no result: {out[-500:]}")


def percentile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def run_h2load(tools, cpus, threads_, secs, port, host, path, workdir, warmup=0):
    logf = f"{workdir}/h2load.log"
    if os.path.exists(logf):
        os.unlink(logf)
    argv = [
        "taskset", "-c", cpus, tools["h2load"], f"-t{threads_}", "-c8", "-m8",
        f"-D{secs}", f"--warm-up-time={max(warmup, 1)}", f"--log-file={logf}",
        "-H", f":authority: {host}", f"http://127.0.0.1:{port}{path}",
    ]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, ru = os.wait4(p.pid, 0)
    out = p.stdout.read().decode(errors="replace")
    p.stdout.close()
    elapsed = time.monotonic() - t0
    lat, ok, bad = [], 0, 0
    try:
        with open(logf) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) < 3:
                    continue
                code, dur_us = int(parts[1]), int(parts[2])
                lat.append(dur_us)
                if 200 <= code < 300:
                    ok += 1
                else:
                    bad += 1
    except OSError:
        pass
    if not lat:
        raise RuntimeError(f"h2load gave no result: {out[-500:]}")
    lat.sort()
    return dict(
        requests=len(lat),
        seconds=float(secs),
        errors=0,
        non2xx=bad,
        p50_ms=percentile(lat, 50) / 1000,
        p99_ms=percentile(lat, 99) / 1000,
        max_ms=lat[-1] / 1000,
        client_cpu=ru.ru_utime + ru.ru_stime,
        wall=elapsed,
    )


# ---------------------------------------------------------------- harness

class Harness:
    def __init__(self, args, tools):
        self.args = args
        self.tools = tools
        self.workdir = args.workdir
        os.makedirs(self.workdir, exist_ok=True)
        if args.layout == "split":
            self.proxy_cpus, self.load_cpus, self.load_threads = "1", "0", 1
        else:
            self.proxy_cpus, self.load_cpus, self.load_threads = "0,1", "0,1", 2
        self.backend = None
        self.results = []

    def dyn_path(self, name):
        """The dynamic file, alone in its directory: file providers watch the
        directory, and logs written next to it would trigger reloads."""
        d = f"{self.workdir}/{name}.d"
        os.makedirs(d, exist_ok=True)
        return f"{d}/{name}"

    def start_backend(self):
        workers = len(self.load_cpus.split(","))
        conf = write_backend_conf(self.workdir, workers)
        if not port_free(BACKEND_PORT) or not port_free(BACKEND_H2_PORT):
            raise SystemExit(f"port {BACKEND_PORT} or {BACKEND_H2_PORT} is in use")
        self.backend = Proc(
            "backend",
            [self.tools["nginx"], "-p", self.workdir, "-c", conf, "-e", f"{self.workdir}/backend-error.log"],
            self.load_cpus,
            f"{self.workdir}/backend.log",
        )
        if not wait_status("x", 200, time.monotonic() + 10, port=BACKEND_PORT, pause=0.05):
            raise SystemExit("backend did not start")

    def quiet(self):
        """Waits (bounded) until the machine is idle enough to measure."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            b0, t0 = machine_busy()
            time.sleep(1)
            b1, t1 = machine_busy()
            busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0
            if busy < self.args.quiet_busy or time.monotonic() > deadline:
                return busy

    def start_proxy(self, kind, routes, h2, dyn):
        if not port_free(PROXY_PORT):
            raise SystemExit(f"port {PROXY_PORT} is in use")
        argv, env = proxy_argv(kind, self.tools, self.workdir, dyn, routes, h2)
        return Proc(kind, argv, self.proxy_cpus, f"{self.workdir}/{kind}.log", env)

    def one_run(self, key, sc, kind, rep, dyn):
        routes, path = sc["routes"], sc["path"]
        h2 = sc["client"] == "h2load"
        target_host = host_of(routes - 1)
        proc = None
        port = PROXY_PORT
        row = dict(scenario=key, proxy=kind, rep=rep, routes=routes)
        pre_busy = self.quiet()
        row["pre_busy"] = round(pre_busy, 3)
        try:
            if kind == "backend":
                port = BACKEND_H2_PORT if h2 else BACKEND_PORT
                pids = self.backend.pids
            else:
                proc = self.start_proxy(kind, routes, h2, dyn)
                limit = self.args.start_timeout
                if h2:
                    ok = wait_h2(self.tools["h2load"], target_host, time.monotonic() + limit)
                else:
                    ok = wait_status(target_host, 200, time.monotonic() + limit, pause=0.01)
                if not ok:
                    row["error"] = f"not ready within {limit}s" if proc.alive() else "exited"
                    log(f"  {kind}: {row['error']}")
                    return row
                row["ready_s"] = round(time.monotonic() - proc.started, 3)
                time.sleep(1)
                pids = proc.pids
                row["idle_rss_kib"] = status_kib(pids(), "VmRSS")
            secs = self.args.duration
            load = lambda d: (
                run_h2load(self.tools, self.load_cpus, self.load_threads, d, port, target_host, path, self.workdir)
                if h2
                else run_wrk(self.tools, self.load_cpus, self.load_threads, 64, d, port, target_host, path, sc.get("close", False))
            )
            if not h2:
                load(self.args.warmup)  # h2load warms up by itself
            bk0 = cpu_seconds(self.backend.pids())
            px0 = cpu_seconds(pids())
            m0, tot0 = machine_busy()
            r = load(secs)
            m1, tot1 = machine_busy()
            px1 = cpu_seconds(pids())
            bk1 = cpu_seconds(self.backend.pids())
            all_pids = pids()
            row.update(r)
            if r["non2xx"] + r["errors"] > 0.001 * max(r["requests"], 1):
                row["error"] = f"{r['non2xx']} non-2xx and {r['errors']} socket errors in {r['requests']} requests"
                log(f"  {kind}: {row['error']}")
                return row
            row["rps"] = r["requests"] / r["seconds"] if r["seconds"] else 0
            proxy_cpu = px1 - px0 if kind != "backend" else 0.0
            backend_cpu = bk1 - bk0
            row["proxy_cpu_s"] = proxy_cpu
            row["cpu_per_100k"] = (proxy_cpu if kind != "backend" else backend_cpu) / max(r["requests"], 1) * 1e5
            # CPU used by anything but us during the measurement (other jobs).
            ours = proxy_cpu + backend_cpu + r["client_cpu"]
            span = tot1 - tot0
            row["noise"] = round(max(0.0, (m1 - m0) - ours) / span, 3) if span > 0 else 0
            row["peak_rss_kib"] = status_kib(all_pids, "VmHWM")
            row["rss_kib"] = status_kib(all_pids, "VmRSS")
            row["threads"] = threads(all_pids)
            log(
                f"  {key} {kind:8s} rep{rep}: {row['rps']:9.0f} req/s  p50 {row['p50_ms']:.2f}  "
                f"p99 {row['p99_ms']:.2f}  max {row['max_ms']:.1f} ms  "
                f"peak {row['peak_rss_kib'] / 1024:.1f} MiB  cpu/100k {row['cpu_per_100k']:.2f}s  "
                f"err {row['errors']}/{row['non2xx']}  noise {row['noise']}"
            )
            return row
        finally:
            if proc is not None:
                proc.stop()
                deadline = time.monotonic() + 10
                while not port_free(PROXY_PORT) and time.monotonic() < deadline:
                    time.sleep(0.1)

    def scenario(self, key):
        sc = SCENARIOS[key]
        dyn = self.dyn_path("dyn.yml")
        write_dynamic(dyn, sc["routes"])
        log(f"scenario {key}: {sc['desc']}")
        kinds = [k for k in self.args.proxies if not (key == "c" and k in self.args.skip_c)]
        for rep in range(1, self.args.runs + 1):
            # Interleave proxies within a repetition, so slow drift hits all.
            for kind in kinds:
                try:
                    row = self.one_run(key, sc, kind, rep, dyn)
                except RuntimeError as e:
                    row = dict(scenario=key, proxy=kind, rep=rep, error=str(e)[:200])
                    log(f"  {kind}: {e}")
                self.results.append(row)
                self.save()

    def idle_memory(self):
        """Idle RSS after loading the config, without load (target 4)."""
        cases = [("1 route", 1, False), ("10k routes", 10_000, False), ("10k routes + 10k services", 10_000, True)]
        out = []
        dyn = self.dyn_path("dyn-mem.yml")
        for label, routes, per_route in cases:
            write_dynamic(dyn, routes, per_route_services=per_route)
            for kind in [k for k in self.args.proxies if k != "backend"]:
                if per_route and kind in ("nginx", "haproxy"):
                    continue
                vals = []
                for _ in range(self.args.runs):
                    proc = self.start_proxy(kind, routes, False, dyn)
                    try:
                        if not wait_status(host_of(routes - 1), 200, time.monotonic() + self.args.start_timeout, pause=0.01):
                            break
                        ready = time.monotonic() - proc.started
                        time.sleep(2)
                        vals.append((status_kib(proc.pids(), "VmRSS"), ready))
                    finally:
                        proc.stop()
                        deadline = time.monotonic() + 10
                        while not port_free(PROXY_PORT) and time.monotonic() < deadline:
                            time.sleep(0.1)
                if vals:
                    rss = statistics.median(v[0] for v in vals)
                    ready = statistics.median(v[1] for v in vals)
                    out.append(dict(case=label, proxy=kind, idle_rss_kib=rss, ready_s=round(ready, 3)))
                    log(f"  memory {label:28s} {kind:8s} {rss / 1024:7.1f} MiB  ready {ready:.2f}s")
        self.memory = out
        self.save()

    def reload_latency(self):
        """Time from writing a changed config with 10k routes to the new route answering (target 6)."""
        routes = 10_000
        out = []
        for kind in [k for k in self.args.proxies if k != "backend"]:
            dyn = self.dyn_path("dyn-reload.yml")
            write_dynamic(dyn, routes)
            proc = self.start_proxy(kind, routes, False, dyn)
            times = []
            idle_cpu = 0.0
            try:
                if not wait_status(host_of(routes - 1), 200, time.monotonic() + self.args.start_timeout, pause=0.01):
                    log(f"  reload {kind}: not ready")
                    continue
                time.sleep(1)
                for i in range(self.args.runs):
                    new = f"new{i}.{HOST_SUFFIX}"
                    extra = [f"new{j}.{HOST_SUFFIX}" for j in range(i + 1)]
                    # Write the changed configuration, then (for the peers
                    # that need one) ask for a reload, as an operator would.
                    t0 = time.monotonic()
                    if kind in ("escale", "traefik") or kind in self.tools["variants"]:
                        write_dynamic(dyn, routes, extra_hosts=extra)
                    elif kind == "nginx":
                        write_nginx_conf(self.workdir, routes, False, extra_hosts=extra)
                        os.kill(proc.pid, signal.SIGHUP)
                    elif kind == "haproxy":
                        write_haproxy_conf(self.workdir, routes, False, extra_hosts=extra)
                        os.kill(proc.pid, signal.SIGUSR2)
                    ok = wait_status(new, 200, t0 + 30, pause=0.0005)
                    dt = time.monotonic() - t0
                    if ok:
                        times.append(dt * 1000)
                    log(f"  reload {kind:8s} #{i}: {'%.1f ms' % (dt * 1000) if ok else 'timed out'}")
                    time.sleep(2)
                # A proxy should be idle again once a change is applied.
                c0 = cpu_seconds(proc.pids())
                time.sleep(3)
                idle_cpu = (cpu_seconds(proc.pids()) - c0) / 3
                log(f"  reload {kind:8s} CPU while idle after the changes: {idle_cpu:.2f} cores")
            finally:
                proc.stop()
                deadline = time.monotonic() + 10
                while not port_free(PROXY_PORT) and time.monotonic() < deadline:
                    time.sleep(0.1)
            if times:
                out.append(
                    dict(
                        proxy=kind,
                        median_ms=round(statistics.median(times), 1),
                        all_ms=[round(t, 1) for t in times],
                        idle_cpu_after=round(idle_cpu, 3),
                    )
                )
        self.reload = out
        self.save()

    def save(self):
        data = dict(
            meta=self.meta(),
            runs=self.results,
            memory=getattr(self, "memory", []),
            reload=getattr(self, "reload", []),
        )
        with open(f"{self.args.out}/results.json", "w") as f:
            json.dump(data, f, indent=1)

    def meta(self):
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
        except OSError:
            pass
        return dict(
            date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            cpu=cpu,
            cpus=os.cpu_count(),
            kernel=platform.release(),
            layout=self.args.layout,
            proxy_cpus=self.proxy_cpus,
            load_cpus=self.load_cpus,
            duration=self.args.duration,
            runs=self.args.runs,
            versions=self.tools.get("versions", {}),
            command=" ".join(sys.argv),
        )


# ---------------------------------------------------------------- report

def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


def summarize(data):
    runs = [r for r in data["runs"] if "rps" in r]
    table = {}
    for r in runs:
        table.setdefault((r["scenario"], r["proxy"]), []).append(r)
    summary = {}
    for (sc, px), rows in table.items():
        summary[(sc, px)] = {k: med(rows, k) for k in ("rps", "p50_ms", "p99_ms", "max_ms", "peak_rss_kib", "cpu_per_100k", "noise", "ready_s")}
        summary[(sc, px)]["n"] = len(rows)
        summary[(sc, px)]["errors"] = sum(r["errors"] + r["non2xx"] for r in rows)
    errors = [r for r in data["runs"] if "error" in r]
    return summary, errors


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def report(data):
    summary, errors = summarize(data)
    meta = data["meta"]
    lines = []
    lines.append(f"Date: {meta['date']}  CPU: {meta['cpu']} ({meta['cpus']} cores)  kernel {meta['kernel']}")
    lines.append(
        f"Layout: {meta['layout']} (proxy on CPU {meta['proxy_cpus']}, wrk/h2load + backend on CPU {meta['load_cpus']}); "
        f"{meta['duration']} s per run, median of {meta['runs']} runs"
    )
    for k, v in meta.get("versions", {}).items():
        lines.append(f"  {k}: {v}")
    lines.append("")
    lines.append("| scenario | proxy | req/s | p50 ms | p99 ms | max ms | peak RSS MiB | CPU s / 100k req | errors |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    # Variants (--variant) come after the standard proxies, in run order.
    order = list(PROXIES) + [r["proxy"] for r in data["runs"] if r["proxy"] not in PROXIES]
    order = list(dict.fromkeys(order))
    for key, sc in SCENARIOS.items():
        for px in order:
            s = summary.get((key, px))
            if not s:
                continue
            lines.append(
                f"| {key}. {sc['desc']} | {px if px != 'backend' else 'backend alone (ceiling)'} | {fmt(s['rps'], ',.0f')} | "
                f"{fmt(s['p50_ms'], '.2f')} | {fmt(s['p99_ms'], '.2f')} | {fmt(s['max_ms'], '.1f')} | "
                f"{fmt(s['peak_rss_kib'] and s['peak_rss_kib'] / 1024, '.1f')} | {fmt(s['cpu_per_100k'], '.2f')} | {s['errors']} |"
            )
    if data.get("memory"):
        lines.append("")
        lines.append("| idle memory | proxy | RSS MiB | ready after s |")
        lines.append("|---|---|---:|---:|")
        for m in data["memory"]:
            lines.append(f"| {m['case']} | {m['proxy']} | {m['idle_rss_kib'] / 1024:.1f} | {m['ready_s']:.2f} |")
    if data.get("reload"):
        lines.append("")
        lines.append("| config change with 10k routes, write to new route answering | proxy | median ms | runs ms | CPU when idle afterwards |")
        lines.append("|---|---|---:|---|---:|")
        for m in data["reload"]:
            how = "file watch" if m["proxy"] not in ("nginx", "haproxy") else ("SIGHUP" if m["proxy"] == "nginx" else "SIGUSR2 (-W)")
            idle = m.get("idle_cpu_after")
            idle = "-" if idle is None else f"{idle:.2f} cores"
            lines.append(f"| {how} | {m['proxy']} | {m['median_ms']} | {', '.join(map(str, m['all_ms']))} | {idle} |")
    lines.append("")
    lines += targets(summary, data)
    if errors:
        lines.append("")
        lines.append("Failed runs: " + "; ".join(f"{e['scenario']}/{e['proxy']}#{e['rep']}: {e['error']}" for e in errors))
    return "\n".join(lines)


def paired_ratio(data, scenario, a, b):
    """The median over repetitions of a's req/s over b's in the same one.
    Proxies of one repetition run back to back, so a slow spell of the
    host, which can move a median of 3 by 10%, mostly hits both."""
    by_rep = {}
    for r in data["runs"]:
        if r.get("scenario") == scenario and "rps" in r and r["proxy"] in (a, b):
            by_rep.setdefault(r["rep"], {})[r["proxy"]] = r["rps"]
    ratios = [v[a] / v[b] for v in by_rep.values() if v.get(a) and v.get(b)]
    return statistics.median(ratios) if ratios else None


def variants_of(data):
    return list(dict.fromkeys(r["proxy"] for r in data["runs"] if r["proxy"] not in PROXIES))


def targets(summary, data):
    out = ["Targets (issue 7):"]

    def g(sc, px, k="rps"):
        s = summary.get((sc, px))
        return s[k] if s else None

    def ratio(a, b):
        return a / b if a and b else None

    def line(ok, text):
        mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        out.append(f"- [{mark}] {text}")

    e_a = g("a", "escale")
    peers = [v for v in (g("a", "nginx"), g("a", "haproxy")) if v]
    best = max(peers) if peers else None
    r1 = ratio(e_a, best)
    r1t = ratio(e_a, g("a", "traefik"))
    # Passed only if both the ratio of medians and the paired ratio pass:
    # one lucky median must not decide.
    paired = {px: paired_ratio(data, "a", "escale", px) for px in ("nginx", "haproxy", "traefik")}
    peers_paired = [paired[px] for px in ("nginx", "haproxy") if paired[px] is not None]
    r1p = min(peers_paired) if peers_paired else None
    r1tp = paired["traefik"]
    line(None if r1 is None else r1 >= 1.1 and (r1p is None or r1p >= 1.1),
         f"1. a req/s vs best of nginx/HAProxy: {fmt(r1, '.2f')}x, paired {fmt(r1p, '.2f')}x (need >= 1.10)")
    line(None if r1t is None else r1t >= 2.5 and (r1tp is None or r1tp >= 2.5),
         f"1. a req/s vs Traefik: {fmt(r1t, '.2f')}x, paired {fmt(r1tp, '.2f')}x (need >= 2.5)")
    pairs = [(f"escale/{px}", r) for px, r in paired.items()]
    pairs += [(f"{px}/escale", paired_ratio(data, "a", px, "escale")) for px in variants_of(data)]
    pairs = [(name, r) for name, r in pairs if r is not None]
    if pairs:
        out.append(
            "  (paired: the median over repetitions of the ratio within each one, "
            + ", ".join(f"{name} {r:.3f}" for name, r in pairs)
            + ")"
        )
    p99e, p99n = g("a", "escale", "p99_ms"), g("a", "nginx", "p99_ms")
    line(None if not (p99e and p99n) else p99e <= p99n, f"2. a p99: escale {fmt(p99e, '.2f')} ms vs nginx {fmt(p99n, '.2f')} ms")
    for sc, need in (("b", 0.95), ("c", 0.90)):
        for px in ("escale", "nginx", "haproxy", "traefik"):
            r = ratio(g(sc, px), g("a", px))
            if px == "escale":
                line(None if r is None else r >= need, f"3. {sc}/a for escale: {fmt(r, '.3f')} (need >= {need})")
            elif r is not None:
                out.append(f"  ({sc}/a for {px}: {r:.3f})")
        # CPU per request does not depend on what else the machine runs.
        cpu = {px: ratio(g("a", px, "cpu_per_100k"), g(sc, px, "cpu_per_100k")) for px in ("escale", "nginx", "haproxy", "traefik")}
        out.append(
            f"  (same, from CPU per request, a/{sc}: "
            + ", ".join(f"{px} {v:.3f}" for px, v in cpu.items() if v is not None)
            + ")"
        )
    mem = {(m["case"], m["proxy"]): m["idle_rss_kib"] / 1024 for m in data.get("memory", [])}
    m1 = mem.get(("1 route", "escale"))
    line(None if m1 is None else m1 < 15, f"4. idle RSS, 1 route: {fmt(m1, '.1f')} MiB (need < 15)")
    for case in ("10k routes", "10k routes + 10k services"):
        me, mt = mem.get((case, "escale")), mem.get((case, "traefik"))
        line(None if not (me and mt) else me < mt / 3, f"4. idle RSS, {case}: escale {fmt(me, '.1f')} MiB vs Traefik {fmt(mt, '.1f')} MiB (need < 1/3)")
    for sc in ("d", "e"):
        e = g(sc, "escale")
        peers = [v for v in (g(sc, "nginx"), g(sc, "haproxy")) if v]
        best = max(peers) if peers else None
        t = g(sc, "traefik")
        r = ratio(e, best)
        ok = None if (e is None or best is None or t is None) else (e > t and r >= 0.9)
        line(ok, f"5. {sc}: escale/best(nginx,HAProxy) {fmt(r, '.2f')}x, escale/Traefik {fmt(ratio(e, t), '.2f')}x (need >= 0.90 and > 1)")
    rl = {m["proxy"]: m["median_ms"] for m in data.get("reload", [])}
    line(None if "escale" not in rl else rl["escale"] < 100, f"6. change applied with 10k routes: escale {rl.get('escale', '-')} ms (need < 100); Traefik {rl.get('traefik', '-')} ms")
    return out


# ---------------------------------------------------------------- main

def version_of(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--escale", required=True)
    ap.add_argument("--traefik", required=True)
    ap.add_argument("--scenarios", default="a,b,c,d,e,f")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=BINARY",
        help="another escale build to run like escale (A/B of a change); repeatable",
    )
    ap.add_argument("--skip-c", default="", help="proxies to leave out of scenario c")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--layout", choices=["split", "shared"], default="split")
    ap.add_argument("--start-timeout", type=float, default=120)
    ap.add_argument("--quiet-busy", type=float, default=0.10, help="max machine busy share before a run")
    ap.add_argument("--quiet-wait", type=float, default=60, help="max seconds to wait for it")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-reload", action="store_true")
    ap.add_argument("--out", default="target/bench-compare")
    ap.add_argument("--report-only", action="store_true", help="print the table from --out/results.json")
    args = ap.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.proxies = [p for p in args.proxies.split(",") if p]
    args.skip_c = [p for p in args.skip_c.split(",") if p]
    variants = dict(v.split("=", 1) for v in args.variant)
    for name in variants:
        if name not in args.proxies:
            args.proxies.append(name)
        if name not in PROXIES:
            PROXIES.append(name)
    os.makedirs(args.out, exist_ok=True)
    if args.report_only:
        with open(f"{args.out}/results.json") as f:
            print(report(json.load(f)))
        return
    args.workdir = tempfile.mkdtemp(prefix="work-", dir=os.path.abspath(args.out))
    # nginx workers run as nobody and must read the 64 KiB file.
    os.chmod(args.workdir, 0o755)

    tools = dict(
        escale=os.path.abspath(args.escale),
        traefik=os.path.abspath(args.traefik),
        nginx=shutil.which("nginx") or "/usr/sbin/nginx",
        haproxy=shutil.which("haproxy") or "/usr/sbin/haproxy",
        wrk=shutil.which("wrk"),
        h2load=shutil.which("h2load"),
    )
    tools["variants"] = {k: os.path.abspath(v) for k, v in variants.items()}
    tools["wrk_lua"] = f"{args.workdir}/report.lua"
    with open(tools["wrk_lua"], "w") as f:
        f.write(WRK_LUA)
    tools["versions"] = {
        "escale": version_of([tools["escale"], "version"]),
        "traefik": version_of([tools["traefik"], "version"]).replace("Version:", "").strip(),
        "nginx": version_of([tools["nginx"], "-v"]),
        "haproxy": version_of([tools["haproxy"], "-v"]),
        "wrk": version_of([tools["wrk"], "-v"]),
        "h2load": version_of([tools["h2load"], "--version"]),
    }
    # A bounded run may be stopped from outside: clean up as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    h = Harness(args, tools)
    h.start_backend()
    try:
        for key in args.scenarios:
            h.scenario(key)
        if not args.no_memory:
            log("idle memory")
            h.idle_memory()
        if not args.no_reload:
            log("reload latency")
            h.reload_latency()
    finally:
        h.backend.stop()
        h.save()
    with open(f"{args.out}/results.json") as f:
        text = report(json.load(f))
    with open(f"{args.out}/report.md", "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
