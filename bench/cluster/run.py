#!/usr/bin/env python3
"""GET /cluster and the exchange behind it, measured on loopback.

1. /cluster latency: three servers listing each other, one client asking one of them
   GET /cluster on a keep-alive connection, sequentially (latency) and with wrk at 16
   connections (throughput), for the server given as --after and, when given, --before (a
   build of the fan-out that asked every peer's /visits on each request). One run, same
   machine, so that the ratio means something.
2. The exchange: N servers (3 and 16) listing each other, with --sync-peers-ms 1000, for
   --seconds: the CPU one round costs a server, from the threads' own CPU time
   (/proc/PID/task/*/stat): the asking side is the thread named visits-exchange and the
   libvisits threads of its replica handles (they inherit its name), the answering side
   the event loop (visits-loop-*) serving the peers' GET /slots; and the bytes one round
   moves (every server asks every other for GET /slots: request, response head and body,
   measured on one exchange). Two loads: quiet (no visits: nothing to write) and busy
   (each server gets a visit every 100 ms, so every round raises every replica, durably;
   the event loop then also serves those visits, so its share is not shown).

    bench/cluster/run.py --after BUILD/adapters/h2o/visits-server [--before OLD_BIN]
                         [--dir DATA_DIR] [--seconds 20] [--out DIR]

Python standard library only; prints Markdown tables (and writes them to --out).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from common import loadavg, machine_lines, sh  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    """n servers on loopback, each listing all (peers=True) or none."""

    def __init__(self, binary, n, base, peers=True, sync_ms=1000, name="pod"):
        self.binary, self.n, self.base = binary, n, base
        self.ports = free_ports(n)
        self.procs = []
        peer_list = ",".join("127.0.0.1:%d" % p for p in self.ports)
        new_flags = "--sync-peers-ms" in sh([binary, "--help"])
        for i, port in enumerate(self.ports):
            d = os.path.join(base, "%s-%d" % (name, i))
            os.makedirs(d, exist_ok=True)
            args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--data-dir", d,
                    "--threads", "1", "--pod-name", "%s-%d" % (name, i)]
            if peers:
                args += ["--peers", peer_list]
                if new_flags:
                    args += ["--sync-peers-ms", str(sync_ms)]
            log = open(os.path.join(base, "%s-%d.log" % (name, i)), "wb")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))
            log.close()
        for port in self.ports:
            self.wait_ready(port)

    def wait_ready(self, port, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("bench: server on port %d not ready within %d s" % (port, timeout))

    def thread_ticks(self):
        """{thread name prefix: CPU ticks} summed over the servers."""
        out = {}
        for p in self.procs:
            task = "/proc/%d/task" % p.pid
            for tid in os.listdir(task):
                try:
                    with open("%s/%s/stat" % (task, tid)) as f:
                        stat = f.read()
                except OSError:
                    continue  # a thread that ended
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat.rsplit(")", 1)[1].split()
                key = "exchange" if name == "visits-exchange" else (
                    "loop" if name.startswith("visits-loop") else "other")
                out[key] = out.get(key, 0) + int(fields[11]) + int(fields[12])
        return out

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def get(port, path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Accept": "application/json"})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cluster_latency(binary, base, requests):
    """(p50, p90, p99 in ms, wrk req/s) of GET /cluster on the first of three servers."""
    c = Cluster(binary, 3, base, name="lat")
    try:
        for port in c.ports:
            for _ in range(10):
                get(port, "/")
        # the replicated count: wait until the first server shows all 30 visits
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if json.loads(get(c.ports[0], "/cluster")[1])["total"] == 30:
                break
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", c.ports[0], timeout=10)
        lat = []
        for i in range(requests + 100):
            t0 = time.perf_counter()
            status, _ = get(c.ports[0], "/cluster", conn)
            t1 = time.perf_counter()
            if status != 200:
                raise SystemExit("bench: GET /cluster: %d" % status)
            if i >= 100:  # warm-up
                lat.append((t1 - t0) * 1000)
        conn.close()
        out = sh(["wrk", "-t", "2", "-c", "16", "-d", "5s", "-H", "Accept: application/json",
                  "http://127.0.0.1:%d/cluster" % c.ports[0]], timeout=60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        rps = float(m.group(1)) if m else float("nan")
        return pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), rps
    finally:
        c.stop()


def wire_bytes(port):
    """Bytes of one exchange with the server on port: (request, response head, body)."""
    req = ("GET /slots HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
           "User-Agent: visits-server/0.2.0 (exchange)\r\nConnection: close\r\n\r\n" % port)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(req.encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return len(req), len(head) + 4, len(body)


def visitor(ports, stop, period):
    """One visit to every server every period seconds, until stop."""
    conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports]
    while not stop.wait(period):
        for c in conns:
            c.request("GET", "/", headers={"Accept": "application/json"})
            c.getresponse().read()
    for c in conns:
        c.close()


def exchange_cost(binary, n, base, seconds, busy):
    """(asking ms, answering ms) per server and round, and the bytes of one exchange."""
    d = tempfile.mkdtemp(prefix="x%d-" % n, dir=base)
    c = Cluster(binary, n, d, name="x")
    try:
        time.sleep(3)  # the first rounds: recovery, new replicas
        stop = threading.Event()
        t = threading.Thread(target=visitor, args=(c.ports, stop, 0.1)) if busy else None
        if t:
            t.start()
            time.sleep(2)
        t0, c0 = time.monotonic(), c.thread_ticks()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), c.thread_ticks()
        if t:
            stop.set()
            t.join()
        wire = wire_bytes(c.ports[0])
    finally:
        c.stop()
        shutil.rmtree(d, True)
    rounds = t1 - t0  # one round a second on every server
    per = lambda k: (c1.get(k, 0) - c0.get(k, 0)) / TICK * 1000 / n / rounds  # noqa: E731
    req, head, body = wire
    return per("exchange"), per("loop"), req, head, body, n * (n - 1) * (req + head + body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--after", required=True, help="visits-server with the replicated count")
    ap.add_argument("--before", help="visits-server with the per-request fan-out (optional)")
    ap.add_argument("--dir", help="where the data directories go (default: a temp dir)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--out", help="directory for cluster.md")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-cluster-", dir=args.dir)
    lines = ["# GET /cluster and the exchange", ""] + ["- " + l for l in machine_lines(base)]
    lines.append("- load average at start: %s" % loadavg())
    lines += ["", "## GET /cluster on one of three servers (sequential client; wrk -c16 -d5s)",
              "", "| server | p50 ms | p90 ms | p99 ms | wrk req/s |", "|---|---:|---:|---:|---:|"]
    results = {}
    for label, binary in (("before: fan-out to the peers", args.before),
                          ("after: local replica", args.after)):
        if not binary:
            continue
        results[label] = cluster_latency(binary, base, args.requests)
        p50, p90, p99, rps = results[label]
        lines.append("| %s | %.3f | %.3f | %.3f | %.0f |" % (label, p50, p90, p99, rps))
    if len(results) == 2:
        (b50, _, b99, brps), (a50, _, a99, arps) = results.values()
        lines += ["", "p50 %.1fx lower, p99 %.1fx lower, throughput %.1fx" % (
            b50 / a50, b99 / a99, arps / brps)]
    lines += ["", "## The exchange, per server and round (--sync-peers-ms 1000, %g s)" %
              args.seconds, "",
              "| servers | load | asking: CPU ms | answering: CPU ms | request B | "
              "response head B | body B | bytes/round, whole cluster |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in (3, 16):
        for busy in (False, True):
            ask, answer, req, head, body, rb = exchange_cost(args.after, n, base, args.seconds,
                                                             busy)
            lines.append("| %d | %s | %.2f | %s | %d | %d | %d | %d |" % (
                n, "busy (a visit/100 ms each)" if busy else "quiet", ask,
                "(with the visits)" if busy else "%.2f" % answer, req, head, body, rb))
    lines += ["", "- load average at end: %s" % loadavg()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "cluster.md"), "w") as f:
            f.write(text)
    shutil.rmtree(base, True)


if __name__ == "__main__":
    main()
