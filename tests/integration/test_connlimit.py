#!/usr/bin/env python3
"""Connection limit: under `ulimit -n 128` (prlimit), 1,000 connections neither make the
server spin (CPU measured from /proc) nor starve it of the descriptors its counter needs:
a connection already open keeps getting 200 for GET / and /ready; the connections beyond
--max-connections (by default what RLIMIT_NOFILE leaves) wait in the kernel's queue, are
counted in visits_connections_refused_total, and are served by themselves once others
close. With a limit set too high for the descriptors, accept's EMFILE pauses the
listener with backoff instead of a busy loop."""
import json
import os
import re
import resource
import socket
import time

from harness import SLOW, Server, ServerTest, require, run_tests

NOFILE = 128
CONNECTIONS = 1000
THREADS = 2
# config.c: 32 descriptors for the process, 8 per event loop
DEFAULT_MAX = NOFILE - 32 - 8 * THREADS


class LimitedServer(Server):
    def command(self):
        return ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"] + super().command()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class ConnectionLimit(ServerTest):
    def setUp(self):
        super().setUp()
        require(any(os.access(os.path.join(d, "prlimit"), os.X_OK)
                    for d in os.environ.get("PATH", "").split(":")), "prlimit (util-linux)")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = CONNECTIONS + 200
        if soft < want:
            require(hard == resource.RLIM_INFINITY or hard >= want,
                    "RLIMIT_NOFILE hard limit %d < %d for the test's own sockets" % (hard, want))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.socks = []
        self.addCleanup(self.close_all)

    def close_all(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def limited(self, args=()):
        srv = LimitedServer(self.data, args=list(args), threads=THREADS,
                            logs_dir=os.path.join(self.tmp, "logs-%d" % len(self.servers)))
        os.makedirs(srv.logs_dir)
        self.servers.append(srv)
        return srv.start()

    def flood(self, srv):
        for _ in range(CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5 * SLOW)
            self.socks.append(s)
        time.sleep(1.0 * SLOW)  # let the loops take what they will

    def assert_not_spinning(self, srv, why):
        before = cpu_seconds(srv.proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(srv.proc.pid) - before
        self.assertLess(used, 0.4, "%s: the server used %.2f s of CPU in 2 s (spinning)"
                        % (why, used))
        return used

    def refused_total(self, srv):
        text = srv.request("GET", "/metrics")[2].decode()
        m = re.search(r"^visits_connections_refused_total (\d+)$", text, re.M)
        self.assertIsNotNone(m, "visits_connections_refused_total missing")
        return int(m.group(1))

    def wait_served(self, srv, timeout):
        """A fresh connection gets GET /health answered; the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout * SLOW
        while True:
            try:
                status = srv.request("GET", "/health")[0]
                if status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "not served again within %.0f s" % timeout)
            time.sleep(0.1)

    def test_default_limit_keeps_open_connections_answered(self):
        srv = self.limited()
        keeper = srv.conn()
        status, body = srv.visit(keeper)
        self.assertEqual((status, body["visits"]), (200, 1))
        self.flood(srv)
        used = self.assert_not_spinning(srv, "%d connections" % CONNECTIONS)
        self.assertLessEqual(open_fds(srv.proc.pid), NOFILE)
        # the connection already open is served, visits count, the server stays ready
        for n in range(2, 7):
            status, body = srv.visit(keeper)
            self.assertEqual((status, body["visits"]), (200, n), body)
        status, hdrs, body = srv.request("GET", "/ready", conn=keeper)
        self.assertEqual((status, json.loads(body)), (200, {"status": "ready"}))
        self.assertIn("max connections %d," % DEFAULT_MAX, srv.stdout())
        out = srv.wait_stdout("the limit (--max-connections)")
        self.assertIn("connections: %d open, the limit (--max-connections)" % DEFAULT_MAX, out)
        # the others close: it recovers by itself, and says how many waited
        self.close_all()
        took = self.wait_served(srv, 10)
        waited = self.refused_total(srv)
        self.assertGreaterEqual(waited, CONNECTIONS - DEFAULT_MAX - 10,
                                "connections that waited, as counted")
        self.assertIn("connections waited (visits_connections_refused_total)",
                      srv.wait_stdout("connections waited"))
        status, body = srv.visit()
        self.assertEqual((status, body["visits"]), (200, 7))
        keeper.close()
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"7\n")
        print("\n  %d connections under ulimit -n %d: CPU %.2f s in 2 s, %d waited, served "
              "again %.2f s after they closed" % (CONNECTIONS, NOFILE, used, waited, took))

    def test_emfile_pauses_the_listener(self):
        srv = self.limited(args=["--max-connections", "1000"])
        keeper = srv.conn()
        self.assertEqual(srv.request("GET", "/visits", conn=keeper)[0], 200)
        self.flood(srv)
        used = self.assert_not_spinning(srv, "accept failing with EMFILE")
        err = srv.stderr()
        self.assertIn("cannot accept connections: Too many open files", err)
        self.assertEqual(err.count("cannot accept connections"), 1, "one line per episode")
        status, hdrs, body = srv.request("GET", "/visits", conn=keeper)
        self.assertEqual(status, 200)
        self.close_all()
        self.wait_served(srv, 10)
        self.assertGreater(self.refused_total(srv), 0)
        keeper.close()
        self.stop_ok(srv)
        print("\n  EMFILE with %d connections: CPU %.2f s in 2 s" % (CONNECTIONS, used))

    def test_a_client_that_reads_nothing_is_closed(self):
        srv = self.start()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * 2000)  # ~20 MB of answers
        t0 = time.monotonic()
        out = srv.wait_stdout("a response not taken", timeout=15)
        self.assertIn("HTTP/1: a response not taken for 10 s (no reading): closed", out)
        took = time.monotonic() - t0
        self.assertGreater(took, 9)
        s.settimeout(5 * SLOW)
        try:
            while s.recv(65536):  # what was in flight, then the end
                pass
        except ConnectionResetError:
            pass
        s.close()
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        self.stop_ok(srv)

    def test_flag_and_environment(self):
        srv = self.start(args=["--max-connections", "5"])
        self.assertIn("max connections 5,", srv.stdout())
        socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
        for s in socks:
            s.sendall(b"GET /visits HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 "))
        sixth = socket.create_connection(("127.0.0.1", srv.port), timeout=0.5)
        sixth.sendall(b"GET /visits HTTP/1.1\r\nHost: t\r\n\r\n")
        with self.assertRaises(socket.timeout):
            sixth.recv(4096)  # waits: not accepted while 5 are open
        socks.pop().close()
        sixth.settimeout(5 * SLOW)
        self.assertTrue(sixth.recv(4096).startswith(b"HTTP/1.1 200 "))
        for s in socks + [sixth]:
            s.close()
        self.stop_ok(srv)
        srv = self.start(env={"VISITS_MAX_CONNECTIONS": "7"})
        self.assertIn("max connections 7,", srv.stdout())
        self.stop_ok(srv)


if __name__ == "__main__":
    run_tests()
