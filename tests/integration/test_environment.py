#!/usr/bin/env python3
"""The count against what operators and volumes do under a running server (issue 12).

- The counter file deleted: the next visit continues from the last value, not 1; a log
  line says so; the server stays ready.
- The data directory replaced (rm -rf; mkdir) or swapped (mv DIR DIR.old; mkdir DIR), or
  gone for a while: the server follows the path by itself, never counts into a directory
  that is no longer there, and readiness comes back.
- A disk that hangs: past --stall-ms /ready answers 503 "counter write stalled for ...",
  /metrics shows it, and both recover when the write completes (a shim that holds fsync,
  and as root a real fsfreeze of an ext4 image).
- Standard descriptors closed at start: nothing but the counter's bytes reaches the data
  directory.
- visitsctl set while an interval-mode server holds acknowledged, unwritten visits.
"""
import json
import os
import shutil
import socket
import subprocess
import time

from harness import FAULT_LIB, SERVER, SLOW, ServerTest, require, run_tests

ACCEPT_JSON = {"Accept": "application/json"}
VISITSCTL = os.environ.get("VISITS_CTL", "")


class Environment(ServerTest):
    def assert_metric(self, text, line):
        """Asserts that a line of the exposition starts with line (short message)."""
        found = [l for l in text.splitlines() if l.startswith(line.split(" ")[0])]
        self.assertTrue(any(l.startswith(line) for l in found), "%r not in %r" % (line, found))

    def wait_stderr(self, srv, text, timeout=3.0):
        deadline = time.monotonic() + timeout * SLOW
        while text not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn(text, srv.stderr())

    def visits(self, srv, n):
        last = None
        conn = srv.conn()
        for _ in range(n):
            status, doc = srv.visit(conn)
            self.assertEqual(status, 200, doc)
            last = doc["visits"]
        conn.close()
        return last

    # ---- the file and the directory -------------------------------------------------------

    def test_counter_file_deleted(self):
        for sync in ("always", "interval:50"):
            with self.subTest(sync=sync):
                shutil.rmtree(self.data)
                os.mkdir(self.data)
                srv = self.start(args=["--sync", sync])
                self.assertEqual(self.visits(srv, 101), 101)
                deadline = time.monotonic() + 3 * SLOW
                while (not os.path.exists(self.counter) or self.file_bytes() != b"101\n") \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.unlink(self.counter)
                self.assertEqual(srv.visit()[1]["visits"], 102)  # never 1
                self.assertEqual(srv.get_json("/visits")[1]["visits"], 102)
                self.assertEqual(self.wait_ready(srv, 200)[0], 200)
                self.wait_stderr(srv, "the counter file was gone")
                self.stop_ok(srv)
                self.assertEqual(self.file_bytes(), b"102\n")
                self.assertIn("from the last known value", srv.stderr())

    def test_data_dir_replaced(self):
        """rm -rf DIR; mkdir DIR (a failed volume re-mounted at the same path)."""
        srv = self.start()
        self.assertEqual(self.visits(srv, 20), 20)
        shutil.rmtree(self.data)
        os.mkdir(self.data)
        # the next visit is counted in the new directory, from the last value
        status, doc = srv.visit()
        self.assertEqual((status, doc["visits"]), (200, 21))
        self.assertEqual(self.file_bytes(), b"21\n")
        self.assertEqual(self.wait_ready(srv, 200)[0], 200)
        self.assert_metric(srv.metrics_when('visits_file_events_total{event="dir_changed"} 1'),
                           'visits_file_events_total{event="dir_changed"} 1')
        self.wait_stderr(srv, "is another directory now")
        self.stop_ok(srv)
        self.assertEqual(sorted(os.listdir(self.data)), ["visits"])

    def test_data_dir_swapped(self):
        """mv DIR DIR.old; mkdir DIR: counting follows the path, DIR.old gets nothing more."""
        srv = self.start()
        self.assertEqual(self.visits(srv, 30), 30)
        old = self.data + ".old"
        os.rename(self.data, old)
        os.mkdir(self.data)
        self.assertEqual(self.visits(srv, 5), 35)
        self.assertEqual(self.file_bytes(), b"35\n")
        self.assertEqual(self.file_bytes(os.path.join(old, "visits")), b"30\n")
        self.wait_stderr(srv, "is another directory now")
        self.stop_ok(srv)

    def test_data_dir_swapped_while_idle(self):
        """The idle refresh notices the swap before any visit: /visits reads the new file."""
        srv = self.start()
        self.assertEqual(self.visits(srv, 7), 7)
        old = self.data + ".old"
        os.rename(self.data, old)
        os.mkdir(self.data)
        with open(self.counter, "wb") as f:
            f.write(b"500\n")  # what the operator put there
        deadline = time.monotonic() + 4 * SLOW
        while srv.get_json("/visits")[1]["visits"] != 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 500)
        self.wait_stderr(srv, "reopening the counter there")
        self.assertEqual(srv.visit()[1]["visits"], 501)
        self.assertEqual(self.file_bytes(os.path.join(old, "visits")), b"7\n")
        self.stop_ok(srv)

    def test_data_dir_gone_for_a_while(self):
        """rm -rf DIR and nothing at the path: 503 with the reason, not ready; once the
        directory is back the server recovers by itself (no restart)."""
        srv = self.start()
        self.assertEqual(self.visits(srv, 3), 3)
        shutil.rmtree(self.data)
        status, hdrs, body = srv.request("GET", "/", ACCEPT_JSON)
        self.assertEqual(status, 503, body)
        status, doc = self.wait_ready(srv, 503)
        self.assertEqual(status, 503)
        self.assertIn("counter write failed", doc["reason"])
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        os.mkdir(self.data)
        status, doc = self.wait_ready(srv, 200)
        self.assertEqual(status, 200, doc)
        self.assertEqual(srv.visit()[1]["visits"], 4)
        self.assertEqual(self.file_bytes(), b"4\n")
        self.stop_ok(srv)

    # ---- a disk that hangs ------------------------------------------------------------------

    def check_stall(self, srv, release, visit_value):
        """A visit is stuck in a write: /ready turns 503 past --stall-ms, /metrics shows the
        stall, /visits and /health still answer; release() ends it and all recovers."""
        conn = srv.conn(timeout=30 * SLOW)
        conn.request("GET", "/", headers=ACCEPT_JSON)
        status, doc = self.wait_ready(srv, 503, timeout=5)
        self.assertEqual(status, 503, doc)
        self.assertRegex(doc["reason"], r"^counter write stalled for [0-9]+\.[0-9] s")
        self.assertEqual(srv.request("GET", "/health")[0], 200)
        self.assertEqual(srv.request("GET", "/visits")[0], 200)
        metrics = srv.request("GET", "/metrics")[2].decode()
        self.assert_metric(metrics, "visits_ready 0")
        stall = [l for l in metrics.splitlines() if l.startswith("visits_write_stall_seconds ")]
        self.assertTrue(stall and float(stall[0].split()[1]) >= 0.3, stall)
        release()
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(json.loads(resp.read())["visits"], visit_value)
        conn.close()
        status, doc = self.wait_ready(srv, 200, timeout=5)
        self.assertEqual(status, 200, doc)
        metrics = srv.request("GET", "/metrics")[2].decode()
        self.assert_metric(metrics, "visits_write_stalls_total 1")
        self.assert_metric(metrics, "visits_write_stall_seconds 0.000")
        self.wait_stderr(srv, "counter write stalled for")
        srv.wait_stdout("the stalled write completed")

    def test_stalled_write_turns_not_ready(self):
        self.assertTrue(os.path.exists(FAULT_LIB), "VISITS_FAULT_LIB must name the fault shim")
        hold = os.path.join(self.tmp, "hold-fsync")
        srv = self.start(preload_fault=True, env={"VISITS_FAULT_FSYNC_STALL": hold},
                         args=["--stall-ms", "300"])
        self.assertEqual(srv.visit()[1]["visits"], 1)
        open(hold, "w").close()
        self.check_stall(srv, lambda: os.unlink(hold), 2)
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"2\n")

    def test_fsfreeze(self):
        """The real thing: the data directory on an ext4 image, frozen with fsfreeze."""
        require(os.geteuid() == 0, "needs root to mount an ext4 image and freeze it")
        for tool in ("mkfs.ext4", "fsfreeze", "mount"):
            require(shutil.which(tool) is not None, "%s not found" % tool)
        img = os.path.join(self.tmp, "disk.img")
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        r = subprocess.run(["mkfs.ext4", "-q", "-F", img], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout)
        mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-o", "loop", img, mnt], stderr=subprocess.PIPE)
        require(r.returncode == 0, "cannot mount a loop image: %s" % r.stderr.decode().strip())
        thawed = [False]

        def thaw():
            if not thawed[0]:
                subprocess.run(["fsfreeze", "-u", mnt])
                thawed[0] = True

        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        self.addCleanup(thaw)
        data = os.path.join(mnt, "data")
        os.mkdir(data)
        self.counter = os.path.join(data, "visits")
        srv = self.start(data_dir=data, args=["--stall-ms", "300"])
        self.assertEqual(srv.visit()[1]["visits"], 1)
        self.assertEqual(subprocess.run(["fsfreeze", "-f", mnt]).returncode, 0)
        self.check_stall(srv, thaw, 2)
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"2\n")

    # ---- standard descriptors ---------------------------------------------------------------

    def test_stdio_closed_at_start(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        cmd = ["sh", "-c", 'exec 0<&- 1>&- 2>&- "$@"', "sh", SERVER, "--bind", "127.0.0.1",
               "--port", str(port), "--data-dir", self.data, "--threads", "2"]
        proc = subprocess.Popen(cmd, env=dict(os.environ))
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + 10 * SLOW
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                self.assertIsNone(proc.poll(), "the server exited with %s" % proc.returncode)
                self.assertLess(time.monotonic(), deadline, "the server did not listen")
                time.sleep(0.05)
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(1, 51):
            conn.request("GET", "/", headers=ACCEPT_JSON)
            resp = conn.getresponse()
            self.assertEqual((resp.status, json.loads(resp.read())["visits"]), (200, i))
        conn.close()
        proc.terminate()
        self.assertEqual(proc.wait(10 * SLOW), 0)
        # the access log and messages went to /dev/null, not into the data directory
        self.assertEqual(sorted(os.listdir(self.data)), ["slot-id", "slots", "visits",
                                                         "volume-id"])
        self.assertEqual(self.file_bytes(), b"50\n")

    # ---- a counter at its maximum ------------------------------------------------------------

    def test_counter_at_maximum(self):
        """A lasting condition: 507 without Retry-After, readiness unchanged, one log line
        per episode; the operator's set ends it."""
        self.write_file(b"18446744073709551614\n")
        srv = self.start()
        self.assertEqual(srv.visit()[1]["visits"], 18446744073709551615)
        conn = srv.conn()
        for _ in range(20):
            status, hdrs, body = srv.request("GET", "/", ACCEPT_JSON, conn=conn)
            self.assertEqual(status, 507, body)
            self.assertNotIn("retry-after", hdrs)
            doc = json.loads(body)
            self.assertIn("counter would overflow 18446744073709551615", doc["error"])
            self.assertIn("visitsctl set", doc["error"])
            self.assertEqual(srv.request("GET", "/ready")[0], 200)
        conn.close()
        self.assertEqual(self.file_bytes(), b"18446744073709551615\n")
        self.wait_stderr(srv, "the counter is at its maximum")
        self.assertEqual(srv.stderr().count("at its maximum"), 1)
        r = subprocess.run([VISITSCTL, "set", self.counter, "5"], stdout=subprocess.PIPE)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(srv.visit()[1]["visits"], 6)
        self.write_file(b"18446744073709551615\n")  # and again: a second episode
        deadline = time.monotonic() + 3 * SLOW
        while srv.request("GET", "/", ACCEPT_JSON)[0] != 507 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.wait_stderr(srv, "at its maximum")
        deadline = time.monotonic() + 3 * SLOW
        while srv.stderr().count("at its maximum") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(srv.stderr().count("at its maximum"), 2)
        self.stop_ok(srv)

    # ---- the operator's set -----------------------------------------------------------------

    def test_set_under_interval_server(self):
        """visitsctl set wins as the base; the server's acknowledged, unwritten visits are
        added on top of it, whether the set lowers or raises the count."""
        visitsctl = VISITSCTL
        self.assertTrue(os.access(visitsctl, os.X_OK), "VISITS_CTL must name visitsctl")
        for set_to, expect in ((10, 60), (1000, 1050)):
            with self.subTest(set_to=set_to):
                shutil.rmtree(self.data)
                os.mkdir(self.data)
                with open(self.counter, "wb") as f:
                    f.write(b"100\n")
                srv = self.start(args=["--sync", "interval:60000"])
                self.assertEqual(self.visits(srv, 50), 150)
                self.assertEqual(self.file_bytes(), b"100\n")  # not written yet
                r = subprocess.run([visitsctl, "set", self.counter, str(set_to)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.decode(),
                                 "visitsctl: %s: replaced 100 with %d\n" % (self.counter, set_to))
                self.stop_ok(srv)
                self.assertEqual(self.file_bytes(), b"%d\n" % expect)


if __name__ == "__main__":
    run_tests()
