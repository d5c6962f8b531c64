#!/usr/bin/env python3
"""Counting under load: every acknowledged visit is on disk, none is counted twice, a
restart keeps the count, interval mode flushes on SIGTERM, and SIGKILL during load in
always mode never leaves the file below the number of 200s the clients received."""
import http.client
import json
import os
import random
import signal
import threading
import time

from harness import SLOW, ServerTest, run_tests

ACCEPT_JSON = {"Accept": "application/json"}


def hammer(srv, clients, per_client, stop=None, deadline_s=120):
    """clients threads, each up to per_client GET / on one keep-alive connection (a new
    one after an error). Returns (values of the 200s, other statuses, errors, sent)."""
    values, others, errors = [], [], []
    sent = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + deadline_s * SLOW

    def client():
        conn = None
        mine, bad, errs, n = [], [], 0, 0
        while n < per_client and time.monotonic() < deadline and not (stop and stop.is_set()):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10 * SLOW)
                n += 1
                conn.request("GET", "/", headers=ACCEPT_JSON)
                r = conn.getresponse()
                body = r.read()
                if r.status == 200:
                    mine.append(json.loads(body)["visits"])
                else:
                    bad.append(r.status)
            except (OSError, http.client.HTTPException):
                errs += 1
                if conn is not None:
                    conn.close()
                conn = None
                if stop is not None and errs > 50:
                    break
                time.sleep(0.005)
        if conn is not None:
            conn.close()
        with lock:
            values.extend(mine)
            others.extend(bad)
            errors.append(errs)
            sent[0] += n

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return values, others, sum(errors), sent[0]


class Counting(ServerTest):
    def test_64_clients_x_200_visits_give_exactly_12800(self):
        srv = self.start()
        values, others, errors, sent = hammer(srv, 64, 200)
        self.assertEqual((others, errors, sent), ([], 0, 12800))
        # every visit got its own number: exactly 1..12800
        self.assertEqual(sorted(values), list(range(1, 12801)))
        self.assertEqual(self.file_bytes(), b"12800\n")
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 12800)
        want = '\nvisits_http_requests_total{route="/",method="GET",status="200"} 12800\n'
        metrics = srv.metrics_when(want)
        self.assertIn('\nvisits_total 12800\n', metrics)
        self.assertIn(want, metrics)
        self.stop_ok(srv)

        # a restart keeps the count and goes on from it
        srv = self.start()
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 12800)
        self.assertEqual(srv.visit()[1]["visits"], 12801)
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"12801\n")

    def test_interval_mode_flushes_everything_on_sigterm(self):
        # A period far longer than the test: only the shutdown flush can write the file.
        srv = self.start(args=["--sync", "interval:600000"])
        values, others, errors, sent = hammer(srv, 16, 100)
        self.assertEqual((others, errors, len(values)), ([], 0, 1600))
        self.assertEqual(sorted(values), list(range(1, 1601)))
        self.assertFalse(os.path.exists(self.counter), "written before the shutdown")
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 1600)
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"1600\n")
        self.assertIn("counter %s = 1600 flushed" % self.counter, srv.stdout())

    def test_interval_mode_writes_within_the_interval(self):
        srv = self.start(args=["--sync", "interval:100"])
        for i in range(5):
            self.assertEqual(srv.visit()[1]["visits"], i + 1)
        deadline = time.monotonic() + 2 * SLOW
        while time.monotonic() < deadline and not (
                os.path.exists(self.counter) and self.file_bytes() == b"5\n"):
            time.sleep(0.02)
        self.assertEqual(self.file_bytes(), b"5\n")
        self.stop_ok(srv)

    def test_sigkill_under_load_never_loses_an_acknowledged_visit(self):
        acknowledged = 0
        sent_total = 0
        srv = self.server()
        for rep in range(20):
            srv.start()
            stop = threading.Event()
            result = {}

            def load():
                result["r"] = hammer(srv, 16, 10 ** 6, stop=stop, deadline_s=10)

            t = threading.Thread(target=load)
            t.start()
            time.sleep(random.uniform(0.05, 0.25) * SLOW)
            srv.kill()  # SIGKILL
            stop.set()
            t.join()
            values, others, errors, sent = result["r"]
            self.assertEqual(others, [], "non-200 statuses before the kill")
            self.assertGreater(len(values), 0, "no visit acknowledged in repetition %d" % rep)
            acknowledged += len(values)
            sent_total += sent
            on_disk = int(self.file_bytes())
            self.assertGreaterEqual(on_disk, max(values), "rep %d" % rep)
            self.assertGreaterEqual(on_disk, acknowledged, "rep %d" % rep)
            self.assertLessEqual(on_disk, sent_total, "rep %d" % rep)
            acknowledged = on_disk  # the next run counts from the file
            sent_total = on_disk
        # stale temps of the kills are removed when the counter is next opened
        srv.start()
        self.assertEqual(srv.get_json("/visits")[1]["visits"], acknowledged)
        self.stop_ok(srv)
        self.assertEqual(sorted(n for n in os.listdir(self.data) if n != ".visits.lock"),
                         ["slot-id", "slots", "visits", "volume-id"])

    def test_sigterm_during_load_answers_or_refuses_cleanly(self):
        srv = self.start()
        stop = threading.Event()
        result = {}

        def load():
            result["r"] = hammer(srv, 16, 10 ** 6, stop=stop, deadline_s=10)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.3 * SLOW)
        self.stop_ok(srv)
        stop.set()
        t.join()
        values, others, errors, sent = result["r"]
        self.assertEqual(others, [])
        self.assertGreater(len(values), 0)
        # every 200 is on disk, and nothing was counted without being answered
        self.assertEqual(int(self.file_bytes()), len(values))
        self.assertEqual(sorted(values), list(range(1, len(values) + 1)))
        self.assertIn("received SIGTERM", srv.stdout())


if __name__ == "__main__":
    run_tests()
