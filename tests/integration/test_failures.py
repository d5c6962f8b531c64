#!/usr/bin/env python3
"""Write failures: GET / answers 503 JSON with the reason, /ready turns 503, the other
routes keep serving, and the server recovers by itself once writes succeed again.

- A full disk: a 64 KiB tmpfs filled up gives a real ENOSPC (needs root to mount).
- An I/O error: a preloaded shim makes libvisits' fsync fail with EIO while a trigger
  file exists; the handle is then failed and must be closed and reopened.
"""
import errno
import json
import os
import subprocess
import time

from harness import FAULT_LIB, SLOW, ServerTest, require, run_tests

ACCEPT_JSON = {"Accept": "application/json"}


class Failures(ServerTest):
    def assert_failing(self, srv, reason, value):
        status, hdrs, body = srv.request("GET", "/", ACCEPT_JSON)
        self.assertEqual(status, 503, body)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(hdrs["retry-after"], "1")
        doc = json.loads(body)
        self.assertEqual(doc["status"], 503)
        self.assertIn(self.counter, doc["error"])
        self.assertIn(reason, doc["error"])
        status, doc = self.wait_ready(srv, 503)
        self.assertEqual(status, 503)
        self.assertEqual(doc["status"], "not ready")
        self.assertIn(reason, doc["reason"])
        # the routes that do not write keep working
        self.assertEqual(srv.get_json("/visits")[1]["visits"], value)
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        want = 'visits_http_requests_total{route="/",method="GET",status="503"}'
        metrics = srv.metrics_when(want)
        self.assertIn("\nvisits_ready 0\n", metrics)
        self.assertRegex(metrics, r"\nvisits_commit_failures_total [1-9]")
        self.assertIn(want, metrics)

    def test_disk_full_gives_503_then_recovers(self):
        require(os.geteuid() == 0, "needs root to mount a tmpfs")
        mnt = os.path.join(self.tmp, "small")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mnt],
                           stderr=subprocess.PIPE)
        require(r.returncode == 0, "cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        data = os.path.join(mnt, "data")
        os.mkdir(data)
        self.counter = os.path.join(data, "visits")
        self.write_file(b"5\n")
        srv = self.start(data_dir=data)
        status, doc = srv.visit()
        self.assertEqual((status, doc["visits"]), (200, 6))

        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        for size in (4096, 1):
            while True:
                try:
                    os.write(fd, b"x" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
                    break
        os.close(fd)

        self.assert_failing(srv, "No space left on device", 6)
        self.assertEqual(self.file_bytes(), b"6\n")  # never torn, never lost
        self.assertFalse([n for n in os.listdir(data) if ".tmp" in n], "temp left behind")
        self.assertIn("write failed: No space left on device", srv.stderr())

        os.unlink(filler)  # space again: the server notices by itself (no GET / needed)
        status, doc = self.wait_ready(srv, 200)
        self.assertEqual((status, doc), (200, {"status": "ready"}))
        self.assertEqual(srv.visit()[1]["visits"], 7)
        self.assertEqual(self.file_bytes(), b"7\n")
        self.assertIn("writes succeed again; ready", srv.wait_stdout("writes succeed again; ready"))
        self.stop_ok(srv)

    def test_fsync_error_fails_the_handle_then_reopens(self):
        self.assertTrue(os.path.exists(FAULT_LIB), "VISITS_FAULT_LIB must name the fault shim")
        trigger = os.path.join(self.tmp, "fail-fsync")
        self.write_file(b"10\n")
        srv = self.start(preload_fault=True, env={"VISITS_FAULT_FSYNC": trigger})
        self.assertEqual(srv.visit()[1]["visits"], 11)

        open(trigger, "w").close()
        self.assert_failing(srv, "Input/output error", 11)
        for _ in range(5):  # every attempt while the disk fails is refused, not counted
            self.assertEqual(srv.request("GET", "/", ACCEPT_JSON)[0], 503)
        self.assertEqual(self.file_bytes(), b"11\n")
        err = srv.stderr()
        self.assertIn("write failed: Input/output error", err)
        self.assertEqual(err.count("the counter handle failed"), 1, err)  # once, not per retry
        self.assertIn("closed it, reopening with backoff", err)

        os.unlink(trigger)
        status, doc = self.wait_ready(srv, 200)
        self.assertEqual((status, doc), (200, {"status": "ready"}))
        self.assertIn("writes succeed again (counter reopened); ready", srv.wait_stdout("writes succeed again (counter reopened); ready"))
        self.assertEqual(srv.visit()[1]["visits"], 12)
        self.assertEqual(self.file_bytes(), b"12\n")
        metrics = srv.request("GET", "/metrics")[2].decode()
        self.assertIn("\nvisits_ready 1\n", metrics)
        self.assertRegex(metrics, r"\nvisits_reopens_total [1-9]")
        self.stop_ok(srv)

    def test_fsync_error_in_interval_mode(self):
        self.assertTrue(os.path.exists(FAULT_LIB), "VISITS_FAULT_LIB must name the fault shim")
        trigger = os.path.join(self.tmp, "fail-fsync")
        srv = self.start(preload_fault=True, env={"VISITS_FAULT_FSYNC": trigger},
                         args=["--sync", "interval:50"])
        self.assertEqual(srv.visit()[1]["visits"], 1)
        deadline = time.monotonic() + 2 * SLOW
        while not os.path.exists(self.counter) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.file_bytes(), b"1\n")
        open(trigger, "w").close()
        self.assertEqual(srv.visit()[1]["visits"], 2)  # acknowledged before the write
        status, doc = self.wait_ready(srv, 503)  # the background write fails: not ready
        self.assertEqual(status, 503, doc)
        self.assertIn("Input/output error", doc["reason"])
        self.assertEqual(self.file_bytes(), b"1\n")
        os.unlink(trigger)
        status, doc = self.wait_ready(srv, 200)
        self.assertEqual(status, 200, doc)
        # The visit acknowledged before the EIO is lost with the failed handle (interval
        # mode's documented window); counting goes on from the file.
        status, doc = srv.visit()
        self.assertEqual((status, doc["visits"]), (200, 2))
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"2\n")


if __name__ == "__main__":
    run_tests()
