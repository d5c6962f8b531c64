#!/usr/bin/env python3
"""Durable increments per second vs concurrent writers: libvisits (always), the naive
one-at-a-time replace, SQLite (UPDATE per transaction, WAL, synchronous=FULL) and Redis
(INCR, appendonly, appendfsync always, redis-benchmark on loopback), on one disk, in one
run, interleaved, several rounds; medians, ratios and a gnuplot PNG.

usage: durable.py --bin BUILD/bench/peers/durable [--dir DIR] [--out OUT]
                  [--writers 1,4,16,64,256] [--seconds 3] [--rounds 3]
                  [--systems libvisits,naive,sqlite,redis]
                  [--before [NAME=]OLD/bench/peers/durable ...]

DIR (default ./bench-data) holds the counters: put it on the disk you want to measure.
OUT (default ./bench-results) receives durable.tsv (every run), durable.md (the tables)
and durable.png. Prints the tables too.

--before (repeatable) adds the system NAME (default "before"): the same helper built from
another checkout (with its own libvisits), run interleaved with the others, so that old
and new are compared in one run. Ratios are taken within each round (the systems ran
within seconds of each other) and shown as the median with the range over rounds.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SYSTEMS = ["libvisits", "naive", "sqlite", "redis"]
LABEL = {
    "libvisits": "libvisits (always)",
    "naive": "naive replace",
    "sqlite": "SQLite WAL FULL",
    "redis": "Redis AOF always",
}


class Redis:
    """A private redis-server: AOF on, fsync before every reply, no RDB snapshots."""

    def __init__(self, data_dir):
        self.dir = os.path.join(data_dir, "redis")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = common.free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--protected-mode", "no", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        common.wait_port(self.port, proc=self.proc)
        for _ in range(100):  # until it serves (it may still be loading)
            if common.sh(["redis-cli", "-p", str(self.port), "ping"]) == "PONG":
                break
            time.sleep(0.05)
        got = common.sh(["redis-cli", "-p", str(self.port), "config", "get", "appendfsync"])
        if got.split()[-1:] != ["always"]:
            raise SystemExit(f"bench: redis-server does not run with appendfsync always: {got}")
        self.total = 0

    def value(self):
        out = common.sh(["redis-cli", "-p", str(self.port), "get", "counter:__rand_int__"])
        return int(out) if out.isdigit() else 0

    def bench(self, clients, n):
        out = common.sh(["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port),
                         "-c", str(clients), "-n", str(n), "-t", "incr", "--csv"],
                        check=True, timeout=600)
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.split('","')]
            if cells and cells[0].strip('"') == "INCR":
                self.total += n
                return float(cells[1])
        raise SystemExit(f"bench: no INCR line in redis-benchmark output: {out[-300:]}")

    def run(self, clients, seconds):
        """About `seconds` of INCR from `clients` connections: a short pilot sizes -n."""
        pilot = min(max(500, 100 * clients), 20000)
        rate = self.bench(clients, pilot)
        n = max(pilot, int(rate * seconds))
        rate = self.bench(clients, n)
        if self.value() != self.total:
            raise SystemExit(f"bench: redis counter {self.value()} != {self.total} INCRs sent")
        return rate

    def stop(self):
        common.sh(["redis-cli", "-p", str(self.port), "shutdown", "nosave"])
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_c(binary, system, writers, seconds, data_dir):
    """(incr/s, cycles/s, mean batch, {extra: value}) of one run of the helper."""
    out = common.sh([binary, system, str(writers), str(seconds), data_dir], check=True,
                    timeout=600)
    f = out.split()
    if len(f) < 6 or f[0] != system or any("=" not in x for x in f[6:]):
        raise SystemExit(f"bench: unexpected output of {binary}: {out}")
    num = lambda s: float(s) if s != "-" else float("nan")  # noqa: E731
    extra = {k: float(v) for k, v in (x.split("=", 1) for x in f[6:])}
    return float(f[2]), num(f[3]), num(f[4]), extra


def ratio_cell(res, a, b, w):
    """libvisits-style ratio a/b at w writers: the median of the per-round ratios, and
    their range when there are several rounds."""
    ra, rb = res.get((a, w), []), res.get((b, w), [])
    rs = [x[0] / y[0] for x, y in zip(ra, rb) if y[0]]
    if not rs:
        return "-"
    cell = f"{common.median(rs):.2f}x"
    return cell if len(rs) < 2 else f"{cell} ({min(rs):.2f}-{max(rs):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="path of the durable helper")
    ap.add_argument("--dir", default="bench-data")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--writers", default="1,4,16,64,256")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--before", action="append", default=[], metavar="[NAME=]PATH",
                    help="the durable helper built from another checkout (repeatable)")
    args = ap.parse_args()

    writers = [int(w) for w in args.writers.split(",")]
    systems = [s for s in args.systems.split(",") if s]
    binary = {"libvisits": args.bin, "naive": args.bin, "sqlite": args.bin}
    befores = []  # the older builds, in the order given
    for spec in args.before:
        name, path = spec.split("=", 1) if "=" in spec else ("before", spec)
        if name in binary or name == "redis":
            raise SystemExit(f"bench: --before name '{name}' is taken")
        binary[name] = path
        befores.append(name)
        version = common.sh([path, "--version"], check=True).split(",")[0]
        LABEL[name] = f"{name}: {version}"
    at = 1 if systems[:1] == ["libvisits"] else 0
    systems[at:at] = befores
    for s in systems:
        if s not in SYSTEMS and s not in befores:
            raise SystemExit(f"bench: unknown system '{s}' (known: {', '.join(SYSTEMS)})")
    if "redis" in systems:
        missing = [t for t in ("redis-server", "redis-benchmark", "redis-cli")
                   if shutil.which(t) is None]
        if missing:
            raise SystemExit(f"bench: missing {' '.join(missing)} "
                             "(Debian: redis-server redis-tools)")
    os.makedirs(args.dir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.abspath(args.dir)

    redis_v = common.version_of(["redis-server", "--version"], r"v=(\S+)")
    redis_b = common.version_of(["redis-benchmark", "--version"])
    env = common.machine_lines(data_dir) + [
        f"versions: {common.sh([args.bin, '--version'])}, "
        f"Redis {redis_v} ({redis_b})"
        + "".join(f"; {b}: {binary[b]}" for b in befores),
        f"{args.rounds} rounds x {len(writers)} writer counts x {len(systems)} systems, "
        f"{args.seconds:g} s each, systems interleaved (order rotated each round)",
    ]
    load_before = common.loadavg()
    t0 = time.time()
    tsv = open(os.path.join(args.out, "durable.tsv"), "w")
    tsv.write("round\tsystem\twriters\tincr_per_s\tcycles_per_s\tmean_batch\tcycle_us\t"
              "gathers\tgathers_vain\tload1\n")
    res = {}  # (system, writers) -> [(rate, cycles, batch, extra)], one per round
    loads = []
    for rnd in range(args.rounds):
        redis = Redis(data_dir) if "redis" in systems else None
        try:
            for w in writers:
                order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
                for s in order:
                    if s == "redis":
                        r = (redis.run(w, args.seconds), float("nan"), float("nan"), {})
                    else:
                        r = run_c(binary[s], "libvisits" if s in befores else s, w,
                                  args.seconds, data_dir)
                    load = common.loadavg()
                    loads.append(float(load))
                    res.setdefault((s, w), []).append(r)
                    x = r[3]
                    tsv.write(f"{rnd + 1}\t{s}\t{w}\t{r[0]:.1f}\t{r[1]:.1f}\t{r[2]:.2f}\t"
                              f"{x.get('cycle_us', float('nan')):.1f}\t"
                              f"{x.get('gathers', float('nan')):.0f}\t"
                              f"{x.get('vain', float('nan')):.0f}\t{load}\n")
                    tsv.flush()
                    batch = f", batch {r[2]:.1f}" if r[2] == r[2] else ""
                    print(f"round {rnd + 1} {s:9} {w:4} writers: {r[0]:10.0f} incr/s{batch} "
                          f"(load {load})", file=sys.stderr, flush=True)
        finally:
            if redis:
                redis.stop()
    tsv.close()
    elapsed = time.time() - t0

    med = {k: common.median([r[0] for r in v]) for k, v in res.items()}
    header = ["writers"] + [LABEL[s] for s in systems]
    rows = [[w] + [common.fmt_num(med.get((s, w), float("nan"))) for s in systems]
            for w in writers]
    tables = [common.md_table(header, rows)]
    if "libvisits" in systems:
        # Ratios within each round: the median and the range over rounds.
        peers = [s for s in systems if s != "libvisits"]
        header = ["writers"] + [f"libvisits / {p}" for p in peers]
        if "redis" in systems:
            header += [f"{b} / redis" for b in befores]
        rows = []
        for w in writers:
            row = [w] + [ratio_cell(res, "libvisits", p, w) for p in peers]
            if "redis" in systems:
                row += [ratio_cell(res, b, "redis", w) for b in befores]
            rows.append(row)
        tables.append(common.md_table(header, rows))
        # The group commit: cycles, batches, gathering.
        mine = ["libvisits"] + befores
        header = ["writers"]
        for s in mine:
            who = "" if s == "libvisits" else f"{s}: "
            header += [f"{who}cycles/s", f"{who}mean batch", f"{who}batch / N"]
        header += ["cycle ms", "gathers / cycle", "vain / gather"]
        rows = []
        for w in writers:
            row = [w]
            for s in mine:
                runs = res[(s, w)]
                batch = common.median([r[2] for r in runs])
                row += [common.fmt_num(common.median([r[1] for r in runs])),
                        common.fmt_num(batch), f"{batch / w:.2f}"]
            xs = [r[3] for r in res[("libvisits", w)]]
            cycle_ms = common.median([x.get("cycle_us", float("nan")) / 1000 for x in xs])
            per_cycle = common.median([x["gathers"] / x["cycles"] for x in xs
                                       if x.get("cycles")])
            vains = [x["vain"] / x["gathers"] for x in xs if x.get("gathers")]
            row += [f"{cycle_ms:.2f}", f"{per_cycle:.2f}",
                    f"{common.median(vains):.2f}" if vains else "-"]
            rows.append(row)
        tables.append(common.md_table(header, rows))
    spreads = [common.spread([r[0] for r in v]) for v in res.values()]
    noise = (f"load average (1 min) {load_before} before, {min(loads):.2f}-{max(loads):.2f} "
             f"during; median spread between rounds (max-min)/median "
             f"{common.median(spreads) * 100:.0f}%, worst {max(spreads) * 100:.0f}%; "
             f"total {elapsed / 60:.1f} min")
    png = os.path.join(args.out, "durable.png")
    why = common.gnuplot(png, "Durable increments/s vs concurrent writers (one counter)",
                         "concurrent writers", "durable increments per second",
                         [(LABEL[s], [(w, med[(s, w)]) for w in writers]) for s in systems],
                         xtics=writers)
    md = "\n".join(["## Durable increments per second (median of rounds)", "",
                    *[f"- {line}" for line in env], f"- noise: {noise}", "",
                    "Increments per second (median of the rounds):", "", tables[0], "",
                    *(["Ratios (median of the per-round ratios, range over the rounds):", "",
                       tables[1], "",
                       "Group commit (medians; batch / N: the mean batch over the writers; "
                       "gathers: cycles that waited for callers, vain: waits that ended by "
                       "their deadline):", "", tables[2], ""] if len(tables) > 1 else []),
                    f"Plot: {png}" if why is None else f"No plot: {why}", ""])
    with open(os.path.join(args.out, "durable.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
