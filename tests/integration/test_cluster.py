#!/usr/bin/env python3
"""The cluster's count: every pod keeps every pod's count (a grow-only counter of slots,
one per pod and volume, merged by maximum) and GET /cluster answers from that copy.

Servers on loopback ports with explicit peers (--peers) or a resolved name (--peers-dns),
and fake peers that answer GET /slots with garbage, too much, too deep, wrong types, values
at and above 2^64 - 1, thousands of slots, a redirect, too slowly or never. A poller records
every total each server reports while visits flow, servers are killed (kill -9), restarted
on an empty data directory (a lost volume) and from an older copy of their directory (a
rollback), and dropped from the others' peer lists (a scale-down): no recorded total ever
goes down or falls below what was acknowledged."""
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import threading
import time

from harness import SERVER, SLOW, ServerTest, require, run_tests
from test_config import clean_env, run

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SYNC_MS = 100  # a round of the exchange this often in these tests
VOLUME_RE = re.compile(r"[0-9a-f]{16}")


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


def cluster(srv, headers=None, conn=None):
    """GET /cluster as JSON (status 200 required): the parsed body."""
    status, hdrs, body = srv.request("GET", "/cluster", headers or {}, conn=conn)
    if status != 200:
        raise AssertionError("GET /cluster: %d %r" % (status, body))
    if hdrs["content-type"] != "application/json" or hdrs["vary"] != "Accept":
        raise AssertionError("GET /cluster headers: %r" % hdrs)
    return json.loads(body)


def pods(doc):
    """{pod: visits} of a /cluster answer."""
    return {p["pod"]: p["visits"] for p in doc["pods"]}


def row(doc, name):
    found = [p for p in doc["pods"] if p["pod"] == name]
    if len(found) != 1:
        raise AssertionError("no single row for %s in %r" % (name, doc))
    return found[0]


