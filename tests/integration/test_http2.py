#!/usr/bin/python3
"""HTTP/2 is off by default; with --http2 each connection is bounded (guard.h): at most 16
requests in progress (the rest refused with REFUSED_STREAM), at most 4 on streams whose
client grants under 16 KiB of window, a connection whose responses are not taken for 10 s
gets GOAWAY and is closed, and a flood of reset streams (CVE-2023-44487) gets GOAWAY
(ENHANCE_YOUR_CALM) after 100, none of them counting a visit. 500 connections that set
INITIAL_WINDOW_SIZE=0, open 100 streams of /metrics and never read keep the server's RSS
(VmRSS, measured) under 64 MB, and it falls back once they close.

Frames are scripted with Debian's python3-h2 (hyperframe and hpack come with it), which
only /usr/bin/python3 has: ctest runs this file with it."""
import json
import os
import resource
import socket
import time

from harness import CI, SLOW, ServerTest, raw_exchange, require, run_tests

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.settings
    from hyperframe.frame import HeadersFrame, RstStreamFrame, SettingsFrame
except ImportError:  # pragma: no cover - reported by require() in each test
    h2 = None

JSON = "application/json"
ENHANCE_YOUR_CALM = 11
REFUSED_STREAM = 7
NO_ERROR = 0


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def literal(index, value):
    """HPACK literal header field without indexing, indexed name, no Huffman: stateless,
    so that one header block serves any number of streams."""
    v = value.encode()
    name = bytes([index]) if index < 15 else bytes([15, index - 15])
    assert len(v) < 127
    return name + bytes([len(v)]) + v


def request_block(path, accept=None):
    block = b"\x82\x86" + literal(4, path) + literal(1, "localhost")  # GET, http, :path
    return block + (literal(19, accept) if accept else b"")


