#!/usr/bin/env python3
"""HTTP sweep: wrk (HTTP/1.1) and h2load (HTTP/2, prior knowledge) at 1, 16, 64 and 256
connections against visits-server `GET /` (--sync always and interval), `GET /visits`,
and Debian's h2o serving a static file of the same size as the ceiling; several rounds,
medians, ratios, p50/p99, server RSS, and a gnuplot PNG.

usage: http_sweep.py --server BUILD/adapters/h2o/visits-server [--dir DIR] [--out OUT]
               [--conns 1,16,64,256] [--seconds 3] [--rounds 3] [--threads 2]
               [--no-h2]

DIR (default ./bench-data) holds the counters; OUT (default ./bench-results) receives
http.tsv (every run), http.md (the tables) and http.png / http2.png.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TARGETS = [
    # name, label, kind, path
    ("always", "visits-server GET / (always)", "visits-always", "/"),
    ("interval", "visits-server GET / (interval:1000)", "visits-interval", "/"),
    ("read", "visits-server GET /visits", "visits-always", "/visits"),
    ("static", "h2o static file (ceiling)", "h2o", "/visits.json"),
]

# Every request asks for JSON: GET /, GET /visits and the static file then carry bodies
# of the same size ({"visits":N,"pod":"..."}), so the comparison is of the work behind them.
ACCEPT = "Accept: application/json"

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise SystemExit(f"bench: cannot read the latency '{text}'")
    return float(m.group(1)) * UNITS[m.group(2)]


class Server:
    def __init__(self, kind, args, work):
        self.kind = kind
        self.port = common.free_port()
        self.log = open(os.path.join(work, f"{kind}.log"), "wb")
        if kind == "h2o":
            root = os.path.join(work, "htdocs")
            os.makedirs(root, exist_ok=True)
            with open(os.path.join(root, "visits.json"), "w") as f:
                f.write("{}")  # main() puts the body of GET /visits here
            for d in (work, root):  # h2o started as root serves as nobody
                os.chmod(d, 0o755)
            os.chmod(os.path.join(root, "visits.json"), 0o644)
            conf = os.path.join(work, "h2o.conf")
            with open(conf, "w") as f:
                f.write(f"listen:\n  host: 127.0.0.1\n  port: {self.port}\n"
                        f"num-threads: {args.threads}\n"
                        f"access-log: /dev/null\n"
                        f"error-log: {os.path.join(work, 'h2o-error.log')}\n"
                        f"hosts:\n  default:\n    paths:\n      /:\n"
                        f"        file.dir: {root}\n")
            cmd = ["h2o", "-c", conf]
            self.counter = None
        else:
            data = os.path.join(work, f"data-{kind}")
            os.makedirs(data, exist_ok=True)
            self.counter = os.path.join(data, "visits")
            sync = "always" if kind == "visits-always" else "interval:1000"
            cmd = [args.server, "--bind", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", data, "--threads", str(args.threads), "--sync", sync,
                   "--http2"]  # h2load runs too; visits-server's HTTP/2 is off by default
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        common.wait_port(self.port, proc=self.proc)
        self.pid = self.proc.pid

    def rss_kb(self):
        """(VmRSS, VmHWM) in kB of the server process."""
        vals = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":")
                    vals[k] = int(v.split()[0])
        return vals.get("VmRSS", 0), vals.get("VmHWM", 0)

    def value(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/visits", timeout=10) as r:
            body = r.read().decode()
        m = re.search(r'"visits":(\d+)', body)
        return int(m.group(1)) if m else -1

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if self.kind != "h2o" and self.proc.returncode != 0:
            raise SystemExit(f"bench: visits-server ({self.kind}) exited with "
                             f"{self.proc.returncode} on SIGTERM (log {self.log.name})")


def run_wrk(port, path, conns, seconds):
    threads = min(2, conns)
    out = common.sh(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds:g}s",
                     "-H", ACCEPT, "--latency", f"http://127.0.0.1:{port}{path}"], check=True,
                    timeout=seconds + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return {"rps": rps, "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]),
            "errors": errors, "total": total}


def run_h2load(port, path, conns, seconds, work):
    logf = os.path.join(work, "h2load.log")
    threads = min(2, conns)
    out = common.sh(["h2load", "-c", str(conns), "-t", str(threads), "-m", "1",
                     "-D", f"{seconds:g}", "--log-file", logf, "-H", ACCEPT,
                     f"http://127.0.0.1:{port}{path}"], check=True, timeout=seconds + 60)
    m = re.search(r"finished in .*?, ([\d.]+) req/s", out)
    rps = float(m.group(1))
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    total, done, ok, failed, errored, tmo = (int(x) for x in m.groups())
    m = re.search(r"status codes: (\d+) 2xx", out)
    errors = failed + errored + tmo + (done - int(m.group(1)) if m else 0)
    lats = []
    with open(logf) as f:  # start time, status, elapsed microseconds
        for line in f:
            cells = line.split()
            if len(cells) >= 3:
                lats.append(int(cells[2]) / 1000.0)
    os.unlink(logf)
    lats.sort()
    pct = (lambda q: lats[min(len(lats) - 1, int(q * len(lats)))]) if lats else (lambda q: 0)
    return {"rps": rps, "p50": pct(0.50), "p99": pct(0.99), "errors": errors, "total": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="path of visits-server")
    ap.add_argument("--dir", default="bench-data")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--conns", default="1,16,64,256")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="server threads (both servers)")
    ap.add_argument("--no-h2", action="store_true", help="skip the h2load (HTTP/2) runs")
    args = ap.parse_args()

    tools = ["wrk", "h2o"] + ([] if args.no_h2 else ["h2load"])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"bench: missing {' '.join(missing)} (Debian: wrk h2o nghttp2-client)")
    if not os.access(args.server, os.X_OK):
        raise SystemExit(f"bench: {args.server}: not an executable visits-server")
    conns = [int(c) for c in args.conns.split(",")]
    os.makedirs(args.dir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.abspath(args.dir)
    protos = ["h1"] + ([] if args.no_h2 else ["h2"])

    wrk_v = common.version_of(["wrk", "--version"], r"wrk (\S+)")
    h2load_v = common.version_of(["h2load", "--version"], r"nghttp2/(\S+)")
    env = common.machine_lines(data_dir) + [
        f"versions: {common.first_line(common.sh([args.server, '--version']))}, "
        f"{common.first_line(common.sh(['h2o', '--version']))} (Debian), "
        f"wrk {wrk_v}, "
        f"h2load {h2load_v}",
        f"{args.rounds} rounds, {args.seconds:g} s per run, server threads {args.threads}, "
        "client (wrk -t min(2,c) / h2load -t min(2,c) -m 1) on the same 2 CPUs; "
        "targets interleaved in each round; every request sends 'Accept: application/json' "
        "(bodies of the same size as the static file)",
    ]
    load_before = common.loadavg()
    t0 = time.time()
    res = {}  # (proto, target, conns) -> [result]
    rss = {}  # target kind -> [(rss, hwm)]
    loads = []
    tsv = open(os.path.join(args.out, "http.tsv"), "w")
    tsv.write("round\tproto\ttarget\tconns\treq_per_s\tp50_ms\tp99_ms\terrors\trss_kb\t"
              "hwm_kb\tload1\n")
    checks = []
    for rnd in range(args.rounds):
        work = tempfile.mkdtemp(prefix="http.", dir=data_dir)
        try:
            servers = {}
            for kind in ("visits-always", "visits-interval", "h2o"):
                servers[kind] = Server(kind, args, work)
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{servers['visits-always'].port}/visits") as r:
                body = r.read()
            with open(os.path.join(work, "htdocs", "visits.json"), "wb") as f:
                f.write(body)  # the ceiling serves as many bytes as GET /visits
            for c in conns:
                for proto in protos:
                    for name, label, kind, path in TARGETS:
                        srv = servers[kind]
                        before = srv.value() if srv.counter and path == "/" else None
                        if proto == "h1":
                            r = run_wrk(srv.port, path, c, args.seconds)
                        else:
                            r = run_h2load(srv.port, path, c, args.seconds, work)
                        cur, hwm = srv.rss_kb()
                        rss.setdefault(kind, []).append((cur, hwm))
                        if before is not None:
                            counted = srv.value() - before
                            if counted < r["total"]:
                                raise SystemExit(
                                    f"bench: {label}: the counter grew by {counted}, fewer "
                                    f"than the {r['total']} answered GET / of {proto} c={c}")
                            checks.append((name, proto, c, r["total"], counted))
                        load = common.loadavg()
                        loads.append(float(load))
                        res.setdefault((proto, name, c), []).append(r)
                        tsv.write(f"{rnd + 1}\t{proto}\t{name}\t{c}\t{r['rps']:.1f}\t"
                                  f"{r['p50']:.3f}\t{r['p99']:.3f}\t{r['errors']}\t{cur}\t"
                                  f"{hwm}\t{load}\n")
                        tsv.flush()
                        print(f"round {rnd + 1} {proto} {name:8} c={c:3}: {r['rps']:9.0f} "
                              f"req/s p50 {r['p50']:.2f} ms p99 {r['p99']:.2f} ms "
                              f"errors {r['errors']} rss {cur} kB (load {load})",
                              file=sys.stderr, flush=True)
            for srv in servers.values():
                srv.stop()
        finally:
            for srv in servers.values():
                if srv.proc.poll() is None:
                    srv.proc.kill()
                    srv.proc.wait()
            shutil.rmtree(work, ignore_errors=True)
    tsv.close()
    elapsed = time.time() - t0

    md = ["## HTTP (median of rounds)", "", *[f"- {line}" for line in env]]
    spreads = [common.spread([r["rps"] for r in v]) for v in res.values()]
    md.append(f"- noise: load average (1 min) {load_before} before, "
              f"{min(loads):.2f}-{max(loads):.2f} during; median spread between rounds "
              f"{common.median(spreads) * 100:.0f}%, worst {max(spreads) * 100:.0f}%; "
              f"total {elapsed / 60:.1f} min")
    errs = sum(r["errors"] for v in res.values() for r in v)
    md.append(f"- errors (socket errors, non-2xx, h2load failures) over all runs: {errs}")
    md.append("- every run of GET /: the counter grew by at least the number of 200s the "
              f"client counted ({len(checks)} runs checked)")
    md.append("")
    med = lambda proto, name, c, key: common.median(  # noqa: E731
        [r[key] for r in res[(proto, name, c)]])
    for proto in protos:
        pname = "HTTP/1.1 (wrk)" if proto == "h1" else "HTTP/2 (h2load, prior knowledge)"
        md += [f"### {pname}: requests per second", ""]
        header = ["connections"] + [t[1] for t in TARGETS] + [
            "always / static", "interval / static", "/visits / static", "always / interval"]
        rows = []
        for c in conns:
            v = {t[0]: med(proto, t[0], c, "rps") for t in TARGETS}
            rows.append([c] + [common.fmt_num(v[t[0]]) for t in TARGETS] + [
                common.fmt_ratio(v["always"], v["static"]),
                common.fmt_ratio(v["interval"], v["static"]),
                common.fmt_ratio(v["read"], v["static"]),
                common.fmt_ratio(v["always"], v["interval"])])
        md += [common.md_table(header, rows), ""]
        md += [f"### {pname}: latency p50 / p99 (ms)", ""]
        header = ["connections"] + [t[1] for t in TARGETS]
        rows = [[c] + [f"{common.fmt_num(med(proto, t[0], c, 'p50'))} / "
                       f"{common.fmt_num(med(proto, t[0], c, 'p99'))}" for t in TARGETS]
                for c in conns]
        md += [common.md_table(header, rows), ""]
    md += ["### Server memory (kB, over all runs)", ""]
    rows = []
    for kind, label in (("visits-always", "visits-server --sync always"),
                        ("visits-interval", "visits-server --sync interval:1000"),
                        ("h2o", "h2o 2.2.5 static")):
        v = rss.get(kind, [])
        rows.append([label, f"{min(x[0] for x in v):,}", f"{max(x[0] for x in v):,}",
                     f"{max(x[1] for x in v):,}"])
    md += [common.md_table(["server", "RSS min", "RSS max", "peak (VmHWM)"], rows), ""]
    for proto in protos:
        png = os.path.join(args.out, "http.png" if proto == "h1" else "http2.png")
        why = common.gnuplot(
            png, f"{'HTTP/1.1 (wrk)' if proto == 'h1' else 'HTTP/2 (h2load)'}: requests/s "
            "vs connections", "connections", "requests per second",
            [(t[1], [(c, med(proto, t[0], c, "rps")) for c in conns]) for t in TARGETS],
            xtics=conns)
        md.append(f"Plot: {png}" if why is None else f"No plot: {why}")
    md.append("")
    text = "\n".join(md)
    with open(os.path.join(args.out, "http.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
