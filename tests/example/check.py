#!/usr/bin/env python3
"""Runs examples/visits-uv (built by run.sh against an installed libvisits) and checks
what a user would see: the answers, their order on each connection, the bytes of the
counter file, the exit code and the last line on stderr.

usage: check.py VISITS_UV WORK_DIR
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

BIN, WORK = sys.argv[1], sys.argv[2]
CLIENTS = 8  # concurrent connections
PER_CLIENT = 250  # visits each
WINDOW = 25  # lines a client sends before reading their answers
TIMEOUT = 30.0  # seconds any single wait may take


def fail(msg):
    print(f"example: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class Broken(Exception):
    """What a client thread saw go wrong."""


def step(msg):
    print(f"example: {msg}", flush=True)


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class Server:
    def __init__(self, path, *args):
        self.path = path
        self.err_path = path + ".stderr"
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([BIN, *args, path], stdout=subprocess.PIPE,
                                     stderr=self.err)
        line = self.proc.stdout.readline().decode()
        prefix = "listening on 127.0.0.1:"
        if not line.startswith(prefix):
            self.proc.kill()
            fail(f"{BIN} printed {line!r} (stderr: {self.stderr()!r}), not '{prefix}PORT'")
        self.port = int(line[len(prefix):])

    def fail(self, msg):
        """Fails with msg and what the server said (it may have died)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        fail(f"{msg} (server exit {self.proc.returncode}, stderr {self.stderr()!r})")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        s.settimeout(TIMEOUT)
        return s

    def stop(self, want_value, send=True):
        """SIGTERM (unless sent already); expects exit 0, the closing line and the file
        holding want_value."""
        if send:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail(f"no exit {TIMEOUT:.0f} s after SIGTERM (stderr: {self.stderr()!r})")
        self.err.close()
        err = self.stderr()
        if rc != 0:
            fail(f"exit {rc} after SIGTERM, expected 0 (stderr: {err!r})")
        want = f"visits-uv: closed: {self.path} holds {want_value}\n"
        if not err.endswith(want):
            fail(f"stderr ends with {err[-200:]!r}, expected {want!r}")
        expect_file(self.path, want_value)


def expect_file(path, value):
    got = file_bytes(path)
    if got != f"{value}\n".encode():
        fail(f"{path} holds {got!r}, expected {value}\\n")


def read_answers(sock, count, buf=b""):
    """Reads count answer lines; returns (values, leftover bytes)."""
    values = []
    while len(values) < count:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise Broken(f"connection closed after {len(values)} of {count} answers")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        if not line.isdigit():
            raise Broken(f"answer {line!r} is not a number")
        values.append(int(line))
    return values, buf


