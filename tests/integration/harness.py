"""Shared helpers of the visits-server integration tests (python3 stdlib only).

Every test starts its own server on a free loopback port (--port 0: the kernel picks it,
the startup line reports it) with a fresh temporary data directory. The server binary
comes from the VISITS_SERVER environment variable that ctest sets from CMake's
$<TARGET_FILE:visits-server>, so the same tests run against the sanitizer build.

A server's stdout (startup line, access log) and stderr go to files in the test's temp
directory; stopping a server asserts its exit status and that no sanitizer reported
anything.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

SERVER = os.environ.get("VISITS_SERVER", "")
FAULT_LIB = os.environ.get("VISITS_FAULT_LIB", "")
NOBODY = 65534
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                   "UndefinedBehaviorSanitizer", "runtime error:")
# The sanitizer build is several times slower: scale waits, never load sizes.
SLOW = 3.0 if os.environ.get("VISITS_SANITIZE") == "1" else 1.0
STARTUP_RE = re.compile(r"listening on http://(\[[^\]]+\]|[^:/]+):(\d+) ")


def require(condition, why):
    """Skips outside CI; under CI=true a missing prerequisite fails the test instead."""
    if condition:
        return
    if CI:
        raise AssertionError("prerequisite missing under CI=true: " + why)
    raise unittest.SkipTest(why)


class Server:
    """One visits-server process."""

    def __init__(self, data_dir, args=(), env=None, as_nobody=False, preload_fault=False,
                 logs_dir=None, threads=2):
        self.data_dir = data_dir
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.as_nobody = as_nobody
        self.preload_fault = preload_fault
        self.logs_dir = logs_dir or tempfile.mkdtemp(prefix="visits-server-logs-")
        self.threads = threads
        self.proc = None
        self.port = None
        self.runs = 0

    # ---- lifecycle ----------------------------------------------------------------------
    def command(self):
        cmd = [SERVER, "--bind", "127.0.0.1", "--port", "0", "--data-dir", self.data_dir,
               "--threads", str(self.threads)] + self.args
        if self.as_nobody:
            cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                   "--clear-groups"] + cmd
        return cmd

    def spawn(self):
        """Starts the process without waiting for it to listen."""
        self.runs += 1
        self.out_path = os.path.join(self.logs_dir, "stdout.%d" % self.runs)
        self.err_path = os.path.join(self.logs_dir, "stderr.%d" % self.runs)
        env = dict(self.env)
        if self.preload_fault:
            env["LD_PRELOAD"] = FAULT_LIB
            # ASan wants to be first in the library list; the preloaded shim is first.
            opts = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err, env=env,
                                         stdin=subprocess.DEVNULL)
        return self.proc

    def start(self, timeout=10):
        self.spawn()
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            m = STARTUP_RE.search(self.stdout())
            if m:
                self.port = int(m.group(2))
                return self
            if self.proc.poll() is not None:
                raise AssertionError("visits-server exited %d before listening: %s"
                                     % (self.proc.returncode, self.stderr()))
            time.sleep(0.01)
        raise AssertionError("visits-server did not print its startup line: %s"
                             % self.stdout())

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Sends sig, waits; returns (exit status, seconds until exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("visits-server did not exit within %.1f s of %s"
                                 % (timeout * SLOW, signal.Signals(sig).name))
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_stdout(self, text, timeout=3.0):
        """stdout once it holds text (lines reach it through the log thread, a little
        after the event that logged them); the last stdout read after timeout."""
        deadline = time.monotonic() + timeout * SLOW
        out = self.stdout()
        while text not in out and time.monotonic() < deadline:
            time.sleep(0.02)
            out = self.stdout()
        return out

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assert_clean(self, test):
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            test.assertNotIn(mark, err, "sanitizer report in stderr:\n" + err)

    # ---- HTTP -------------------------------------------------------------------------
    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def request(self, method, path, headers=None, body=None, conn=None):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        own = conn is None
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def get_json(self, path, headers=None):
        status, hdrs, body = self.request("GET", path, headers)
        return status, json.loads(body)

    def metrics_when(self, *needles, timeout=3.0):
        """GET /metrics until its text contains every needle (a request is recorded when
        libh2o disposes it, just after its response was sent: a scrape by another
        connection may come first). Returns the last text either way."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            text = self.request("GET", "/metrics")[2].decode()
            if all(n in text for n in needles) or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def visit(self, conn=None):
        """GET / asking for JSON; returns (status, parsed body)."""
        status, _, body = self.request("GET", "/", {"Accept": "application/json"}, conn=conn)
        return status, json.loads(body)


