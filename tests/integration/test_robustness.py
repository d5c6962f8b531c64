#!/usr/bin/env python3
"""Malformed and hostile clients (bad request lines, huge headers, binary junk, oversized
bodies, a slow client, abandoned connections) neither crash the server nor block others."""
import json
import os
import socket
import threading
import time

from harness import SLOW, OneServerTest, parse_responses, raw_exchange, run_tests


class Robustness(OneServerTest):
    def assert_400(self, payload):
        data = raw_exchange(self.srv.port, payload)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), (payload[:60], data[:200]))
        (status, hdrs, body), = parse_responses(data)
        self.assertEqual(int(hdrs["content-length"]), len(body))
        self.assertEqual(hdrs["connection"], "close")

    def test_bad_request_lines(self):
        for payload in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9.9\r\n\r\n",
                        b"GET / HTTP/1.1\r\nNo-Colon-Here\r\n\r\n",
                        b"G\x00T / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc"
                        b"\x03\x03" + os.urandom(64) + b"\r\n\r\n"):
            self.assert_400(payload)
        self.assertFalse(os.path.exists(self.counter))

    def test_huge_headers(self):
        # libh2o 2.2.5 takes request heads up to 8 KiB + 100 x 4 KiB and 100 header lines.
        ok = b"GET /visits HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        self.assertTrue(raw_exchange(self.srv.port, ok, timeout=1).startswith(b"HTTP/1.1 200 "))
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5 * SLOW)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 450000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before all of it was sent
        data = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except ConnectionResetError:
            pass
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:100])
        many = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"
        self.assert_400(many)
        self.assertFalse(os.path.exists(self.counter))

    def test_binary_junk_and_abandoned_connections(self):
        for _ in range(20):
            raw_exchange(self.srv.port, os.urandom(3000), timeout=1)
        socks = [socket.create_connection(("127.0.0.1", self.srv.port)) for _ in range(50)]
        for s in socks[:25]:
            s.sendall(b"GET / HTTP/1.1\r\nHo")  # half a request, then gone
        for s in socks:
            s.close()
        status, doc = self.srv.visit()
        self.assertEqual((status, doc["visits"]), (200, 1))

    def test_oversized_body_is_refused(self):
        payload = (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n"
                   + b"x" * 65536)
        data = raw_exchange(self.srv.port, payload)
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data[:100])
        self.assertFalse(os.path.exists(self.counter))

    def test_client_gone_before_its_visit_is_answered(self):
        # The visit is counted (it reached the committer) but nobody is there to answer.
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            s.close()
        deadline = time.monotonic() + 2 * SLOW
        while time.monotonic() < deadline and self.srv.get_json("/visits")[1]["visits"] < 20:
            time.sleep(0.02)
        self.assertEqual(self.srv.get_json("/visits")[1]["visits"], 20)
        self.assertEqual(self.srv.visit()[1]["visits"], 21)

    def test_slow_client_does_not_block_others(self):
        stop = threading.Event()
        request = b"GET /visits HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        result = {}

        def slowloris():
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10 * SLOW)
            try:
                for i in range(len(request)):
                    if stop.is_set():
                        return
                    s.sendall(request[i:i + 1])
                    time.sleep(0.05)
                result["slow"] = s.recv(4096)
            finally:
                s.close()

        t = threading.Thread(target=slowloris)
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        c = self.srv.conn()
        for i in range(200):  # the disk-free route: only the slow client could slow it
            self.assertEqual(self.srv.request("GET", "/visits", conn=c)[0], 200)
        for i in range(5):
            self.assertEqual(self.srv.visit(conn=c), (200, {"visits": i + 1,
                                                           "pod": socket.gethostname()}))
        c.close()
        took = time.monotonic() - t0
        # the slow client needs len(request) x 50 ms, about 2.7 s, to send its request
        self.assertTrue(t.is_alive(), "the slow client should still be sending")
        self.assertLess(took, 2.0 * SLOW, "205 requests took %.2f s beside a slow client" % took)
        t.join(timeout=30)
        stop.set()
        self.assertTrue(result.get("slow", b"").startswith(b"HTTP/1.1 200 "), result)
        body = result["slow"].partition(b"\r\n\r\n")[2]
        self.assertEqual(json.loads(body)["visits"], 5)


if __name__ == "__main__":
    run_tests()
