#!/usr/bin/env python3
"""A real Prometheus (Debian's `prometheus`) scrapes three visits-servers on loopback and
evaluates the alerting rules of deploy/components/monitoring/prometheusrule.yaml, copied
with every `for:` cut to 1s. Through Prometheus' HTTP API:

- every target is up, and each server's visits_total, and their sum, equal the counter
  files on disk after a known load;
- an fsync failure injected into one server (the fault shim, as in test_failures.py)
  makes VisitsWritesFailing and VisitsPodNotReady fire for that server, named in the
  alert's labels and description, and for no other.

Scrape and evaluation intervals are 1 s; every wait polls with a deadline.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import FAULT_LIB, SLOW, ServerTest, require, run_tests

PROMETHEUS = shutil.which("prometheus")
RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                     "components", "monitoring", "prometheusrule.yaml")
PODS = ("visits-a", "visits-b", "visits-c")
FAULTY = "visits-b"


def rules_for_test(src, dst):
    """The PrometheusRule's spec as a plain rules file (the lines after `spec:`, dedented;
    tests/deploy checks that this equals a YAML parse), every `for:` set to 1s."""
    with open(src) as f:
        lines = f.read().split("\n")
    spec = lines[lines.index("spec:") + 1:]
    text, n = re.subn(r"(?m)^(\s+for:) \S+$", r"\1 1s", "\n".join(l[2:] for l in spec))
    if n == 0 or "VisitsWritesFailing" not in text:
        raise AssertionError("%s: no `for:` or no VisitsWritesFailing alert found" % src)
    with open(dst, "w") as f:
        f.write(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, workdir, config):
        self.dir = workdir
        self.cfg = os.path.join(workdir, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.proc = None
        self.port = None

    def start(self, timeout=30):
        """Starts it on a free loopback port (another try if the port was taken meanwhile)
        and waits for /-/ready."""
        for attempt in range(3):
            self.port = free_port()
            self.log = os.path.join(self.dir, "prometheus.%d.log" % attempt)
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [PROMETHEUS, "--config.file=" + self.cfg,
                     "--storage.tsdb.path=" + os.path.join(self.dir, "tsdb-%d" % attempt),
                     "--web.listen-address=127.0.0.1:%d" % self.port,
                     "--log.level=warn"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + timeout * SLOW
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(self.url("/-/ready"), timeout=2) as r:
                        if r.status == 200:
                            return self
                except (urllib.error.URLError, ConnectionError, socket.timeout):
                    pass
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log_text():
                break
        raise AssertionError("prometheus did not become ready on 127.0.0.1:%d:\n%s"
                             % (self.port, self.log_text()[-3000:]))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def url(self, path, **params):
        q = "?" + urllib.parse.urlencode(params) if params else ""
        return "http://127.0.0.1:%d%s%s" % (self.port, path, q)

    def api(self, path, **params):
        with urllib.request.urlopen(self.url("/api/v1/" + path, **params), timeout=5) as r:
            doc = json.loads(r.read())
        if doc.get("status") != "success":
            raise AssertionError("prometheus %s: %r" % (path, doc))
        return doc["data"]

    def query(self, expr):
        """Instant query: {pod label (or instance): float value}."""
        out = {}
        for s in self.api("query", query=expr)["result"]:
            out[s["metric"].get("pod", s["metric"].get("instance", ""))] = float(s["value"][1])
        return out

    def alerts(self, name):
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]


class RealPrometheus(ServerTest):
    def poll(self, what, fn, timeout):
        """fn() until it returns a true value; its last value in the failure message."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%s: not within %.0f s; last: %r\nprometheus log:\n%s"
                                     % (what, timeout * SLOW, getattr(fn, "last", got),
                                        self.prom.log_text()[-2000:]))
            time.sleep(0.2)

    def test_scrape_sum_and_write_failure_alert(self):
        require(PROMETHEUS is not None, "prometheus not found in PATH (apt-get install prometheus)")
        self.assertTrue(os.path.exists(FAULT_LIB), "VISITS_FAULT_LIB must name the fault shim")
        trigger = os.path.join(self.tmp, "fail-fsync")
        start_values = {"visits-a": b"1000\n", "visits-b": b"20\n", "visits-c": None}
        load = {"visits-a": 30, "visits-b": 20, "visits-c": 50}
        srv, counters = {}, {}
        for pod in PODS:
            d = os.path.join(self.tmp, pod)
            os.mkdir(d)
            counters[pod] = os.path.join(d, "visits")
            if start_values[pod] is not None:
                self.write_file(start_values[pod], counters[pod])
            faulty = pod == FAULTY
            srv[pod] = self.start(data_dir=d, args=["--pod-name", pod], preload_fault=faulty,
                                  env={"VISITS_FAULT_FSYNC": trigger} if faulty else None)

        rules = os.path.join(self.tmp, "visits.rules.yaml")
        rules_for_test(RULES, rules)
        targets = "\n".join(
            "      - targets: ['127.0.0.1:%d']\n        labels: {pod: %s, namespace: it}"
            % (srv[p].port, p) for p in PODS)
        self.prom = Prometheus(self.tmp, (
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "rule_files: ['%s']\n"
            "scrape_configs:\n  - job_name: visits\n    static_configs:\n%s\n") % (rules, targets))
        self.addCleanup(self.prom.stop)
        self.prom.start()

        # A known load, acknowledged one by one (always mode: each is on disk).
        for pod in PODS:
            conn = srv[pod].conn()
            for _ in range(load[pod]):
                self.assertEqual(srv[pod].visit(conn)[0], 200)
            conn.close()
        files = {p: int(self.file_bytes(counters[p])) for p in PODS}
        self.assertEqual(files, {"visits-a": 1030, "visits-b": 40, "visits-c": 50})

        def all_up():
            ts = self.prom.api("targets")["activeTargets"]
            all_up.last = [(t["labels"].get("pod"), t["health"], t["lastError"]) for t in ts]
            return len(ts) == 3 and all(t["health"] == "up" for t in ts)
        self.poll("every target up", all_up, 20)
        self.assertEqual(self.prom.query('up{job="visits"}'), {p: 1.0 for p in PODS})

        want = {p: float(v) for p, v in files.items()}

        def totals():
            got = self.prom.query('visits_total{job="visits"}')
            totals.last = got
            return got == want
        self.poll("visits_total per pod equals the files", totals, 15)
        self.assertEqual(self.prom.query('sum(visits_total{job="visits"})'),
                         {"": float(sum(files.values()))})
        self.assertEqual(sum(files.values()), 1120)

        # No failure alert on healthy servers (a few evaluations have run by now). Latency
        # is left out: with `for: 1s`, one slow fsync on this shared disk may trip it.
        health = ("VisitsWritesFailing", "VisitsPodNotReady", "VisitsTargetDown")
        self.assertEqual([a for a in self.prom.api("alerts")["alerts"]
                          if a["labels"]["alertname"] in health], [])

        # Make visits-b's disk fail, once Prometheus has seen its failure counter at 0.
        self.poll("visits_commit_failures_total of visits-b scraped at 0",
                  lambda: self.prom.query('visits_commit_failures_total{pod="%s"}' % FAULTY)
                  == {FAULTY: 0.0}, 10)
        open(trigger, "w").close()
        self.addCleanup(lambda: os.path.exists(trigger) and os.unlink(trigger))
        status, _, body = srv[FAULTY].request("GET", "/", {"Accept": "application/json"})
        self.assertEqual(status, 503, body)

        def firing():
            got = {name: [a for a in self.prom.alerts(name) if a["state"] == "firing"]
                   for name in ("VisitsWritesFailing", "VisitsPodNotReady")}
            firing.last = got
            return got if all(got.values()) else None
        got = self.poll("VisitsWritesFailing and VisitsPodNotReady firing", firing, 30)
        for name, alerts in got.items():
            self.assertEqual([a["labels"]["pod"] for a in alerts], [FAULTY], alerts)
            self.assertEqual(alerts[0]["labels"]["instance"], "127.0.0.1:%d" % srv[FAULTY].port)
            self.assertEqual(alerts[0]["labels"]["namespace"], "it")
            self.assertIn("Pod it/%s:" % FAULTY, alerts[0]["annotations"]["description"])
            self.assertTrue(alerts[0]["annotations"]["runbook_url"].endswith(
                "docs/operations.md#" + name.lower()), alerts[0]["annotations"])
        failing = got["VisitsWritesFailing"][0]
        self.assertEqual(failing["labels"]["severity"], "critical")
        self.assertRegex(failing["annotations"]["description"],
                         r"^Pod it/visits-b: [0-9.]+ counter writes failed in the last 5 minutes")
        # Nothing for the healthy servers, in any state.
        for name in health:
            others = [a for a in self.prom.alerts(name) if a["labels"].get("pod") != FAULTY]
            self.assertEqual(others, [], name)
        self.assertEqual(self.prom.alerts("VisitsTargetDown"), [])

        # The disk heals: the server recovers by itself and counts on.
        os.unlink(trigger)
        self.poll("visits_ready of visits-b back to 1 in Prometheus",
                  lambda: self.prom.query('visits_ready{pod="%s"}' % FAULTY) == {FAULTY: 1.0}, 15)
        self.assertEqual(srv[FAULTY].visit()[1]["visits"], 41)
        self.assertEqual(self.file_bytes(counters[FAULTY]), b"41\n")
        for pod in PODS:
            self.stop_ok(srv[pod])


if __name__ == "__main__":
    run_tests()
