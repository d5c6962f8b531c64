"""Helpers shared by bench/peers/durable.py and http_sweep.py: environment report, medians,
Markdown tables, gnuplot plots. Python standard library only."""

import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import time


def sh(cmd, check=False, timeout=60):
    """Output of a command (stdout+stderr, stripped), or '' if it cannot run."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        if check:
            raise SystemExit(f"bench: {' '.join(cmd)}: {e}")
        return ""
    if check and p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)}: exit {p.returncode}: "
                         f"{(p.stderr or p.stdout).strip()[-500:]}")
    return (p.stdout + p.stderr).strip()


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def first_line(text):
    return text.splitlines()[0] if text else "?"


def machine_lines(data_dir):
    """Describes the machine, kernel and the filesystem of data_dir."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    fs = sh(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--target", data_dir])
    return [
        f"host: {socket.gethostname()}, {os.cpu_count()} CPUs ({cpu}), "
        f"{mem_kb / 1048576:.0f} GB RAM",
        f"kernel: {platform.release()}",
        f"data dir: {data_dir} on {fs or '?'}",
    ]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    """Relative spread of repeated runs: (max - min) / median."""
    if len(xs) < 2:
        return 0.0
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else 0.0


def fmt_num(x):
    if x != x:  # nan
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(a, b):
    if not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}x"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def gnuplot(png, title, xlabel, ylabel, series, logx=True, logy=True, xtics=None):
    """series: [(name, [(x, y), ...])]. Writes png (and png.gp, png.dat beside it).
    Returns None, or the reason no plot was made."""
    if shutil.which("gnuplot") is None:
        return "gnuplot not installed (Debian: gnuplot-nox)"
    base = os.path.splitext(png)[0]
    dat = base + ".dat"
    with open(dat, "w") as f:
        for name, pts in series:
            f.write(f"# {name}\n")
            for x, y in pts:
                f.write(f"{x} {y}\n")
            f.write("\n\n")
    plots = ", ".join(
        f"'{dat}' index {i} using 1:2 with linespoints lw 2 pt 7 title '{name}'"
        for i, (name, _) in enumerate(series))
    script = "\n".join([
        "set terminal pngcairo size 900,560 font ',11'",
        f"set output '{png}'",
        f"set title '{title}'",
        f"set xlabel '{xlabel}'",
        f"set ylabel '{ylabel}'",
        "set logscale x 2" if logx else "",
        "set logscale y 10" if logy else "",
        f"set xtics ({', '.join(str(x) for x in xtics)})" if xtics else "",
        f"set xrange [{min(xtics) * 0.8}:{max(xtics) * 1.25}]" if xtics else "",
        "set grid",
        "set key below",
        "set format y '%.0s%c'",
        f"plot {plots}",
    ])
    with open(base + ".gp", "w") as f:
        f.write(script + "\n")
    out = sh(["gnuplot", base + ".gp"])
    if not os.path.exists(png):
        return f"gnuplot failed: {out}"
    return None


def wait_port(port, timeout=20.0, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"bench: process exited with {proc.returncode} before "
                             f"listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port} after {timeout} s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_of(cmd, pattern=None):
    out = first_line(sh(cmd))
    if pattern:
        m = re.search(pattern, out)
        return m.group(1) if m else out
    return out