def read_to_eof(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def client(srv, results, idx):
    try:
        with srv.connect() as s:
            got, buf = [], b""
            for _ in range(PER_CLIENT // WINDOW):
                s.sendall(b"visit\n" * WINDOW)
                values, buf = read_answers(s, WINDOW, buf)
                got += values
            results[idx] = got
    except Exception as e:  # reported by the main thread
        results[idx] = e


def concurrent_clients(srv, base):
    """CLIENTS connections, PER_CLIENT visits each: checks each connection's order and
    that the answers are exactly base+1..base+CLIENTS*PER_CLIENT."""
    results = [None] * CLIENTS
    threads = [threading.Thread(target=client, args=(srv, results, i)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 4)
        if t.is_alive():
            fail("a client is still running after its deadline")
    total = CLIENTS * PER_CLIENT
    everything = []
    for i, r in enumerate(results):
        if isinstance(r, Exception) or r is None:
            srv.fail(f"client {i}: {r}")
        if len(r) != PER_CLIENT or any(a >= b for a, b in zip(r, r[1:])):
            fail(f"client {i}: {len(r)} answers, not strictly increasing: {r[:10]}...")
        everything += r
    if sorted(everything) != list(range(base + 1, base + total + 1)):
        dup = len(everything) - len(set(everything))
        fail(f"the {len(everything)} answers are not {base + 1}..{base + total} "
             f"({dup} duplicates, min {min(everything)}, max {max(everything)})")
    return base + total


def main():
    os.makedirs(WORK, exist_ok=True)
    total = CLIENTS * PER_CLIENT

    # Usage and a corrupt file: exit codes and messages, the file left as it was.
    p = subprocess.run([BIN], capture_output=True, text=True, timeout=TIMEOUT)
    if p.returncode != 2 or "usage: visits-uv" not in p.stderr:
        fail(f"no arguments: exit {p.returncode}, stderr {p.stderr!r}")
    bad = os.path.join(WORK, "corrupt")
    with open(bad, "wb") as f:
        f.write(b"12a\n")
    p = subprocess.run([BIN, bad], capture_output=True, text=True, timeout=TIMEOUT)
    want = f"visits-uv: {bad}: corrupt counter file"
    if p.returncode != 1 or not p.stderr.startswith(want) or p.stdout:
        fail(f"corrupt file: exit {p.returncode}, stderr {p.stderr!r}, expected 1 and {want!r}")
    if file_bytes(bad) != b"12a\n":
        fail(f"{bad} was modified: {file_bytes(bad)!r}")
    step("usage and corrupt file: ok")

    # Always mode: every answer is on disk when it arrives.
    path = os.path.join(WORK, "always")
    srv = Server(path)
    value = concurrent_clients(srv, 0)
    expect_file(path, value)
    step(f"always: {CLIENTS} clients x {PER_CLIENT} visits, answers 1..{total}, "
         f"each connection in order, file {value}: ok")

    # A client that hangs up with visits in flight: they count, the server goes on.
    with srv.connect() as s:
        s.sendall(b"\n" * 200)
    value += 200
    deadline = time.monotonic() + TIMEOUT
    while file_bytes(path) != f"{value}\n".encode():
        if time.monotonic() > deadline:
            fail(f"{path} holds {file_bytes(path)!r} {TIMEOUT:.0f} s after a client left "
                 f"200 visits in flight, expected {value}")
        time.sleep(0.02)
    # A client that half-closes gets its answers, then the server closes.
    with srv.connect() as s:
        s.sendall(b"a\nb\nc\n")
        s.shutdown(socket.SHUT_WR)
        got = read_to_eof(s)
    want = "".join(f"{value + i}\n" for i in (1, 2, 3)).encode()
    if got != want:
        fail(f"half-closed client got {got!r}, expected {want!r} and end of stream")
    value += 3
    step(f"a client gone with 200 visits in flight, a half-closed client: ok ({value})")

    # SIGTERM with visits in flight and an idle connection: every visit the server read
    # is answered and on disk, both connections end, exit 0.
    idle = srv.connect()
    busy = srv.connect()
    busy.sendall(b"\n" * 500)  # one segment: the server reads it in one go
    first, buf = read_answers(busy, 1)
    srv.proc.send_signal(signal.SIGTERM)
    rest = read_to_eof(busy)
    got = first + [int(x) for x in (buf + rest).split(b"\n") if x]
    if got != list(range(value + 1, value + 501)):
        try:
            srv.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
        fail(f"after SIGTERM the busy client got {len(got)} answers {got[:3]}..{got[-3:]}, "
             f"expected {value + 1}..{value + 500}; the server exited {srv.proc.returncode} "
             f"with {srv.stderr()!r}, {path} holds {file_bytes(path)!r}")
    value += 500
    if idle.recv(100) != b"":
        fail("the idle connection got data instead of end of stream after SIGTERM")
    idle.close()
    busy.close()
    srv.stop(value, send=False)
    step(f"SIGTERM with 500 visits in flight: all answered, exit 0, file {value}: ok")

    # Interval mode: answers at once, the file written at close.
    path = os.path.join(WORK, "interval")
    srv = Server(path, "-i", "3600000")
    value = concurrent_clients(srv, 0)
    if file_bytes(path) is not None:
        fail(f"interval mode (1 h) wrote {path} before the interval: {file_bytes(path)!r}")
    srv.stop(value)
    step(f"interval: answers 1..{total}, nothing written before SIGTERM, {value} at exit: ok")
    step("all ok")


if __name__ == "__main__":
    try:
        main()
    except (Broken, OSError) as e:
        fail(str(e))
