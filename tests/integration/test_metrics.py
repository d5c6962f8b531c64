#!/usr/bin/env python3
"""GET /metrics: Prometheus text that `promtool check metrics` accepts, with values that
match the traffic the test sent."""
import re
import shutil
import subprocess

from harness import H2Client, ServerTest, require, run_tests


def sample(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    if m is None:
        raise AssertionError("no sample %s%s in:\n%s" % (name, labels, text))
    return float(m.group(1))


class Metrics(ServerTest):
    def promtool_check(self, text):
        promtool = shutil.which("promtool")
        require(promtool is not None, "promtool (Debian package prometheus) is not installed")
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool: %s\n%s" % (p.stdout.decode(), text))

    def test_fresh_server_passes_promtool(self):
        srv = self.start()
        self.promtool_check(srv.request("GET", "/metrics")[2].decode())
        self.stop_ok(srv)

    def test_values_follow_the_traffic(self):
        self.write_file(b"100\n")
        srv = self.start(args=["--pod-name", "m-0", "--http2"])
        for _ in range(7):
            self.assertEqual(srv.visit()[0], 200)
        srv.request("HEAD", "/")
        for _ in range(3):
            srv.request("GET", "/visits")
        srv.request("GET", "/missing")
        srv.request("DELETE", "/ready")
        srv.request("GET", "/health")
        h2 = H2Client(srv.port)
        self.assertEqual(h2.get(1, "/health")[0], 200)
        h2.close()
        # every request above is recorded (the last one, on HTTP/2, by the other thread)
        text = srv.metrics_when('{route="/health",method="GET",status="200"} 2\n',
                                '{route="/",method="GET",status="200"} 7\n',
                                '{route="/ready",method="DELETE",status="405"} 1\n',
                                '{route="/",method="HEAD",status="200"} 1\n',
                                '{route="/visits",method="GET",status="200"} 3\n',
                                '{route="unknown",method="GET",status="404"} 1\n')
        self.promtool_check(text)

        self.assertEqual(sample(text, "visits_total"), 107)
        req = "visits_http_requests_total"
        self.assertEqual(sample(text, req, '{route="/",method="GET",status="200"}'), 7)
        self.assertEqual(sample(text, req, '{route="/",method="HEAD",status="200"}'), 1)
        self.assertEqual(sample(text, req, '{route="/visits",method="GET",status="200"}'), 3)
        self.assertEqual(sample(text, req, '{route="unknown",method="GET",status="404"}'), 1)
        self.assertEqual(sample(text, req, '{route="/ready",method="DELETE",status="405"}'), 1)
        self.assertEqual(sample(text, req, '{route="/health",method="GET",status="200"}'), 2)
        dur = "visits_http_request_duration_seconds"
        self.assertEqual(sample(text, dur + "_count", '{route="/"}'), 8)
        self.assertEqual(sample(text, dur + "_bucket", '{route="/",le="+Inf"}'), 8)
        self.assertGreater(sample(text, dur + "_sum", '{route="/"}'), 0)
        # one commit per visit here (sequential clients): 7 cycles of batch size 1
        self.assertEqual(sample(text, "visits_commit_duration_seconds_count"), 7)
        self.assertEqual(sample(text, "visits_commit_batch_size_sum"), 7)
        self.assertEqual(sample(text, "visits_commit_batch_size_bucket", '{le="1"}'), 7)
        self.assertEqual(sample(text, "visits_write_cycles_total"), 7)
        self.assertEqual(sample(text, "visits_commit_failures_total"), 0)
        self.assertEqual(sample(text, "visits_ready"), 1)
        self.assertRegex(text, r'\nvisits_build_info\{version="\d+\.\d+\.\d+",libvisits="[^"]+",'
                               r'libh2o="2\.2\.\d+",sync="always"\} 1\n')
        self.assertGreater(sample(text, "process_start_time_seconds"), 1.6e9)
        # scrapes are counted too (by the following ones)
        text2 = srv.metrics_when('{route="/metrics",method="GET",status="200"}')
        self.assertGreaterEqual(sample(text2, req, '{route="/metrics",method="GET",status="200"}'),
                                1)
        self.stop_ok(srv)


if __name__ == "__main__":
    run_tests()
