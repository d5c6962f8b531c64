#!/usr/bin/env python3
"""Request framing (RFC 9112 6.3): a request whose length a proxy could read otherwise
(Content-Length with Transfer-Encoding, Content-Length values that differ, ...) gets 400
and its connection is closed, so that what follows it on the connection never runs as a
request of its own; nothing is counted. Absolute-form targets are routed by their path.
An HTTP/2 request with an empty :path gets 400. NUL and control bytes in a path never cut
or corrupt the message that shows it."""
import json
import os
import socket

from harness import SLOW, H2Client, OneServerTest, parse_responses, raw_exchange, run_tests

SMUGGLED = b"GET / HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n\r\n"


class Framing(OneServerTest):
    def exchange(self, payload):
        """(responses, closed by the server) for payload sent on a fresh connection."""
        data = raw_exchange(self.srv.port, payload, timeout=2)
        return parse_responses(data)

    def assert_refused(self, payload, why):
        responses = self.exchange(payload)
        self.assertEqual(len(responses), 1, "the rest ran as a request: %r" % responses)
        status, hdrs, body = responses[0]
        self.assertEqual(status, 400, body)
        self.assertEqual(hdrs.get("connection"), "close")
        self.assertIn(why, json.loads(body)["error"])

    def assert_nothing_counted(self):
        status, body = self.srv.get_json("/visits")
        self.assertEqual(body["visits"], 0)
        self.assertFalse(os.path.exists(self.counter) and self.file_bytes() != b"0\n")

    def test_content_length_with_transfer_encoding(self):
        for first, second in ((b"Content-Length: 30", b"Transfer-Encoding: chunked"),
                              (b"Transfer-Encoding: chunked", b"Content-Length: 30"),
                              (b"Content-Length: 0", b"transfer-encoding: chunked")):
            with self.subTest(first=first):
                self.assert_refused(b"GET /visits HTTP/1.1\r\nHost: t\r\n" + first + b"\r\n"
                                    + second + b"\r\n\r\n0\r\n\r\n" + SMUGGLED,
                                    "Content-Length together with Transfer-Encoding")
        self.assert_nothing_counted()

    def test_conflicting_content_lengths(self):
        self.assert_refused(b"GET /visits HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
                            "conflicting Content-Length values")
        self.assert_refused(b"GET /visits HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                            b"Content-Length: 2, 0\r\n\r\nxx" + SMUGGLED,
                            "conflicting Content-Length values")
        # equal values may be merged (RFC 9110 8.6): one request, its body read
        responses = self.exchange(b"GET /visits HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                                  b"Content-Length: 2\r\nConnection: close\r\n\r\nxx")
        self.assertEqual([r[0] for r in responses], [200])
        self.assert_nothing_counted()

    def test_other_ambiguous_framing(self):
        self.assert_refused(b"GET /visits HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
                            "more than one Transfer-Encoding")
        self.assert_refused(b"GET /visits HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\n0\r\n\r\n" + SMUGGLED, "Transfer-Encoding in an HTTP/1.0")
        self.assert_nothing_counted()

    def test_unambiguous_bodies_still_work(self):
        for head in (b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"):
            body = b"hello" if b"Length" in head else b"5\r\nhello\r\n0\r\n\r\n"
            responses = self.exchange(b"GET /visits HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n"
                                      + body + b"GET /visits HTTP/1.1\r\nHost: t\r\n"
                                      b"Connection: close\r\n\r\n")
            self.assertEqual([r[0] for r in responses], [200, 200])

    def test_absolute_form_targets_are_routed_by_their_path(self):
        for target, route in ((b"http://visits.example/visits", "/visits"),
                              (b"HTTP://visits.example:8080/health?x=1", "/health"),
                              (b"https://visits.example/ready", "/ready")):
            with self.subTest(target=target):
                (status, hdrs, body), = self.exchange(
                    b"GET " + target + b" HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
                self.assertEqual(status, 200, body)
        for n, target in enumerate((b"http://visits.example/", b"http://visits.example",
                                    b"http://visits.example?from=proxy"), start=1):
            with self.subTest(target=target):
                (status, hdrs, body), = self.exchange(
                    b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n"
                    b"Connection: close\r\n\r\n")
                self.assertEqual((status, json.loads(body)["visits"]), (200, n))
        (status, hdrs, body), = self.exchange(
            b"GET http://visits.example/nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual(json.loads(body)["error"], "no route for /nowhere (see /)")
        self.assert_refused(b"GET ftp://visits.example/ HTTP/1.1\r\nHost: t\r\n\r\n",
                            "absolute-form target with a scheme other than http or https")
        text = self.srv.metrics_when('route="/visits",method="GET",status="200"')
        self.assertIn('visits_http_requests_total{route="/visits",method="GET",status="200"} 1',
                      text)
        self.assertIn('visits_http_requests_total{route="/",method="GET",status="200"} 3', text)

    def h2_server(self):
        """HTTP/2 is off by default: a second server with --http2 (self.srv stays up)."""
        self.srv.kill()
        self.srv = self.start(args=["--http2"])
        return self.srv

    def test_http2_empty_path_is_refused(self):
        h2 = H2Client(self.h2_server().port)
        self.assertEqual(h2.get(1, "", accept="application/json"), (400, h2.streams[1][1]))
        body = json.loads(h2.streams[1][1])
        self.assertEqual(body, {"status": 400, "error": "empty :path (RFC 9113 8.3.1)"})
        status, body = h2.get(3, "visits")
        self.assertEqual(status, 400)
        status, body = h2.get(5, "/visits")
        self.assertEqual((status, json.loads(body)["visits"]), (200, 0))
        h2.close()
        self.assert_nothing_counted()

    def test_control_bytes_in_paths_are_escaped(self):
        # HTTP/1: raw control bytes are refused by the parser; percent-encoded ones reach
        # the 404, escaped.
        data = raw_exchange(self.srv.port, b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n", timeout=2)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:80])
        for target, shown in ((b"/%00", "/\x00"), (b"/a%00b%01c%7f%1b[31m", "/a\x00b\x01c\x7f\x1b[31m")):
            (status, hdrs, body), = self.exchange(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n"
                                                  b"Connection: close\r\n\r\n")
            self.assertEqual(status, 404)
            self.assertEqual(int(hdrs["content-length"]), len(body))
            self.assertEqual(json.loads(body)["error"], "no route for %s (see /)" % shown)
            self.assertNotIn(b"\x00", body)
            self.assertNotIn(b"\x1b", body)
        # HTTP/2: a NUL in :path is the client's byte; the answer is whole and valid JSON
        h2 = H2Client(self.h2_server().port)
        status, body = h2.get(1, "/a\x00b\x01c")
        self.assertIn(status, (400, 404))
        msg = json.loads(body)["error"] if body.startswith(b"{") else body.decode()
        if status == 404:
            self.assertEqual(msg, "no route for /a\x00b\x01c (see /)")
        h2.close()
        self.assert_nothing_counted()


if __name__ == "__main__":
    run_tests()