def wait_for(what, check, timeout):
    """Polls check() until it returns a true value; fails with what and the last value."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, http.client.HTTPException, AssertionError, ValueError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.02)
    raise AssertionError("%s: not within %.1f s (last: %r)" % (what, timeout * SLOW, last))


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    if m is None:
        raise AssertionError("no %s in /metrics" % name)
    return float(m.group(1))


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
        self.requests = []
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
            self.requests.append(head.split(b"\r\n", 1)[0])
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
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/slots\r\n"
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
        chunk = b"4000\r\n" + b" " * 16384 + b"\r\n"
        for _ in range(256):  # 4 MB at most
            if self.stop.is_set():
                return
            conn.sendall(chunk)

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

    def pod(self, name, port, peers, data=None, value=None, args=(), start=True):
        """A server named name on port, whose --peers are the loopback addresses of the
        ports in peers (itself may be among them), with its own data directory (made,
        holding value unless None)."""
        if data is None:
            data = os.path.join(self.tmp, name)
            os.mkdir(data)
            if value is not None:
                self.write_file(b"%d\n" % value, os.path.join(data, "visits"))
        srv = self.server(data, args=[
            "--port", str(port), "--pod-name", name,
            "--peers", ",".join("127.0.0.1:%d" % p for p in peers),
            "--sync-peers-ms", str(SYNC_MS), "--peer-timeout-ms", "500"] + list(args))
        srv.name = name
        return srv.start() if start else srv

    def wait_ready(self, srv, timeout=10):
        return wait_for("%s ready" % srv.name,
                        lambda: srv.request("GET", "/ready")[0] == 200, timeout)


class Poller:
    """Asks every live server for GET /cluster every few ms and records each total with
    the bounds it must lie in: at least what that server must know at that moment (the
    floor, taken before the request), at most every visit sent so far (taken after)."""

    def __init__(self, test):
        self.test = test
        self.lock = threading.Lock()
        self.live = {}  # name -> server
        self.records = []  # (name, total, floor, ceiling)
        self.floor = 0  # every server's total is at least this (after a convergence)
        self.own = {}  # name -> visits that server acknowledged since the floor was set
        self.acked = 0  # visits acknowledged, all servers
        self.sent = 0  # visits sent, all servers
        self.per_server = {}  # name -> visits that server acknowledged in all
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self):
        self.thread.start()

    def set_live(self, srv, live=True):
        with self.lock:
            if live:
                self.live[srv.name] = srv
            else:
                self.live.pop(srv.name, None)

    def loop(self):
        conns = {}
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            with self.lock:
                live = list(self.live.items())
            for name, srv in live:
                with self.lock:
                    floor = self.floor + self.own.get(name, 0)
                key = (name, srv.port, srv.runs)
                try:
                    conn = conns.get(key) or srv.conn(timeout=2)
                    conns[key] = conn
                    status, _, body = srv.request("GET", "/cluster", conn=conn)
                except (OSError, http.client.HTTPException):
                    conns.pop(key, None)
                    continue  # a server being killed or restarted
                if status == 503:
                    continue  # recovering: no total shown
                if status != 200:
                    self.errors.append("%s: GET /cluster %d %r" % (name, status, body[:200]))
                    continue
                total = json.loads(body)["total"]
                with self.lock:
                    self.records.append((name, total, floor, self.sent))
            time.sleep(0.01)
        for c in conns.values():
            c.close()

    def visits(self, srv, n):
        """n visits to srv, one at a time; each acknowledged one raises the floor of srv."""
        conn = srv.conn()
        try:
            for _ in range(n):
                with self.lock:
                    self.sent += 1
                status, body = srv.visit(conn=conn)
                self.test.assertEqual(status, 200, body)
                with self.lock:
                    self.acked += 1
                    self.own[srv.name] = self.own.get(srv.name, 0) + 1
                    self.per_server[srv.name] = self.per_server.get(srv.name, 0) + 1
        finally:
            conn.close()

    def visits_in_parallel(self, counts):
        threads = [threading.Thread(target=self.visits, args=(srv, n)) for srv, n in counts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    def converge(self, servers, base=0):
        """Waits until every server's total is every visit acknowledged (plus base, what
        the files held at the start); from then on no total may be lower."""
        want = self.acked + base
        for srv in servers:
            wait_for("%s total %d" % (srv.name, want), lambda: cluster(srv)["total"] == want,
                     10)
        with self.lock:
            self.floor = want
            self.own = {}
        return want

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        return self.records


class Replicated(ClusterTest):
    def test_totals_never_go_down(self):
        """Three servers, visits to all of them, and a poller throughout: a round makes
        every total equal; kill -9, a lost volume, a rollback and a scale-down never lower
        a total or hide an acknowledged visit."""
        ports = free_ports(3)
        names = ("pod-a", "pod-b", "pod-c")
        a, b, c = (self.pod(n, p, ports, args=["--recover-ms", "4000"])
                   for n, p in zip(names, ports))
        for srv in (a, b, c):
            self.wait_ready(srv)
        poll = Poller(self)
        self.addCleanup(poll.stop.set)
        for srv in (a, b, c):
            poll.set_live(srv)
        poll.start()

        # 1. visits to all three: after a round every total is every acknowledged visit
        poll.visits_in_parallel([(a, 20), (b, 30), (c, 25)])
        t0 = time.monotonic()
        total = poll.converge((a, b, c))
        self.assertEqual(total, 75)
        took = time.monotonic() - t0
        self.assertLess(took, (3 * SYNC_MS / 1000 + 1) * SLOW)
        doc = cluster(a)
        self.assertEqual(pods(doc), {"pod-a": 20, "pod-b": 30, "pod-c": 25})
        self.assertEqual(doc["slots"], 3)
        self.assertEqual(doc["pod"], "pod-a")
        self.assertRegex(doc["slot"], r"^pod-a\.[0-9a-f]{16}$")
        self.assertTrue(all(p["answered"] for p in doc["pods"]))
        # nobody asks itself: a's peers are b and c only
        self.assertEqual(sorted(p["address"] for p in doc["peers"]),
                         sorted("127.0.0.1:%d" % p for p in ports[1:]))
        self.assertTrue(all(p["ok"] for p in doc["peers"]), doc["peers"])
        # the replicas on disk, cat-able, one per other slot
        vol = {s.name: self.file_bytes(os.path.join(s.data_dir, "volume-id")).decode()
               for s in (a, b, c)}
        for s in (a, b, c):
            self.assertRegex(vol[s.name], r"^[0-9a-f]{16}\n$")
        self.assertEqual(sorted(os.listdir(os.path.join(a.data_dir, "slots"))),
                         ["pod-b." + vol["pod-b"].strip(), "pod-c." + vol["pod-c"].strip()])
        self.assertEqual(self.file_bytes(os.path.join(a.data_dir, "slots",
                                                      "pod-b." + vol["pod-b"].strip())),
                         b"30\n")
        # an older copy of b's directory, for the rollback below
        snapshot = os.path.join(self.tmp, "pod-b-snapshot")
        shutil.copytree(b.data_dir, snapshot, symlinks=True)

        # 2. kill -9 pod-c: the others keep its count, its row turns stale
        poll.set_live(c, False)
        c.kill()
        poll.visits_in_parallel([(a, 10), (b, 10)])
        poll.converge((a, b))
        for srv in (a, b):
            doc = wait_for("pod-c stale on %s" % srv.name,
                           lambda: (lambda d: d if not row(d, "pod-c")["answered"] and
                                    row(d, "pod-c")["age_seconds"] > 0.2 else None)(cluster(srv)),
                           5)
            self.assertEqual(row(doc, "pod-c")["visits"], 25)
            bad, = [p for p in doc["peers"] if p["address"] == "127.0.0.1:%d" % ports[2]]
            self.assertEqual((bad["ok"], bad["pod"]), (False, "pod-c"))
            self.assertIn("cannot connect", bad["error"])
            html = srv.request("GET", "/cluster", HTML)[2].decode()
            self.assertIn("<h1>Cluster total: %d visits</h1>" % poll.acked, html)
            self.assertRegex(html, r"<strong>stale</strong>: last answer \d+\.\d s ago")
            self.assertGreater(metric(srv.request("GET", "/metrics")[2].decode(),
                                      "visits_cluster_stalest_slot_age_seconds"), 0.2)

        # 3. pod-c again, on an empty data directory (a lost volume): its old slot stays,
        # new visits add on top
        lost = os.path.join(self.tmp, "pod-c-new")
        os.mkdir(lost)
        c = self.pod("pod-c", ports[2], ports, data=lost, args=["--recover-ms", "4000"])
        self.wait_ready(c)
        poll.set_live(c)
        new_vol = self.file_bytes(os.path.join(lost, "volume-id")).decode().strip()
        self.assertNotEqual(new_vol, vol["pod-c"].strip())
        # it learned its old slot from the peers during its recovery
        self.assertEqual(self.file_bytes(os.path.join(lost, "slots",
                                                      "pod-c." + vol["pod-c"].strip())),
                         b"25\n")
        poll.visits_in_parallel([(c, 7), (a, 3)])
        poll.converge((a, b, c))
        for srv in (a, b, c):
            r = row(cluster(srv), "pod-c")
            self.assertEqual(r["visits"], 32)
            self.assertEqual(sorted((s["volume"], s["visits"]) for s in r["slots"]),
                             sorted([(vol["pod-c"].strip(), 25), (new_vol, 7)]))

        # 4. pod-b from an older copy of its directory (a rollback): it raises its own
        # count back before it turns ready
        b_acked = poll.per_server["pod-b"]
        self.assertEqual(b_acked, 40)
        poll.set_live(b, False)
        b.kill()
        shutil.rmtree(b.data_dir)
        shutil.copytree(snapshot, b.data_dir, symlinks=True)
        self.assertEqual(self.file_bytes(os.path.join(b.data_dir, "visits")), b"30\n")
        b.start()
        ready = wait_for("pod-b ready", lambda: b.request("GET", "/ready")[0] == 200, 10)
        self.assertTrue(ready)
        self.assertEqual(b.get_json("/visits")[1]["visits"], b_acked)
        self.assertEqual(self.file_bytes(os.path.join(b.data_dir, "visits")), b"40\n")
        self.assertIn("slot pod-b.%s: the counter was behind the peers' copy (30 < 40): raised "
                      "it to 40" % vol["pod-b"].strip(),
                      b.wait_stdout("raised it to 40"))
        out = b.wait_stdout("recovery: every peer answered")
        self.assertLess(out.index("raised it to 40"), out.index("recovery: every peer answered"))
        poll.set_live(b)
        poll.visits_in_parallel([(b, 5)])
        poll.converge((a, b, c))
        self.assertEqual(row(cluster(a), "pod-b")["visits"], 45)

        # 5. pod-c leaves the others' peer lists (a scale-down): its slots stay in every
        # total, and the stalest-peer age no longer counts it
        for srv in (a, b):
            poll.set_live(srv, False)
            self.stop_ok(srv)
            srv.args[srv.args.index("--peers") + 1] = "127.0.0.1:%d,127.0.0.1:%d" % tuple(
                ports[:2])
            srv.start()
            self.wait_ready(srv)
            poll.set_live(srv)
        poll.set_live(c, False)
        self.stop_ok(c)
        poll.visits_in_parallel([(a, 4), (b, 6)])
        total = poll.converge((a, b))
        self.assertEqual(total, 20 + 30 + 25 + 10 + 10 + 7 + 3 + 5 + 4 + 6)
        for srv in (a, b):
            doc = cluster(srv)
            self.assertEqual(row(doc, "pod-c")["visits"], 32)
            self.assertEqual([p["address"] for p in doc["peers"]],
                             ["127.0.0.1:%d" % p for p in ports[:2] if p != srv.port])
            text = srv.request("GET", "/metrics")[2].decode()
            self.assertLess(metric(text, "visits_cluster_stalest_slot_age_seconds"), 2 * SLOW)
            self.assertEqual(metric(text, "visits_cluster_slots"), 4)
            self.assertEqual(metric(text, "visits_cluster_total"), total)

        # every total each server reported, in order: never lower than before, never
        # below what it had to know, never above what was sent
        records = poll.finish()
        self.assertEqual(poll.errors, [])
        last = {}
        for name, total, floor, ceiling in records:
            self.assertGreaterEqual(total, last.get(name, 0),
                                    "%s went down from %d to %d" % (name, last.get(name, 0),
                                                                    total))
            self.assertGreaterEqual(total, floor, "%s showed %d, below %d acknowledged"
                                    % (name, total, floor))
            self.assertLessEqual(total, ceiling, "%s showed %d, more than %d sent"
                                 % (name, total, ceiling))
            last[name] = total
        self.assertGreater(len(records), 100)
        self.assertEqual(set(last), set(names))
        for srv in (a, b):
            self.stop_ok(srv)


class Recovery(ClusterTest):
    def test_not_ready_until_the_peers_answered_or_the_bound(self):
        silent = self.fake("silent")
        srv = self.start(args=["--pod-name", "lonely", "--peers", silent.address,
                               "--peer-timeout-ms", "200", "--recover-ms", "1500"])
        t0 = time.monotonic()
        status, _, body = srv.request("GET", "/ready")
        self.assertEqual((status, json.loads(body)),
                         (503, {"status": "not ready",
                                "reason": "recovering the count from peers"}))
        status, hdrs, body = srv.request("GET", "/cluster")
        self.assertEqual((status, hdrs.get("retry-after")), (503, "1"))
        self.assertIn("recovering the count from peers", json.loads(body)["error"])
        # a visit straight to the pod is refused meanwhile: the raise that ends the
        # recovery could absorb it (the file holds nothing it counted)
        status, hdrs, body = srv.request("GET", "/", {"Accept": "application/json"})
        self.assertEqual((status, hdrs.get("retry-after")), (503, "1"))
        self.assertIn("the visit was not counted: recovering the count from peers",
                      json.loads(body)["error"])
        self.assertFalse(os.path.exists(os.path.join(self.data, "visits")))
        # /slots answers meanwhile: the others' recovery may need it
        status, _, body = srv.request("GET", "/slots")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["slots"][0]["visits"], 0)
        wait_for("ready", lambda: srv.request("GET", "/ready")[0] == 200, 5)
        self.assertGreater(time.monotonic() - t0, 1.0)
        self.assertRegex(srv.stderr(),
                         r"recovery incomplete after \d+ ms \(--recover-ms\): 0 of 1 peer\(s\) "
                         r"answered; ready with slot lonely\.[0-9a-f]{16} = 0")
        doc = cluster(srv)
        self.assertEqual(doc["total"], 0)
        self.assertEqual(doc["peers"][0]["error"], "timeout (no answer within 200 ms)")
        self.stop_ok(srv)

    def test_no_peers_or_no_recovery_is_ready_at_once(self):
        self.write_file(b"41\n")
        srv = self.start(args=["--pod-name", "solo"])
        self.assertEqual(srv.request("GET", "/ready")[0], 200)
        srv.visit()
        doc = cluster(srv)
        self.assertEqual((doc["total"], pods(doc), doc["peers"]), (42, {"solo": 42}, []))
        self.assertIsNone(doc["last_exchange_age_seconds"])  # no peers, no round
        html = srv.request("GET", "/cluster", HTML)[2].decode()
        self.assertIn("<h1>Cluster total: 42 visits</h1>", html)
        self.assertEqual(len(re.findall(r'<span class="bar"', html)), 1)
        self.stop_ok(srv)
        silent = self.fake("silent")
        srv = self.start(args=["--pod-name", "solo", "--peers", silent.address,
                               "--recover-ms", "0"])
        self.assertEqual(srv.request("GET", "/ready")[0], 200)
        self.stop_ok(srv)

    def test_a_peer_that_holds_our_slot_higher_raises_the_counter(self):
        """What recovery does, and what a peer is trusted with: its copy of our slot."""
        self.write_file(b"5\n")
        srv = self.start(args=["--pod-name", "me", "--recover-ms", "0"])
        vol = self.file_bytes(os.path.join(self.data, "volume-id")).decode().strip()
        self.stop_ok(srv)
        mine = "me." + vol
        peer = self.fake("json", {"pod": "other", "slot": "other.00000000000000aa",
                                  "slots": [{"slot": "other.00000000000000aa", "visits": 3},
                                            {"slot": mine, "visits": 90}]})
        srv = self.start(args=["--pod-name", "me", "--peers", peer.address,
                               "--sync-peers-ms", "100"])
        wait_for("ready", lambda: srv.request("GET", "/ready")[0] == 200, 5)
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 90)
        self.assertEqual(self.file_bytes(), b"90\n")
        self.assertEqual(srv.visit()[1]["visits"], 91)
        self.assertEqual(cluster(srv)["total"], 94)
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "slots"))),
                         ["other.00000000000000aa"])  # our own slot is never a replica
        self.stop_ok(srv)


class Hostile(ClusterTest):
    def test_bad_answers_are_that_peers_error(self):
        vol = "0123456789abcdef"

        def answer(*slots, slot="evil." + vol):
            return json.dumps({"pod": "x", "slot": slot, "slots": [
                {"slot": s, "visits": v} for s, v in slots]}).encode()

        good = self.fake("json", {"pod": "good-0", "slot": "good-0." + vol, "extra": [1, None],
                                  "slots": [{"slot": "good-0." + vol, "visits": 5},
                                            {"slot": "old-1." + vol, "visits": 18446744073709551615
                                             - 100}]})
        many = b'{"slot":"evil.%s","slots":[%s]}' % (vol.encode(), b",".join(
            b'{"slot":"p%d.%s","visits":1}' % (i, vol.encode()) for i in range(5000)))
        bad = {  # fake peer -> what its error says
            self.fake("raw", b"hello, world"): "not JSON",
            self.fake("raw", answer(("ok-1." + vol, 1), ("x." + vol, 2)).replace(b"2}", b'"2"}')):
                '"visits" is not an integer',
            self.fake("raw", answer(("neg." + vol, -3))): '"visits" is negative (-3)',
            self.fake("raw", answer(("frac." + vol, 1.5))): '"visits" is not an integer',
            self.fake("raw", answer(("big." + vol, 18446744073709551616))):
                "number out of range at byte",
            self.fake("raw", answer(("nopod", 3))): "a slot id is POD.VOLUMEID",
            self.fake("raw", answer(("../../x." + vol, 3))): "must be escaped",
            self.fake("raw", answer(("d." + vol, 3), ("d." + vol, 4))): "given twice",
            self.fake("raw", b'{"slot":"evil.%s","slots":[],"n":%s%s}'
                      % (vol.encode(), b"[" * 40, b"]" * 40)): "nested deeper than 4",
            self.fake("raw", many): '"slots" has 5000 entries, at most 4096',
            self.fake("raw", b"[" * 2000000): "response body of 2000000 bytes (limit 1048576)",
            self.fake("raw", b'{"slots":[]}'): 'no "slot" member',
            self.fake("raw", b""): "empty",
            self.fake("not-http"): "no valid response",
            self.fake("close"): "no valid response",
            self.fake("status-500"): "status 500",
            self.fake("redirect"): "redirect (status 302 to http://127.0.0.1:1/slots) not "
                                   "followed",
            self.fake("huge-length"): "response body of 50000000 bytes (limit 1048576)",
            self.fake("huge-chunked"): "response body over 1048576 bytes",
            self.fake("silent"): "timeout (no answer within 400 ms)",
        }
        self.write_file(b"10\n")
        srv = self.start(args=["--pod-name", "victim-0", "--peer-timeout-ms", "400",
                               "--sync-peers-ms", "200", "--recover-ms", "0",
                               "--peers", ",".join(p.address for p in [good] + list(bad))])
        # two rounds with the same outcome
        doc = wait_for("two rounds", lambda: (lambda d: d if [
            p for p in d["peers"] if p["address"] == good.address and p["ok"]] and len(
            good.requests) >= 2 else None)(cluster(srv)), 10)
        self.assertEqual(pods(doc), {"victim-0": 10, "good-0": 5,
                                     "old-1": 18446744073709551615 - 100})
        self.assertEqual(doc["total"], 18446744073709551615 - 85)
        errors = {p["address"]: p["error"] for p in doc["peers"] if not p["ok"]}
        self.assertEqual(set(errors), {f.address for f in bad})
        for f, want in bad.items():
            self.assertIn(want, errors[f.address], f.mode)
        # nothing of a bad answer was merged, not even its good slots
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "slots"))),
                         ["good-0." + vol, "old-1." + vol])
        self.assertEqual(self.file_bytes(os.path.join(self.data, "slots", "old-1." + vol)),
                         b"18446744073709551515\n")
        # every peer's rounds, by pod name once known, else by address
        text = srv.request("GET", "/metrics")[2].decode()
        self.assertRegex(text, r'\nvisits_peer_sync_rounds_total\{peer="good-0",result="ok"\} '
                               r'[1-9]')
        for f in bad:
            self.assertRegex(text, r'\nvisits_peer_sync_rounds_total\{peer="%s",result="error"\} '
                                   r'[1-9]' % re.escape(f.address))
        self.assertRegex(text, r'\nvisits_peer_requests_total\{outcome="bad_body"\} [1-9]')
        self.assertRegex(text, r'\nvisits_peer_requests_total\{outcome="too_large"\} [1-9]')
        self.assertRegex(text, r'\nvisits_peer_requests_total\{outcome="timeout"\} [1-9]')
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        self.assertEqual(self.file_bytes(), b"10\n")
        # the peers were asked for /slots, as the exchange says who it is
        self.assertEqual(good.requests[0], b"GET /slots HTTP/1.1")
        self.stop_ok(srv)


class LocalErrors(ClusterTest):
    def test_out_of_descriptors_is_named_as_local(self):
        """socket() failing with EMFILE is this server's failure, not the peer's."""
        peer = self.fake("json", {"pod": "peer-0", "slot": "peer-0.00000000000000bb",
                                  "slots": [{"slot": "peer-0.00000000000000bb", "visits": 1}]})
        srv = self.start(args=["--pod-name", "me", "--peers", peer.address,
                               "--sync-peers-ms", "100", "--recover-ms", "0"], threads=1)
        conn = srv.conn()
        wait_for("a good round", lambda: cluster(srv, conn=conn)["peers"][0]["ok"], 5)
        pid = srv.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # no descriptor left (0, 1 and 2 are open): every socket(), open() and accept()
        # fails with EMFILE
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
        try:
            doc = wait_for("the local error", lambda: (lambda d: d if not d["peers"][0]["ok"]
                                                       else None)(cluster(srv, conn=conn)), 5)
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        self.assertEqual(doc["peers"][0]["error"], "cannot create a socket: Too many open files")
        text = srv.request("GET", "/metrics", conn=conn)[2].decode()
        self.assertRegex(text, r'\nvisits_peer_requests_total\{outcome="local_error"\} [1-9]')
        # descriptors again: the next round reaches the peer
        wait_for("a good round again", lambda: cluster(srv, conn=conn)["peers"][0]["ok"], 5)
        conn.close()
        self.stop_ok(srv)


class Slots(ClusterTest):
    def test_volume_id_and_the_slots_route(self):
        self.write_file(b"7\n")
        srv = self.start(args=["--pod-name", "web-0"])
        path = os.path.join(self.data, "volume-id")
        vid = self.file_bytes(path)
        self.assertRegex(vid.decode(), r"^[0-9a-f]{16}\n$")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertIn(", pod web-0, slot web-0.%s (new volume), version"
                      % vid.decode().strip(), srv.stdout())
        own = "web-0." + vid.decode().strip()
        self.assertEqual(self.file_bytes(os.path.join(self.data, "slot-id")),
                         own.encode() + b"\n")
        status, hdrs, body = srv.request("GET", "/slots")
        self.assertEqual((status, hdrs["content-type"]), (200, "application/json"))
        self.assertEqual(body, b'{"pod":"web-0","slot":"%s","slots":[{"slot":"%s","visits":7}]}\n'
                         % (own.encode(), own.encode()))
        self.stop_ok(srv)
        # the same volume keeps its id and its slot
        srv = self.start(args=["--pod-name", "web-0"])
        self.assertEqual(self.file_bytes(path), vid)
        self.assertIn(", slot %s, version" % own, srv.stdout())
        self.stop_ok(srv)
        # ... under another pod name too (a container named by its random hostname): one
        # volume, one slot, or its visits would count twice
        srv = self.start(args=["--pod-name", "web-1"])
        self.assertIn(", pod web-1, slot %s, version" % own, srv.stdout())
        self.assertEqual(srv.visit()[1], {"visits": 8, "pod": "web-1"})
        doc = cluster(srv)
        self.assertEqual((doc["total"], doc["pod"], doc["slot"], pods(doc)),
                         (8, "web-1", own, {"web-0": 8}))
        self.assertTrue(doc["pods"][0]["answered"])
        self.assertEqual(self.file_bytes(os.path.join(self.data, "slot-id")),
                         own.encode() + b"\n")
        self.stop_ok(srv)
        # a name that needs escaping, on a new volume
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        srv = self.start(other, args=["--pod-name", "Caf\u00e9 1"])
        vid2 = self.file_bytes(os.path.join(other, "volume-id")).decode().strip()
        self.assertIn(", slot %%43af%%C3%%A9%%201.%s (new volume), version" % vid2,
                      srv.stdout())
        self.assertEqual(cluster(srv)["slot"], "%43af%C3%A9%201." + vid2)
        self.stop_ok(srv)

    def test_pod_names_are_escaped(self):
        # (ASCII only here: JSON escaping of non-ASCII pod names is issue 13's)
        name = "x<y>&\"z' 1"
        peer = self.fake("json", {"pod": "?", "slot": "a%3Cb%3E.00000000000000ee",
                                  "slots": [{"slot": "a%3Cb%3E.00000000000000ee", "visits": 4}]})
        srv = self.start(args=["--pod-name", name, "--peers", peer.address, "--recover-ms",
                               "3000", "--sync-peers-ms", "100"])
        wait_for("ready", lambda: srv.request("GET", "/ready")[0] == 200, 5)
        doc = cluster(srv)
        vol = self.file_bytes(os.path.join(self.data, "volume-id")).decode().strip()
        self.assertEqual(doc["slot"], "x%3Cy%3E%26%22z%27%201." + vol)
        self.assertEqual(pods(doc), {"a<b>": 4, name: 0})
        html = srv.request("GET", "/cluster", HTML)[2].decode("utf-8")
        self.assertIn('<span class="name" style="flex:0 0 12em;overflow-wrap:anywhere">'
                      "x&lt;y&gt;&amp;&quot;z&#39; 1</span>", html)
        self.assertIn(">a&lt;b&gt;</span>", html)
        self.assertNotIn("<y>", html)
        self.assertNotIn("<b>", html)
        self.stop_ok(srv)

    def test_corrupt_volume_id_or_replica_refuses_to_start(self):
        path = os.path.join(self.data, "volume-id")
        args = ["--bind", "127.0.0.1", "--port", "0", "--data-dir", self.data, "--pod-name", "me"]
        for content in (b"", b"0123\n", b"0123456789ABCDEF\n", b"0123456789abcdef\n\n"):
            self.write_file(content, path)
            rc, out, err = run(args)
            self.assertEqual(rc, 1, err)
            self.assertIn("%s: corrupt volume id (expected 16 lowercase hex digits and a "
                          "newline): refusing to start; restore the file" % path, err)
            self.assertIn("Do not delete it", err)
            self.assertEqual(self.file_bytes(path), content)
        self.write_file(b"0123456789abcdef\n", path)
        slot_id = os.path.join(self.data, "slot-id")
        self.write_file(b"me.0123456789abcdef", slot_id)  # no newline: torn
        rc, out, err = run(args)
        self.assertEqual(rc, 1, err)
        self.assertIn("%s: corrupt slot id (expected POD.0123456789abcdef and a newline, POD the "
                      "pod that first counted on this volume): refusing to start; write it "
                      "again, e.g. printf '%%s\\n' POD.0123456789abcdef > %s"
                      % (slot_id, slot_id), err)
        self.write_file(b"me.1111111111111111\n", slot_id)  # another volume's slot
        rc, out, err = run(args)
        self.assertEqual(rc, 1, err)
        self.assertIn("corrupt slot id (expected POD.0123456789abcdef", err)
        self.write_file(b"me.0123456789abcdef\n", slot_id)
        os.mkdir(os.path.join(self.data, "slots"))
        replica = os.path.join(self.data, "slots", "other.00000000000000cc")
        self.write_file(b"12x\n", replica)
        rc, out, err = run(args)
        self.assertEqual(rc, 1, err)
        self.assertIn("%s: corrupt counter file (expected a decimal number): refusing to start; "
                      "delete it" % replica, err)
        self.assertEqual(self.file_bytes(replica), b"12x\n")
        # a valid replica is read at start; files that are no replica are left alone
        self.write_file(b"12\n", replica)
        self.write_file(b"junk", os.path.join(self.data, "slots", "README"))
        srv = self.start(args=["--pod-name", "me"])
        self.assertEqual(pods(cluster(srv)), {"me": 0, "other": 12})
        self.assertIn("slots/README: ignored: not a replica", srv.stderr())
        self.stop_ok(srv)

    def test_a_deleted_replica_comes_back(self):
        ports = free_ports(2)
        a = self.pod("pod-a", ports[0], ports, value=3, args=["--recover-ms", "3000"])
        b = self.pod("pod-b", ports[1], ports, value=4, args=["--recover-ms", "3000"])
        for srv in (a, b):
            self.wait_ready(srv)
        wait_for("totals", lambda: cluster(a)["total"] == 7 and cluster(b)["total"] == 7, 5)
        self.stop_ok(a)
        slots = os.path.join(a.data_dir, "slots")
        name, = os.listdir(slots)
        os.unlink(os.path.join(slots, name))
        a.start()
        self.wait_ready(a)
        self.assertEqual(cluster(a)["total"], 7)
        self.assertEqual(self.file_bytes(os.path.join(slots, name)), b"4\n")
        for srv in (a, b):
            self.stop_ok(srv)

    def test_peers_by_name(self):
        """--peers-dns takes every address of a name (here localhost) and --peers a name's
        first one; a name that does not resolve is an error of its own."""
        ports = free_ports(2)
        b = self.pod("pod-b", ports[1], [], value=7, args=["--recover-ms", "0"])
        a = self.server(os.path.join(self.tmp, "a"), args=[
            "--port", str(ports[0]), "--pod-name", "pod-a", "--recover-ms", "0",
            "--sync-peers-ms", "100", "--peers", "localhost:%d,no-such-host.invalid:8080"
            % ports[0], "--peers-dns", "localhost:%d" % b.port])
        os.mkdir(a.data_dir)
        a.start()
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(
            "localhost", b.port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
            socket.AI_ADDRCONFIG)})
        require("127.0.0.1" in addrs, "localhost does not resolve to 127.0.0.1 here: %r" % addrs)
        doc = wait_for("pod-b", lambda: (lambda d: d if "pod-b" in pods(d) and
                                         "no-such-host.invalid:8080" in
                                         [p["address"] for p in d["peers"]] else None)(
            cluster(a)), 10)
        self.assertEqual(pods(doc), {"pod-a": 0, "pod-b": 7})
        errors = {p["address"]: p["error"] for p in doc["peers"] if not p["ok"]}
        unresolved = errors.pop("no-such-host.invalid:8080")
        self.assertTrue("cannot resolve no-such-host.invalid" in unresolved
                        or "not resolved within" in unresolved, unresolved)
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

    def test_bad_settings(self):
        for args, mention in (
                (["--peers", "10.0.0.1"], "--peers: invalid value '10.0.0.1': '10.0.0.1': no "
                                          "port (expected HOST:PORT[,HOST:PORT...])"),
                (["--peers-dns", "a:1,b:2"], "one NAME:PORT only"),
                (["--peer-timeout-ms", "0"], "--peer-timeout-ms: invalid value '0' "
                                             "(expected milliseconds 1..60000)"),
                (["--sync-peers-ms", "49"], "--sync-peers-ms: invalid value '49' (expected "
                                            "milliseconds 50..3600000)"),
                (["--sync-peers-ms", "1s"], "--sync-peers-ms"),
                (["--recover-ms", "600001"], "--recover-ms: invalid value '600001' (expected "
                                             "milliseconds 0..600000)"),
                (["--recover-ms", "-1"], "--recover-ms")):
            self.assert_usage_error(args, mention)
        for name, value in (("VISITS_SYNC_PEERS_MS", "fast"), ("VISITS_RECOVER_MS", "x"),
                            ("VISITS_PEERS", "x")):
            self.assert_usage_error([], "%s: invalid value '%s'" % (name, value),
                                    clean_env(**{name: value}))

    def test_a_long_pod_name_is_cut_and_hashed(self):
        name = "p" * 253  # a DNS name may be that long; a file name may not
        srv = self.start(args=["--pod-name", name, "--recover-ms", "0"])
        doc = cluster(srv)
        vol = self.file_bytes(os.path.join(self.data, "volume-id")).decode().strip()
        self.assertRegex(doc["slot"], r"^p{203}~[0-9a-f]{16}\.%s$" % vol)
        self.assertEqual(doc["pod"], name)
        self.assertEqual(list(pods(doc)), [doc["slot"][:-17]])
        self.assertTrue(doc["pods"][0]["answered"])
        self.assertTrue(os.path.exists(os.path.join(self.data, "slot-id")))
        self.stop_ok(srv)

    def test_environment_configures_the_exchange(self):
        peer = self.fake("json", {"pod": "env-peer", "slot": "env-peer.00000000000000dd",
                                  "slots": [{"slot": "env-peer.00000000000000dd", "visits": 2}]})
        env = clean_env(VISITS_PEERS=peer.address, VISITS_SYNC_PEERS_MS="100",
                        VISITS_RECOVER_MS="2000", VISITS_PEER_TIMEOUT_MS="250")
        srv = self.start(env=env, args=["--pod-name", "env-0"])
        wait_for("ready", lambda: srv.request("GET", "/ready")[0] == 200, 5)
        self.assertEqual(pods(cluster(srv)), {"env-0": 0, "env-peer": 2})
        n = len(peer.requests)
        time.sleep(0.6)
        self.assertGreaterEqual(len(peer.requests) - n, 3)  # every 100 ms
        self.stop_ok(srv)


if __name__ == "__main__":
    require(os.access(SERVER, os.X_OK), "VISITS_SERVER is not set")
    run_tests()