class ServerTest(unittest.TestCase):
    """Base: a fresh temp directory per test and cleanup of any server left running."""

    def setUp(self):
        if not SERVER or not os.access(SERVER, os.X_OK):
            raise AssertionError("VISITS_SERVER must name the visits-server binary, got %r"
                                 % SERVER)
        self.tmp = tempfile.mkdtemp(prefix="visits-it-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")
        os.mkdir(self.data)
        self.counter = os.path.join(self.data, "visits")
        self.servers = []
        self.addCleanup(self.kill_all)

    def kill_all(self):
        for s in self.servers:
            s.kill()

    def server(self, data_dir=None, **kw):
        kw.setdefault("logs_dir", tempfile.mkdtemp(prefix="logs-", dir=self.tmp))
        s = Server(data_dir or self.data, **kw)
        self.servers.append(s)
        return s

    def start(self, data_dir=None, **kw):
        return self.server(data_dir, **kw).start()

    def stop_ok(self, srv, sig=signal.SIGTERM, within=2.0):
        """Stops srv with sig and asserts exit 0 within `within` seconds (scaled)."""
        rc, took = srv.stop(sig)
        self.assertEqual(rc, 0, "exit status after %s; stderr:\n%s"
                         % (signal.Signals(sig).name, srv.stderr()))
        self.assertLess(took, within * SLOW, "exit took %.2f s" % took)
        srv.assert_clean(self)
        return took

    def wait_ready(self, srv, want, timeout=5.0):
        """GET /ready until it answers want (or the scaled timeout); (status, parsed body)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            status, _, body = srv.request("GET", "/ready")
            if status == want or time.monotonic() > deadline:
                return status, json.loads(body)
            time.sleep(0.02)

    def file_bytes(self, path=None):
        with open(path or self.counter, "rb") as f:
            return f.read()

    def write_file(self, data, path=None):
        with open(path or self.counter, "wb") as f:
            f.write(data)


class OneServerTest(ServerTest):
    """Base: one server per test, started before it, still healthy after it, stopped with
    exit 0."""

    def setUp(self):
        super().setUp()
        self.srv = self.start()

    def tearDown(self):
        self.assertEqual(self.srv.request("GET", "/health")[0], 200, "server unhealthy")
        self.stop_ok(self.srv)


def raw_exchange(port, payload, timeout=5.0, read_until_close=True):
    """Sends payload on a fresh connection; returns everything read until EOF/timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        s.sendall(payload)
        chunks = []
        while read_until_close:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def parse_responses(data):
    """Splits HTTP/1.1 responses framed by Content-Length (or chunked); returns a list of
    (status, headers dict, body) and raises on bad framing."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("truncated response head: %r" % data[:200])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(rest) < n:
                raise AssertionError("body shorter than Content-Length %d: %r" % (n, rest))
            body, data = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body += rest[:size]
                if rest[size:size + 2] != b"\r\n":
                    raise AssertionError("bad chunk framing")
                rest = rest[size + 2:]
                if size == 0:
                    break
            data = rest
        else:
            body, data = rest, b""
        out.append((status, hdrs, body))
    return out


class H2Client:
    """Just enough HTTP/2 (RFC 9113) over cleartext with prior knowledge for GETs: the
    request header block uses HPACK literals without Huffman coding; a response status is
    decoded only when it is an indexed static-table entry (200 is 0x88, 400 is 0x8c, 404
    is 0x8d)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        self.s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, 0, b""))
        self.buf = b""
        self.streams = {}  # id -> [status, body, done]
        self.goaway = None

    @staticmethod
    def frame(ftype, flags, stream, payload):
        return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags])
                + struct.pack(">I", stream) + payload)

    @staticmethod
    def literal(index, value):
        v = value.encode()
        # literal without indexing, indexed name: 4-bit prefix integer (RFC 7541 5.1)
        name = bytes([index]) if index < 15 else bytes([15, index - 15])
        return name + bytes([len(v)]) + v

    def read_frame(self):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            b = self.s.recv(65536)
            if not b:
                return None
            self.buf += b
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
        return ftype, flags, stream, payload

    def send(self, stream, path, accept=None):
        block = b"\x82\x86" + self.literal(4, path) + self.literal(1, "localhost")
        if accept:
            block += self.literal(19, accept)  # static index 19: accept
        self.streams[stream] = [None, b"", False]
        self.s.sendall(self.frame(1, 0x5, stream, block))  # END_STREAM | END_HEADERS

    def wait(self, stream):
        """Reads frames until stream ends; returns (status, body)."""
        st = self.streams[stream]
        while not st[2]:
            f = self.read_frame()
            if f is None:
                raise AssertionError("HTTP/2 connection closed before stream %d ended" % stream)
            ftype, flags, sid, payload = f
            if ftype == 4 and not flags & 1:  # SETTINGS: acknowledge
                self.s.sendall(self.frame(4, 1, 0, b""))
            elif ftype == 7:
                self.goaway = payload
                if int.from_bytes(payload[4:8], "big") != 0:
                    raise AssertionError("GOAWAY with an error: %r" % payload)
            elif sid in self.streams and ftype == 3:
                raise AssertionError("RST_STREAM on %d: %r" % (sid, payload))
            elif sid in self.streams and ftype == 1:
                self.streams[sid][0] = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400,
                                        0x8d: 404, 0x8e: 500}.get(payload[0], payload[0])
                self.streams[sid][2] = bool(flags & 1)
            elif sid in self.streams and ftype == 0:
                self.streams[sid][1] += payload
                self.streams[sid][2] = bool(flags & 1)
        return st[0], st[1]

    def get(self, stream, path, accept=None):
        self.send(stream, path, accept)
        return self.wait(stream)

    def closed_by_peer(self, timeout):
        """True if the server closes the connection within timeout seconds."""
        self.s.settimeout(timeout)
        try:
            while self.read_frame() is not None:
                pass
            return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def run_tests():
    """Runs the module's tests. Exit status: 0 all passed, 1 a failure, 77 (ctest's
    SKIP_RETURN_CODE) when something was skipped for a missing prerequisite, so that a
    skip shows in ctest instead of passing silently. Under CI=true nothing is skipped:
    require() fails instead."""
    prog = unittest.main(verbosity=2, exit=False)
    result = prog.result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)