class Client:
    """One HTTP/2 connection scripted with h2."""

    def __init__(self, port, settings=None, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.c = h2.connection.H2Connection(config=cfg)
        self.c.initiate_connection()
        if settings:
            self.c.update_settings(settings)
        self.flush()
        self.responses = {}  # stream -> [status, body, ended]
        self.resets = {}     # stream -> error code
        self.goaway = None   # (error code, last stream id, debug data)
        self.closed = False

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.s.sendall(data)

    def get(self, stream, path, accept=None, end=True):
        self.c.send_headers(stream, [(":method", "GET"), (":scheme", "http"),
                                     (":path", path), (":authority", "localhost")]
                            + ([("accept", accept)] if accept else []), end_stream=end)

    def pump(self, timeout):
        """Reads and handles what arrives for up to timeout seconds (less if the server
        closes); returns False once the connection is closed."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            return True
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                self.responses.setdefault(ev.stream_id, [None, b"", False])[0] = int(
                    dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                self.responses.setdefault(ev.stream_id, [None, b"", False])[1] += ev.data
                self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.responses.setdefault(ev.stream_id, [None, b"", False])[2] = True
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = int(ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                if self.goaway is None:
                    self.goaway = (int(ev.error_code), ev.last_stream_id, ev.additional_data)
        try:
            self.flush()
        except OSError:
            pass
        return True

    def until(self, done, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while not done() and time.monotonic() < deadline and not self.closed:
            self.pump(0.2)
        return done()

    def close(self):
        self.s.close()


class Http2(ServerTest):
    def setUp(self):
        super().setUp()
        require(h2 is not None, "python3-h2 (Debian) for /usr/bin/python3")

    def visits(self, srv):
        return srv.get_json("/visits")[1]["visits"]

    def test_off_by_default(self):
        srv = self.start()
        self.assertIn("http2 off)", srv.stdout())
        data = raw_exchange(srv.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", timeout=2)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:80])
        data = raw_exchange(srv.port, b"GET /visits HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, "
                            b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__"
                            b"\r\nConnection: close\r\n\r\n", timeout=2)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:80])  # no 101
        self.stop_ok(srv)
        srv = self.start(env={"VISITS_HTTP2": "on"})
        self.assertIn("http2 on)", srv.stdout())
        c = Client(srv.port)
        c.get(1, "/visits")
        c.flush()
        self.assertTrue(c.until(lambda: c.responses.get(1, [0, 0, 0])[2], 5))
        self.assertEqual(c.responses[1][0], 200)
        c.close()
        self.stop_ok(srv)

    def test_streams_per_connection_are_bounded(self):
        srv = self.start(args=["--http2"])
        c = Client(srv.port)
        streams = list(range(1, 81, 2))  # 40 requests at once
        for sid in streams:
            c.get(sid, "/health")
        c.flush()
        self.assertTrue(c.until(lambda: len(c.responses) + len(c.resets) >= len(streams)
                                and all(r[2] for r in c.responses.values()), 10))
        answered = sorted(s for s, r in c.responses.items() if r[0] == 200 and r[2])
        refused = sorted(s for s, e in c.resets.items() if e == REFUSED_STREAM)
        self.assertEqual(len(answered), 16, (answered, c.resets))
        self.assertEqual(len(refused), 24)
        self.assertEqual(answered, streams[:16])
        # the refused ones were not processed: the client may send them again
        for n, sid in enumerate(range(81, 81 + 2 * 24, 2)):
            c.get(sid, "/health")
            c.flush()
            self.assertTrue(c.until(lambda: c.responses.get(sid, [0, 0, 0])[2], 5))
            self.assertEqual(c.responses[sid][0], 200)
        self.assertIsNone(c.goaway)
        c.close()
        self.stop_ok(srv)

    def test_rapid_reset_gets_goaway_and_counts_nothing(self):
        srv = self.start(args=["--http2"])
        c = Client(srv.port)
        pairs, sid, t0 = 20000, 1, time.monotonic()
        sent = 0
        while sent < pairs and c.goaway is None and not c.closed:
            try:
                for _ in range(50):  # HEADERS of GET / and its RST_STREAM, 50 at a time
                    c.get(sid, "/", accept=JSON)
                    c.c.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
                    c.s.sendall(c.c.data_to_send())
                    sid += 2
                    sent += 1
            except OSError:
                break
            c.pump(0.01)
        c.until(lambda: c.goaway is not None, 5)
        took = time.monotonic() - t0
        self.assertIsNotNone(c.goaway, "no GOAWAY after %d reset streams" % sent)
        self.assertEqual(c.goaway[0], ENHANCE_YOUR_CALM, c.goaway)
        self.assertLess(sent, 1000, "GOAWAY came only after %d resets" % sent)
        self.assertTrue(c.until(lambda: c.closed, 5), "still open after its GOAWAY")
        c.close()
        # no reset stream counted a visit; the server answers others as before
        self.assertEqual(self.visits(srv), 0)
        self.assertEqual(srv.visit()[1]["visits"], 1)
        self.assertIn("too many streams reset or refused: GOAWAY (ENHANCE_YOUR_CALM)",
                      srv.wait_stdout("ENHANCE_YOUR_CALM"))
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"1\n")
        print("\n  rapid reset: GOAWAY (ENHANCE_YOUR_CALM) after %d HEADERS+RST_STREAM "
              "(%.2f s), 0 visits counted" % (sent, took))

    def test_a_connection_that_takes_no_data_is_closed(self):
        srv = self.start(args=["--http2"])
        c = Client(srv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        c.get(1, "/metrics")
        c.flush()
        t0 = time.monotonic()
        self.assertTrue(c.until(lambda: 1 in c.responses, 5), "no response headers")
        self.assertFalse(c.responses[1][2], "a body went through a zero window")
        # about 10 s later: GOAWAY, then the connection ends
        self.assertTrue(c.until(lambda: c.goaway is not None, 15), "no GOAWAY")
        goaway_at = time.monotonic()
        self.assertEqual(c.goaway[0], NO_ERROR)
        self.assertIn(b"stalled", c.goaway[2])
        self.assertTrue(c.until(lambda: c.closed, 5), "not closed after its GOAWAY")
        took = time.monotonic() - t0
        self.assertGreater(took, 9)
        c.close()
        self.assertIn("HTTP/2: a response not taken for 10 s", srv.wait_stdout("not taken"))
        print("\n  stall: GOAWAY %.1f s after the response began, closed at %.1f s"
              % (goaway_at - t0, took))
        self.stop_ok(srv)

    def test_zero_window_connections_keep_memory_bounded(self):
        n, streams = 500, 100
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 100:
            require(hard == resource.RLIM_INFINITY or hard >= n + 100, "RLIMIT_NOFILE")
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, hard))
        srv = self.start(args=["--http2", "--max-connections", str(n + 50)])
        pid = srv.proc.pid
        # warm up: the pages and buffers a server has after serving a little
        for _ in range(20):
            srv.request("GET", "/metrics")
        base = vmrss_kb(pid)
        preface = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                   + SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}).serialize())
        block = request_block("/metrics")
        burst = preface + b"".join(HeadersFrame(2 * k + 1, data=block,
                                                flags=["END_HEADERS", "END_STREAM"]).serialize()
                                   for k in range(streams))
        socks, peak = [], base
        try:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5 * SLOW)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(burst)
                socks.append(s)
                if i % 50 == 49:
                    peak = max(peak, vmrss_kb(pid))
            deadline = time.monotonic() + 2 * SLOW
            while time.monotonic() < deadline:  # all held, none read
                peak = max(peak, vmrss_kb(pid))
                time.sleep(0.1)
            self.assertIsNone(srv.proc.poll())
            self.assertEqual(srv.request("GET", "/health")[0], 200)
        finally:
            for s in socks:
                s.close()
        after, deadline = vmrss_kb(pid), time.monotonic() + 10 * SLOW
        while after > base + 8 * 1024 and time.monotonic() < deadline:
            time.sleep(0.2)
            after = vmrss_kb(pid)
        text = srv.metrics_when("visits_http_requests_total")
        if os.environ.get("VISITS_SANITIZE") != "1":  # sanitizers' own memory is not ours
            self.assertLess(peak, 64 * 1024, "VmRSS %d kB with %d zero-window connections"
                            % (peak, n))
            self.assertLess(after, base + 8 * 1024, "VmRSS %d kB 10 s after they closed "
                            "(%d kB before)" % (after, base))
        # each connection: 4 responses begun (the slow-window bound), the rest refused
        self.assertIn('visits_http_requests_total{route="/metrics",method="GET",status="200"}',
                      text)
        self.stop_ok(srv)
        print("\n  %d zero-window connections x %d streams of /metrics: VmRSS %d kB before, "
              "peak %d kB, %d kB after they closed" % (n, streams, base, peak, after))


if __name__ == "__main__":
    run_tests()
