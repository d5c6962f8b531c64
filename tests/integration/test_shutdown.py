#!/usr/bin/env python3
"""SIGTERM/SIGINT: stop accepting, finish in-flight requests, flush, exit 0 within 2 s,
even with idle keep-alive (HTTP/1.1 and HTTP/2) or half-sent requests open; /ready says
"shutting down" meanwhile; the log says what happened."""
import json
import signal
import socket
import threading
import time

from harness import SLOW, H2Client, ServerTest, parse_responses, run_tests

GET = b"GET /visits HTTP/1.1\r\nHost: t\r\n\r\n"


def closed_within(sock, timeout):
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class Shutdown(ServerTest):
    def test_sigterm_with_idle_keepalive_connections(self):
        srv = self.start()
        idle = []
        for _ in range(4):  # answered once, then idle with keep-alive
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(GET)
            (status, hdrs, _), = parse_responses(s.recv(4096))
            self.assertEqual((status, hdrs["connection"]), (200, "keep-alive"))
            idle.append(s)
        silent = socket.create_connection(("127.0.0.1", srv.port))  # never sends
        half = socket.create_connection(("127.0.0.1", srv.port))
        half.sendall(b"GET /visits HTTP/1.1\r\nHo")  # stuck mid-request
        time.sleep(0.1)
        took = self.stop_ok(srv, within=2.0)
        for s in idle + [silent, half]:
            self.assertTrue(closed_within(s, 1), "connection left open")
            s.close()
        out = srv.stdout()
        self.assertIn("received SIGTERM: stopping", out)
        self.assertRegex(out, r"stopped after \d+ ms: counter .* = 0 flushed; exit 0\n")
        self.assertLess(took, 2.0 * SLOW)

    def test_sigint_with_idle_http2_connection(self):
        srv = self.start(args=["--http2"])
        h2 = H2Client(srv.port)
        self.assertEqual(h2.get(1, "/health")[0], 200)
        self.stop_ok(srv, sig=signal.SIGINT, within=2.0)
        self.assertTrue(h2.closed_by_peer(1))
        h2.close()
        self.assertIn("received SIGINT: stopping", srv.stdout())

    def test_new_connections_are_refused_after_the_signal(self):
        srv = self.start(preload_fault=True, env={"VISITS_FAULT_FSYNC_DELAY_MS": "400"})
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n\r\n")
        time.sleep(0.1)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2 * SLOW)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        s.settimeout(5 * SLOW)
        data = b""
        while b"}" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        (status, hdrs, body), = parse_responses(data)
        self.assertEqual((status, json.loads(body)["visits"]), (200, 1))
        self.assertEqual(hdrs["connection"], "close")  # keep-alive ends with the server
        s.close()
        rc = srv.proc.wait(5 * SLOW)
        self.assertEqual(rc, 0, srv.stderr())
        self.assertEqual(self.file_bytes(), b"1\n")

    def test_in_flight_visits_finish_and_ready_says_shutting_down(self):
        # fsync made slow (2 x 300 ms per write): the visit is in flight at the signal.
        srv = self.start(args=["--http2"], preload_fault=True,
                         env={"VISITS_FAULT_FSYNC_DELAY_MS": "300"})
        h2 = H2Client(srv.port)
        self.assertEqual(h2.get(1, "/ready"), (200, b'{"status":"ready"}\n'))
        h2.send(3, "/", accept="application/json")
        time.sleep(0.1)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        status, body = h2.get(5, "/ready")  # same connection, while the visit is in flight
        self.assertEqual(json.loads(body), {"status": "not ready", "reason": "shutting down"})
        status, body = h2.wait(3)
        self.assertEqual((status, json.loads(body)["visits"]), (200, 1))
        rc = srv.proc.wait(5 * SLOW)
        took = time.monotonic() - t0
        h2.close()
        self.assertEqual(rc, 0, srv.stderr())
        self.assertLess(took, 2.0 * SLOW)
        self.assertEqual(self.file_bytes(), b"1\n")

    def test_busy_client_cannot_hold_shutdown_past_2s(self):
        # A client that keeps a visit in flight forever (the disk takes 5 s per fsync):
        # the server gives up on it after its grace period and still exits in time.
        srv = self.start(preload_fault=True, env={"VISITS_FAULT_FSYNC_DELAY_MS": "5000"})
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
        rc, took = srv.stop(signal.SIGTERM, timeout=5)
        s.close()
        self.assertLess(took, 2.5 * SLOW)
        # the write was still running: the server says so and exits non-zero
        self.assertEqual(rc, 1, srv.stderr())
        self.assertIn("was not flushed within", srv.stderr())


if __name__ == "__main__":
    run_tests()
