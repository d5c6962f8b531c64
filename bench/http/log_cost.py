#!/usr/bin/env python3
"""bench/http/log_cost.py: the CPU cost of a request's access-log line, text against JSON,
in instructions per request counted by valgrind's callgrind (all of the server's threads:
the event loop that formats the line, the log thread that writes it). Run by hand:

    bench/http/log_cost.py --server build/adapters/h2o/visits-server \\
        [--before OLD-SERVER] [--requests 2000,12000] [--path /visits]

Each variant runs twice under callgrind with one event-loop thread, answering N1 and N2
GET requests on one keep-alive connection (pipelined, a browser's user agent), with
--sync interval:1000 so that no request waits for the disk; stdout is a pipe that this
script reads. The cost of a request is (Ir(N2) - Ir(N1)) / (N2 - N1): start and stop cancel
out. --before adds the rows of another binary (text only: it may not know --log-format).
Instruction counts are exact and repeatable, unlike timings on a shared machine.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

UA = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      b"Chrome/120.0.0.0 Safari/537.36")
STARTUP_RE = re.compile(rb"listening on http://[^:]+:(\d+) ")


def complete(buf):
    """The number of whole 200 responses (framed by Content-Length) in buf."""
    n = 0
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return n
        head = buf[:end].decode("latin-1")
        if not head.startswith("HTTP/1.1 200 "):
            raise SystemExit("unexpected answer: %r" % head)
        m = re.search(r"\r\ncontent-length: *(\d+)", head, re.I)
        if m is None or len(buf) < end + 4 + int(m.group(1)):
            return n
        buf = buf[end + 4 + int(m.group(1)):]
        n += 1


def drain(pipe, sink):
    for chunk in iter(lambda: pipe.read1(65536), b""):
        sink.append(chunk)


def run(server, fmt, n, path, tmp):
    data = tempfile.mkdtemp(dir=tmp)
    out_file = os.path.join(tmp, "callgrind.%d" % os.getpid())
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file, server,
           "--bind", "127.0.0.1", "--port", "0", "--threads", "1", "--data-dir", data,
           "--sync", "interval:1000", "--pod-name", "bench-0"]
    if fmt is not None:
        cmd += ["--log-format", fmt]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        head = b""
        deadline = time.monotonic() + 60
        while STARTUP_RE.search(head) is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("%s did not start: %r" % (server, head))
            head += proc.stdout.read1(4096)
        port = int(STARTUP_RE.search(head).group(1))
        lines = []
        reader = threading.Thread(target=drain, args=(proc.stdout, lines), daemon=True)
        reader.start()
        request = b"GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: %s\r\n\r\n" % (
            path.encode(), UA)
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        done = 0
        while done < n:
            batch = min(50, n - done)
            s.sendall(request * batch)
            buf = b""
            while complete(buf) < batch:
                b = s.recv(1 << 20)
                if not b:
                    raise SystemExit("connection closed after %d requests" % done)
                buf += b
            done += batch
        s.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(out_file) as f:
        text = f.read()
    os.unlink(out_file)
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if m is None:
        raise SystemExit("no totals in callgrind's output")
    logged = b"".join(lines)
    return int(m.group(1)), logged.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--before", help="another visits-server binary (text rows only)")
    ap.add_argument("--requests", default="2000,12000", help="N1,N2")
    ap.add_argument("--path", default="/visits")
    args = ap.parse_args()
    n1, n2 = (int(x) for x in args.requests.split(","))
    variants = []
    if args.before:
        variants.append(("before, text", args.before, None))
    variants += [("text", args.server, "text"), ("json", args.server, "json")]
    tmp = tempfile.mkdtemp(prefix="log-cost-")
    rows = []
    for label, server, fmt in variants:
        ir1, lines1 = run(server, fmt, n1, args.path, tmp)
        ir2, lines2 = run(server, fmt, n2, args.path, tmp)
        if lines2 - lines1 != n2 - n1:
            raise SystemExit("%s: %d access lines for %d requests" % (label, lines2 - lines1,
                                                                      n2 - n1))
        rows.append((label, (ir2 - ir1) / (n2 - n1)))
    base = rows[0][1]
    print("GET %s, instructions per request (callgrind, all threads, %d-%d requests)"
          % (args.path, n1, n2))
    print("| variant | instructions/request | ratio |")
    print("|---|---|---|")
    for label, per in rows:
        print("| %s | %.0f | %.3fx |" % (label, per, per / base))


if __name__ == "__main__":
    sys.exit(main())
