#!/usr/bin/env python3
"""Every route of visits-server: status, headers and body as a client sees them, over
HTTP/1.1 (keep-alive, pipelining, HEAD, content negotiation) and HTTP/2 prior knowledge."""
import json

from harness import H2Client, ServerTest, parse_responses, raw_exchange, run_tests

JSON = "application/json"
ROUTES = {"/": "visit", "/visits": "count", "/cluster": "cluster", "/health": "liveness",
          "/ready": "readiness", "/metrics": "metrics"}


class Routes(ServerTest):
    def setUp(self):
        super().setUp()
        self.write_file(b"41\n")
        self.srv = self.start(args=["--pod-name", "web-0", "--http2"])

    def tearDown(self):
        self.stop_ok(self.srv)

    def test_root_html_counts_and_links(self):
        status, hdrs, body = self.srv.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
        self.assertEqual(int(hdrs["content-length"]), len(body))
        self.assertEqual(hdrs["cache-control"], "no-store")
        self.assertEqual(hdrs["vary"], "Accept")
        html = body.decode()
        self.assertIn("<h1>Visit number 42</h1>", html)
        self.assertIn("<strong>web-0</strong>", html)
        self.assertRegex(html, r"<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>")
        for path in ROUTES:
            if path != "/":
                self.assertIn('<a href="%s">' % path, html)
        self.assertEqual(self.file_bytes(), b"42\n")

    def test_root_json_when_asked(self):
        for accept in (JSON, "application/json, text/plain;q=0.5",
                       "text/html;q=0.5, application/json", "application/*"):
            status, hdrs, body = self.srv.request("GET", "/", {"Accept": accept})
            self.assertEqual(status, 200, accept)
            self.assertEqual(hdrs["content-type"], JSON, accept)
            doc = json.loads(body)
            self.assertEqual(set(doc), {"visits", "pod"})
            self.assertEqual(doc["pod"], "web-0")
        self.assertEqual(doc["visits"], 45)
        self.assertEqual(self.file_bytes(), b"45\n")

    def test_root_html_for_browsers_and_wildcards(self):
        for accept in ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                       "*/*", "application/json;q=0, text/html", "text/plain"):
            status, hdrs, _ = self.srv.request("GET", "/", {"Accept": accept})
            self.assertEqual((status, hdrs["content-type"]),
                             (200, "text/html; charset=utf-8"), accept)

    def test_head_root_does_not_count(self):
        status, hdrs, body = self.srv.request("HEAD", "/")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(hdrs["content-length"]), 0)
        status, doc = self.srv.get_json("/visits")
        self.assertEqual(doc["visits"], 41)
        self.assertEqual(self.file_bytes(), b"41\n")

    def test_visits_never_counts(self):
        for _ in range(3):
            status, hdrs, body = self.srv.request("GET", "/visits")
            self.assertEqual(status, 200)
            self.assertEqual(hdrs["content-type"], JSON)
            self.assertEqual(json.loads(body), {"visits": 41, "pod": "web-0"})
            self.assertEqual(int(hdrs["content-length"]), len(body))
        self.srv.visit()
        self.assertEqual(self.srv.get_json("/visits")[1]["visits"], 42)
        self.assertEqual(self.file_bytes(), b"42\n")

    def test_health_and_ready(self):
        status, hdrs, body = self.srv.request("GET", "/health")
        self.assertEqual((status, hdrs["content-type"], json.loads(body)),
                         (200, JSON, {"status": "ok"}))
        status, hdrs, body = self.srv.request("GET", "/ready")
        self.assertEqual((status, hdrs["content-type"], json.loads(body)),
                         (200, JSON, {"status": "ready"}))

    def test_metrics_content_type(self):
        status, hdrs, body = self.srv.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        self.assertIn(b"\nvisits_total 41\n", body)

    def test_unknown_path_is_404_json(self):
        for path in ("/nope", "/visits/", "/health/x", "/%22quoted%22?q=1"):
            status, hdrs, body = self.srv.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertEqual(hdrs["content-type"], JSON)
            doc = json.loads(body)
            self.assertEqual(doc["status"], 404)
            self.assertIn("no route for", doc["error"])
        status, _, body = self.srv.request("POST", "/nope", body=b"x")
        self.assertEqual(status, 404)
        self.assertEqual(self.file_bytes(), b"41\n")

    def test_other_methods_are_405_with_allow(self):
        for path in ROUTES:
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
                status, hdrs, body = self.srv.request(method, path, body=b"")
                self.assertEqual(status, 405, (method, path))
                self.assertEqual(hdrs["allow"], "GET, HEAD")
                doc = json.loads(body)
                self.assertEqual(doc["status"], 405)
                self.assertIn(path, doc["error"])
        self.assertEqual(self.file_bytes(), b"41\n")

    def test_every_route_answers_head_without_body(self):
        for path in ROUTES:
            data = raw_exchange(self.srv.port,
                                b"HEAD %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                                % path.encode())
            head, _, rest = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 "), (path, head))
            self.assertEqual(rest, b"", path)
            self.assertRegex(head.decode(), r"(?i)content-length: [1-9]")

    def test_keep_alive_and_pipelining(self):
        reqs = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n\r\n" % p
                        for p in (b"/visits", b"/", b"/health", b"/", b"/visits"))
        reqs += b"GET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        responses = parse_responses(raw_exchange(self.srv.port, reqs))
        self.assertEqual([r[0] for r in responses], [200] * 6)
        bodies = [json.loads(r[2]) for r in responses]
        self.assertEqual(bodies[0]["visits"], 41)
        self.assertEqual(bodies[1]["visits"], 42)
        self.assertEqual(bodies[2], {"status": "ok"})
        self.assertEqual(bodies[3]["visits"], 43)
        self.assertEqual(bodies[4]["visits"], 43)
        self.assertEqual(bodies[5], {"status": "ready"})
        self.assertEqual(responses[5][1]["connection"], "close")
        # one connection, many requests with http.client
        c = self.srv.conn()
        for i in range(20):
            status, doc = self.srv.visit(conn=c)
            self.assertEqual((status, doc["visits"]), (200, 44 + i))
        c.close()
        self.assertEqual(self.file_bytes(), b"63\n")

    def test_http10_without_host(self):
        data = raw_exchange(self.srv.port, b"GET /visits HTTP/1.0\r\n\r\n")
        (status, hdrs, body), = parse_responses(data)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["visits"], 41)

    def test_http2_prior_knowledge(self):
        h2 = H2Client(self.srv.port)
        try:
            status, body = h2.get(1, "/visits")
            self.assertEqual((status, json.loads(body)), (200, {"visits": 41, "pod": "web-0"}))
            status, body = h2.get(3, "/", accept=JSON)
            self.assertEqual((status, json.loads(body)["visits"]), (200, 42))
            status, body = h2.get(5, "/health")
            self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        finally:
            h2.close()
        self.assertEqual(self.file_bytes(), b"42\n")

    def test_access_log_lines(self):
        self.srv.request("GET", "/health", {"User-Agent": 'probe "1"'})
        self.srv.request("GET", "/nope?x=\x01".replace("\x01", "%01"))
        self.srv.request("GET", "/")
        self.stop_ok(self.srv)
        out = self.srv.stdout()
        self.assertRegex(out, r'127\.0\.0\.1 - - \[[^\]]+\] "GET /health HTTP/1\.1" 200 16 '
                              r'\d+\.\d{6} "probe \\x221\\x22"\n')
        self.assertRegex(out, r'"GET /nope\?x=%01 HTTP/1\.1" 404 \d+ ')
        self.assertRegex(out, r'"GET / HTTP/1\.1" 200 \d+ ')
        self.srv = self.start()  # tearDown stops it again


if __name__ == "__main__":
    run_tests()
