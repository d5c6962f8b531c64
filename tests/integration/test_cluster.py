#!/usr/bin/env python3
"""GET /cluster: every pod's count and the total, from servers on loopback ports with
explicit peers (--peers) or a resolved name (--peers-dns), and from fake peers that answer
garbage, too much, a redirect, too slowly or never. Totals are asserted exactly."""
import http.client
import json
import os
import re
import socket
import threading
import time

from harness import SERVER, SLOW, H2Client, ServerTest, require, run_tests
from test_config import clean_env, run

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def free_ports(n):
    """n loopback ports that are free now (the servers are started on them right after)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cluster(srv, headers=None):
    """GET /cluster as JSON: (parsed body, seconds it took)."""
    t0 = time.monotonic()
    status, hdrs, body = srv.request("GET", "/cluster", headers or {})
    took = time.monotonic() - t0
    if status != 200:
        raise AssertionError("GET /cluster: %d %r" % (status, body))
    if hdrs["content-type"] != "application/json" or hdrs["vary"] != "Accept":
        raise AssertionError("GET /cluster headers: %r" % hdrs)
    return json.loads(body), took


def ok_pods(doc):
    return [(p["pod"], p["visits"]) for p in doc["pods"] if p["ok"]]


class FakePeer:
    """A loopback TCP server that answers any request the way `mode` says (one thread per
    connection; every wait bounded, all of them ended by close())."""

    def __init__(self, mode, body=None):
        self.mode, self.body = mode, body
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()

    def accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, conn):
        conn.settimeout(5)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                b = conn.recv(4096)
                if not b:
                    return
                head += b
            getattr(self, "mode_" + self.mode.replace("-", "_"))(conn)
        except OSError:
            pass  # the server under test gave up on us: that is the point
        finally:
            conn.close()

    @staticmethod
    def ok(conn, body, ctype=b"application/json"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (ctype, len(body), body))

    def mode_json(self, conn):
        self.ok(conn, json.dumps(self.body).encode())

    def mode_raw(self, conn):
        self.ok(conn, self.body)

    def mode_not_http(self, conn):
        conn.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")

    def mode_close(self, conn):
        pass

    def mode_status_500(self, conn):
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")

    def mode_redirect(self, conn):
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/visits\r\n"
                     b"Content-Length: 0\r\n\r\n")

    def mode_huge_length(self, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n")
        block = b"9" * 65536
        for _ in range(800):  # 50 MB at most, until the server hangs up
            if self.stop.is_set():
                return
            conn.sendall(block)

    def mode_huge_chunked(self, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"400\r\n" + b"{" * 1024 + b"\r\n"
        for _ in range(4096):  # 4 MB at most
            if self.stop.is_set():
                return
            conn.sendall(chunk)

    def mode_drip(self, conn):
        body = b'{"visits":1,"pod":"drip"}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):  # one byte every 100 ms: 2.5 s in all
            if self.stop.wait(0.1):
                return
            conn.sendall(body[i:i + 1])

    def mode_silent(self, conn):
        conn.settimeout(0.1)
        deadline = time.monotonic() + 10 * SLOW
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if conn.recv(1) == b"":
                    return  # the server hung up
            except socket.timeout:
                continue

    def close(self):
        self.stop.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


class ClusterTest(ServerTest):
    def fake(self, mode, body=None):
        f = FakePeer(mode, body)
        self.addCleanup(f.close)
        return f

    def pod(self, name, value, ports, port, peers=None, args=()):
        """A server named name with its own data directory holding value (None: no file),
        on port, whose --peers are the loopback addresses of ports."""
        data = os.path.join(self.tmp, name)
        os.mkdir(data)
        if value is not None:
            self.write_file(b"%d\n" % value, os.path.join(data, "visits"))
        if peers is None:
            peers = ",".join("127.0.0.1:%d" % p for p in ports)
        return self.start(data, args=["--port", str(port), "--pod-name", name,
                                      "--peers", peers] + list(args))

    def three(self):
        """pod-a (100 visits), pod-b (200) and pod-c (no file), each listing all three."""
        ports = free_ports(3)
        return [self.pod("pod-a", 100, ports, ports[0]), self.pod("pod-b", 200, ports, ports[1]),
                self.pod("pod-c", None, ports, ports[2])]


class Cluster(ClusterTest):
    def test_three_pods_exact_totals_from_every_pod(self):
        a, b, c = self.three()
        for srv, n in ((a, 3), (b, 5), (c, 7)):
            for _ in range(n):
                self.assertEqual(srv.visit()[0], 200)
        want = {"total": 315, "complete": True,
                "pods": [{"pod": "pod-a", "visits": 103, "ok": True},
                         {"pod": "pod-b", "visits": 205, "ok": True},
                         {"pod": "pod-c", "visits": 7, "ok": True}]}
        for srv in (a, b, c):
            doc, took = cluster(srv)
            self.assertEqual(doc, want)
            self.assertLess(took, 0.5 * SLOW)
        # exactly this body, with curl's Accept as well
        status, _, body = c.request("GET", "/cluster", {"Accept": "*/*"})
        self.assertEqual(body, json.dumps(want, separators=(",", ":")).encode() + b"\n")
        # /cluster counts nothing, and nobody asked itself over the network: each server
        # got one GET /visits from each of the other two per /cluster above (4 in all)
        for srv, name in ((a, "pod-a"), (b, "pod-b"), (c, "pod-c")):
            self.assertEqual(srv.get_json("/visits")[1]["visits"],
                             {"pod-a": 103, "pod-b": 205, "pod-c": 7}[name])
        self.assertEqual(self.file_bytes(os.path.join(self.tmp, "pod-b", "visits")), b"205\n")
        # four /cluster requests above (a, b, c, c): each asked the two others once (the
        # access log is written just after each response: wait for the lines)
        deadline = time.monotonic() + 3 * SLOW
        while True:
            calls = [len(re.findall(r'"GET /visits HTTP/1\.1" 200 \d+ \S+ '
                                    r'"visits-server/[^"]* \(cluster view\)"', s.stdout()))
                     for s in (a, b, c)]
            if calls == [3, 3, 2] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(calls, [3, 3, 2])
        # HTML for browsers: a table with every pod and the total
        status, hdrs, body = a.request("GET", "/cluster", HTML)
        self.assertEqual((status, hdrs["content-type"]), (200, "text/html; charset=utf-8"))
        html = body.decode()
        self.assertIn("<h1>Cluster total: 315 visits</h1>", html)
        for name, n in (("pod-a", 103), ("pod-b", 205), ("pod-c", 7)):
            self.assertIn("<tr><td>%s</td><td>%d</td><td>ok</td></tr>" % (name, n), html)
        self.assertIn("<tfoot><tr><th>Total</th><th>315</th><th>complete</th></tr></tfoot>",
                      html)
        # HEAD: the headers of the JSON answer, no body
        status, hdrs, body = a.request("HEAD", "/cluster")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(hdrs["content-length"]),
                         len(json.dumps(want, separators=(",", ":"))) + 1)
        # the / page links to /cluster
        self.assertIn('<a href="/cluster">', a.request("GET", "/", HTML)[2].decode())
        for srv in (a, b, c):
            self.stop_ok(srv)

    def test_a_stopped_peer_makes_the_answer_incomplete(self):
        a, b, c = self.three()
        for srv, n in ((a, 1), (b, 2), (c, 3)):
            for _ in range(n):
                srv.visit()
        self.stop_ok(b)
        for srv in (a, c):
            doc, took = cluster(srv)
            self.assertEqual(doc["total"], 101 + 3)
            self.assertIs(doc["complete"], False)
            self.assertEqual(ok_pods(doc), [("pod-a", 101), ("pod-c", 3)])
            bad, = [p for p in doc["pods"] if not p["ok"]]
            self.assertEqual(bad["pod"], "?")
            self.assertEqual(bad["address"], "127.0.0.1:%d" % b.port)
            self.assertIn("cannot connect", bad["error"])
            self.assertEqual(doc["pods"][-1], bad)  # failures after the pods that answered
            self.assertLess(took, 0.5 * SLOW)
        # back with the same volume and port: complete again
        b.start()
        doc, _ = cluster(a)
        self.assertEqual((doc["total"], doc["complete"]), (101 + 202 + 3, True))
        for srv in (a, b, c):
            self.stop_ok(srv)

    def test_no_peers_shows_this_pod_alone(self):
        self.write_file(b"41\n")
        srv = self.start(args=["--pod-name", "solo"])
        srv.visit()
        status, _, body = srv.request("GET", "/cluster", {"Accept": "application/json"})
        self.assertEqual((status, body),
                         (200, b'{"total":42,"complete":true,'
                               b'"pods":[{"pod":"solo","visits":42,"ok":true}]}\n'))
        html = srv.request("GET", "/cluster", HTML)[2].decode()
        self.assertIn("<h1>Cluster total: 42 visits</h1>", html)
        self.assertIn("<tr><td>solo</td><td>42</td><td>ok</td></tr>", html)
        self.assertEqual(self.file_bytes(), b"42\n")
        self.stop_ok(srv)

    def test_bad_peers_are_errors_of_their_own(self):
        me = "victim-0"
        good = self.fake("json", {"visits": 5, "pod": "fake-ok", "extra": [1, {"x": None}]})
        twins = [self.fake("json", {"pod": "twin", "visits": 4}),
                 self.fake("json", {"visits": 6, "pod": "twin"})]
        itself = self.fake("json", {"visits": 999, "pod": me})
        bad = {  # fake peer -> what its error entry says
            self.fake("raw", b"hello, world"): "not JSON",
            self.fake("raw", b'{"visits":"12","pod":"x"}'): '"visits" is not a number',
            self.fake("raw", b'{"visits":-3,"pod":"neg"}'): "not a non-negative integer",
            self.fake("raw", b'{"visits":1.5,"pod":"frac"}'): "not a non-negative integer",
            self.fake("raw", b'{"visits":18446744073709551616,"pod":"big"}'): "is over",
            self.fake("raw", b'{"visits":3}'): 'no "pod" member',
            self.fake("raw", b'{"visits":3,"pod":"a\\u0001b"}'): "control character",
            self.fake("raw", b'{"visits":3,"pod":"x","visits":4}'): "given twice",
            self.fake("raw", b'{"visits":1,"pod":"x","n":' + b"[" * 40 + b"]" * 40 + b"}"):
                "nested too deeply",
            self.fake("raw", b"[" * 100000): "response body of 100000 bytes (limit 4096)",
            self.fake("raw", b'{"visits":3,"pod":"x"} trailing'): "trailing data",
            self.fake("raw", b""): "empty",
            self.fake("not-http"): "no valid response",
            self.fake("close"): "no valid response",
            self.fake("status-500"): "status 500",
            self.fake("redirect"): "redirect (status 302 to http://127.0.0.1:1/visits) not "
                                   "followed",
            self.fake("huge-length"): "response body of 50000000 bytes (limit 4096)",
            self.fake("huge-chunked"): "response body over 4096 bytes",
            self.fake("drip"): "timeout (no answer within 400 ms)",
            self.fake("silent"): "timeout (no answer within 400 ms)",
        }
        outcomes = {"ok": 4, "timeout": 2, "bad_status": 2, "io_error": 2, "too_large": 3,
                    "bad_body": 11, "connect_error": 0, "cancelled": 0}
        peers = [good] + twins + [itself] + list(bad)
        self.write_file(b"10\n")
        srv = self.start(args=["--pod-name", me, "--peer-timeout-ms", "400", "--peers",
                               ",".join(p.address for p in peers)])
        doc, took = cluster(srv)
        # within the timeout, give or take the scheduler
        self.assertGreaterEqual(took, 0.35)
        self.assertLess(took, 0.4 + 0.6 * SLOW)
        self.assertEqual(doc["total"], 10 + 5 + 6)
        self.assertIs(doc["complete"], False)
        # one entry per pod: the twins (one pod at two addresses) once, with the larger
        # value; the peer that says it is this pod is this pod, counted from memory
        self.assertEqual(ok_pods(doc), [("fake-ok", 5), ("twin", 6), (me, 10)])
        errors = {p["address"]: p["error"] for p in doc["pods"] if not p["ok"]}
        self.assertEqual(set(errors), {f.address for f in bad})
        for f, want in bad.items():
            self.assertIn(want, errors[f.address], f.mode)
        self.assertTrue(all(p["pod"] == "?" for p in doc["pods"] if not p["ok"]))
        addresses = [p["address"] for p in doc["pods"] if not p["ok"]]
        self.assertEqual(addresses, sorted(addresses))
        text = srv.metrics_when(*('visits_peer_requests_total{outcome="%s"} %d\n' % kv
                                  for kv in outcomes.items()))
        for kv in outcomes.items():
            self.assertIn('\nvisits_peer_requests_total{outcome="%s"} %d\n' % kv, text)
        # again, five at once: the same answer each time, and the server stays well
        results = []
        threads = [threading.Thread(target=lambda: results.append(cluster(srv)[0]))
                   for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20 * SLOW)
        self.assertEqual(len(results), 5)
        for r in results:
            self.assertEqual((r["total"], ok_pods(r)), (21, ok_pods(doc)))
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        self.assertEqual(self.file_bytes(), b"10\n")
        self.stop_ok(srv)

    def test_client_that_leaves_cancels_the_peer_requests(self):
        silent = self.fake("silent")
        srv = self.start(args=["--peer-timeout-ms", "3000", "--peers", silent.address,
                               "--http2"])
        # HTTP/2: closing the connection ends its streams at once
        h2 = H2Client(srv.port)
        h2.send(1, "/cluster")
        time.sleep(0.2)
        h2.close()
        want = 'visits_peer_requests_total{outcome="cancelled"} 1\n'
        self.assertIn("\n" + want, srv.metrics_when(want, timeout=2.5))
        # HTTP/1: libh2o 2.2.5 does not read a connection while its request is handled,
        # so the departure is seen when the answer is written, at the deadline
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /cluster HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        s.close()
        want = 'visits_peer_requests_total{outcome="timeout"} 1\n'
        self.assertIn("\n" + want, srv.metrics_when(want, timeout=5))
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        self.stop_ok(srv)

    def test_in_flight_limit_answers_503(self):
        silent = self.fake("silent")
        srv = self.start(threads=1, args=["--peer-timeout-ms", "1500", "--peers",
                                          silent.address])
        socks = []
        for _ in range(70):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW)
            s.sendall(b"GET /cluster HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            socks.append(s)
        statuses = []
        for s in socks:
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
            statuses.append(int(data.split(b" ", 2)[1]))
            if statuses[-1] == 503:
                self.assertIn(b"too many /cluster requests in flight", data)
        self.assertEqual(sorted(statuses), [200] * 64 + [503] * 6)
        self.stop_ok(srv)

    def test_concurrent_cluster_requests_under_load_stay_correct(self):
        servers = self.three()
        base = 300  # pod-a 100 + pod-b 200 + pod-c 0
        lock = threading.Lock()
        acked = [0]    # visits answered 200 so far
        started = [0]  # visits sent so far
        failures, answers = [], []
        done = threading.Event()
        deadline = time.monotonic() + 60 * SLOW

        def visitor(i):
            conn = http.client.HTTPConnection("127.0.0.1", servers[i % 3].port,
                                              timeout=10 * SLOW)
            for _ in range(150):
                if time.monotonic() > deadline:
                    break
                with lock:
                    started[0] += 1
                conn.request("GET", "/", headers={"Accept": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append("GET / %d" % r.status)
                    continue
                with lock:
                    acked[0] += 1
            conn.close()

        def watcher(i):
            srv = servers[i % 3]
            for _ in range(200):
                if done.is_set() or time.monotonic() > deadline:
                    break
                with lock:
                    low = acked[0]
                doc, _ = cluster(srv)
                with lock:
                    high = started[0]
                answers.append(doc["total"])
                if not doc["complete"] or not low + base <= doc["total"] <= high + base:
                    failures.append("total %d not in [%d, %d] (complete %s)"
                                    % (doc["total"], low + base, high + base, doc["complete"]))

        visitors = [threading.Thread(target=visitor, args=(i,)) for i in range(6)]
        watchers = [threading.Thread(target=watcher, args=(i,)) for i in range(3)]
        for t in visitors + watchers:
            t.start()
        for t in visitors:
            t.join()
        done.set()
        for t in watchers:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(acked[0], 900)
        self.assertGreaterEqual(len(answers), 10)
        for srv in servers:
            doc, _ = cluster(srv)
            self.assertEqual((doc["total"], doc["complete"]), (base + 900, True))
            self.assertEqual(ok_pods(doc), [("pod-a", 400), ("pod-b", 500), ("pod-c", 300)])
        for srv in servers:
            self.stop_ok(srv)

    def test_peers_by_name(self):
        """--peers-dns takes every address of a name (here localhost) and --peers a name's
        first one; a name that does not resolve is an error entry."""
        ports = free_ports(2)
        b = self.pod("pod-b", 7, [], ports[1], peers="")
        a = self.pod("pod-a", 1, [], ports[0], peers="localhost:%d,%s" % (
            ports[0], "no-such-host.invalid:8080"), args=["--peers-dns", "localhost:%d" % b.port])
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(
            "localhost", b.port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
            socket.AI_ADDRCONFIG)})
        require("127.0.0.1" in addrs, "localhost does not resolve to 127.0.0.1 here: %r" % addrs)
        doc, _ = cluster(a)
        self.assertEqual(ok_pods(doc), [("pod-a", 1), ("pod-b", 7)])
        self.assertEqual(doc["total"], 8)
        errors = {p["address"]: p["error"] for p in doc["pods"] if not p["ok"]}
        unresolved = errors.pop("no-such-host.invalid:8080")
        self.assertTrue("cannot resolve no-such-host.invalid" in unresolved
                        or "not resolved within" in unresolved, unresolved)
        # an IPv6 localhost, if the host has one, is an address nobody listens on here
        self.assertEqual(set(errors), {"[%s]:%d" % (x, b.port) for x in addrs if ":" in x})
        text = a.request("GET", "/metrics")[2].decode()
        self.assertRegex(text, r'\nvisits_peer_dns_lookups_total\{result="ok"\} [1-9]')
        self.assertRegex(text, r'\nvisits_peer_dns_lookups_total\{result="error"\} [1-9]')
        for srv in (a, b):
            self.stop_ok(srv)


class ClusterConfig(ClusterTest):
    def assert_usage_error(self, args, mention, env=None):
        rc, out, err = run(args, env)
        self.assertEqual((rc, out), (2, ""), (args, err))
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(mention, err)

    def test_bad_peer_settings(self):
        for args, mention in (
                (["--peers", "10.0.0.1"], "--peers: invalid value '10.0.0.1': '10.0.0.1': no "
                                          "port (expected HOST:PORT[,HOST:PORT...])"),
                (["--peers", "a:0"], "'a:0': the port must be 1..65535"),
                (["--peers", "a:65536"], "the port must be 1..65535"),
                (["--peers", "a:80,,b:80"], "'': no port"),
                (["--peers", "::1:80"], "IPv6 goes in brackets"),
                (["--peers", "[::1]"], "expected [IPv6]:PORT"),
                (["--peers", "[1.2.3.4]:80"], "is not an IPv6 address"),
                (["--peers", "bad host:80"], "neither an IP address nor a DNS name"),
                (["--peers", ",".join("h%d:1" % i for i in range(65))], "more than 64 peers"),
                (["--peers-dns", "a:1,b:2"], "--peers-dns: invalid value 'a:1,b:2': one "
                                             "NAME:PORT only"),
                (["--peers-dns", "visits-headless"], "'visits-headless': no port (expected "
                                                     "NAME:PORT)"),
                (["--peer-timeout-ms", "0"], "--peer-timeout-ms: invalid value '0' "
                                             "(expected milliseconds 1..60000)"),
                (["--peer-timeout-ms", "60001"], "--peer-timeout-ms"),
                (["--peer-timeout-ms", "1s"], "--peer-timeout-ms")):
            self.assert_usage_error(args, mention)
        for name, value in (("VISITS_PEERS", "x"), ("VISITS_PEERS_DNS", "a:b"),
                            ("VISITS_PEER_TIMEOUT_MS", "-1")):
            self.assert_usage_error([], "%s: invalid value '%s'" % (name, value),
                                    clean_env(**{name: value}))

    def test_environment_configures_peers(self):
        peer = self.fake("json", {"visits": 2, "pod": "env-peer"})
        silent = self.fake("silent")
        env = clean_env(VISITS_PEERS="%s,%s" % (peer.address, silent.address),
                        VISITS_PEER_TIMEOUT_MS="250", VISITS_PEERS_DNS="")
        srv = self.start(env=env, args=["--pod-name", "env-0"])
        doc, took = cluster(srv)
        self.assertEqual(ok_pods(doc), [("env-0", 0), ("env-peer", 2)])
        self.assertEqual(doc["pods"][-1]["error"], "timeout (no answer within 250 ms)")
        self.assertLess(took, 0.25 + 0.6 * SLOW)
        self.stop_ok(srv)


if __name__ == "__main__":
    require(os.access(SERVER, os.X_OK), "VISITS_SERVER is not set")
    run_tests()
