#!/usr/bin/env python3
"""The access log on stdout never stalls the event loops: with stdout a pipe that nobody
reads every request is still answered, the lines that do not fit the log queue are dropped
and counted (visits_access_log_dropped_lines_total), and SIGTERM still exits 0 within 2 s;
with stdout closed the server keeps serving; in a normal run every request has exactly one
whole line, in order."""
import os
import re
import select
import socket
import subprocess
import threading
import time

from harness import SLOW, Server, ServerTest, run_tests

# 500 bytes of user agent make each line ~600 bytes: 20,000 lines are ~12 MB, three times
# the 4 MiB log queue (LOGWRITER_QUEUE_MAX) plus the 64 KiB of a pipe.
LONG_UA = "stuck-stdout-test/" + "x" * 482
ACCESS_RE = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET (\S+) HTTP/1\.1" (\d{3}) \d+ '
                       r'\d+\.\d{6} "([^"]*)"$')


class PipedServer(Server):
    """A server whose stdout is a pipe that the test reads (or not, or closes)."""

    def spawn(self):
        self.runs += 1
        self.err_path = os.path.join(self.logs_dir, "stderr.%d" % self.runs)
        r, w = os.pipe()
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdout=w, stderr=err, env=self.env,
                                         stdin=subprocess.DEVNULL)
        os.close(w)
        self.pipe = r
        self.out = b""
        return self.proc

    def read_some(self, timeout):
        """Reads what the pipe has within timeout; returns False at EOF (or once the
        test closed its end)."""
        fd = self.pipe
        if fd is None:
            return False
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            b = os.read(fd, 65536) if ready else None
        except (OSError, ValueError):
            return False
        if b is None:
            return True
        self.out += b
        return bool(b)

    def stdout(self):
        self.read_some(0.01)
        return self.out.decode("utf-8", "replace")

    def drain_in_background(self):
        """Reads stdout until EOF in a thread; join the returned thread after the exit."""
        t = threading.Thread(target=lambda: [None for _ in iter(lambda: self.read_some(1), False)],
                             daemon=True)
        t.start()
        return t

    def close_pipe(self):
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None


def recv_responses(sock, count, buf=b""):
    """Reads count HTTP/1.1 responses framed by Content-Length; returns (statuses, rest).
    A socket timeout means the server stopped answering: that fails the test."""
    statuses = []
    while len(statuses) < count:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            m = re.search(r"\r\ncontent-length: *(\d+)", head, re.I)
            if m is None:
                raise AssertionError("response without Content-Length: %r" % head)
            end = head_end + 4 + int(m.group(1))
            if len(buf) >= end:
                statuses.append(int(head.split(" ", 2)[1]))
                buf = buf[end:]
                continue
        try:
            b = sock.recv(262144)
        except socket.timeout:
            raise AssertionError("no answer within %.0f s after %d of %d responses: the "
                                 "event loop is stalled" % (sock.gettimeout(), len(statuses),
                                                            count))
        if not b:
            raise AssertionError("connection closed after %d of %d responses"
                                 % (len(statuses), count))
        buf += b
    return statuses, buf


def hammer(port, nconns, per_conn, path, ua, batch=20):
    """GETs path per_conn times on each of nconns keep-alive connections (pipelined in
    batches), one thread per connection. Returns the list of statuses, or raises the first
    failure of a thread."""
    results, errors = [], []

    def run(k):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
            try:
                rest = b""
                for start in range(0, per_conn, batch):
                    n = min(batch, per_conn - start)
                    s.sendall(b"".join(
                        ("GET %s HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n"
                         "User-Agent: %s\r\n\r\n" % (path(k, start + i), ua(k))).encode()
                        for i in range(n)))
                    statuses, rest = recv_responses(s, n, rest)
                    results.extend(statuses)
            finally:
                s.close()
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def sample(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    if m is None:
        raise AssertionError("no sample %s in:\n%s" % (name, text))
    return float(m.group(1))


DROPPED = "visits_access_log_dropped_lines_total"


class AccessLog(ServerTest):
    def piped(self, args=()):
        srv = PipedServer(self.data, args=list(args),
                          logs_dir=os.path.join(self.tmp, "logs-%d" % len(self.servers)))
        os.mkdir(srv.logs_dir)
        self.servers.append(srv)
        self.addCleanup(srv.close_pipe)
        return srv.start()

    def test_stuck_stdout_does_not_stall_requests(self):
        # interval mode: the commits are not what this test measures
        srv = self.piped(["--sync", "interval:100"])  # stdout: read for the startup line only
        t0 = time.monotonic()
        statuses = hammer(srv.port, 4, 5000, lambda k, i: "/", lambda k: LONG_UA)
        took = time.monotonic() - t0
        self.assertEqual(len(statuses), 20000)
        self.assertEqual(statuses.count(200), 20000)
        self.assertLess(took, 30 * SLOW, "20,000 requests took %.1f s" % took)

        text = srv.request("GET", "/metrics")[2].decode()
        dropped = sample(text, DROPPED)
        self.assertGreater(dropped, 0)
        self.assertLessEqual(dropped, 20000 + 1)
        self.assertIn("# TYPE %s counter\n" % DROPPED, text)
        status, body = srv.get_json("/visits")
        self.assertEqual((status, body["visits"]), (200, 20000))
        err = srv.stderr()
        self.assertEqual(err.count("access log: dropping lines: the queue is full"), 1, err)
        self.assertNotIn("writing to stdout again", err)

        stop_took = self.stop_ok(srv)  # stdout still stuck
        err = srv.stderr()
        self.assertRegex(err, r"access log: stdout not drained within \d+ ms of the shutdown; "
                              r"\d+ lines not written \(\d+ dropped before\)\n")
        print("\n20,000 requests with stdout stuck: %.2f s, %d lines dropped, exit 0 after "
              "%.2f s" % (took, dropped, stop_took))

    def test_dropping_ends_when_stdout_is_read_again(self):
        srv = self.piped(["--sync", "interval:100"])
        hammer(srv.port, 2, 5000, lambda k, i: "/health", lambda k: LONG_UA)
        dropped = sample(srv.metrics_when(DROPPED), DROPPED)
        self.assertGreater(dropped, 0)
        reader = srv.drain_in_background()
        deadline = time.monotonic() + 10 * SLOW
        while "writing to stdout again" not in srv.stderr() and time.monotonic() < deadline:
            srv.request("GET", "/health")  # the writer tells after a successful write
            time.sleep(0.05)
        err = srv.stderr()
        m = re.search(r"access log: writing to stdout again; (\d+) lines were dropped\n", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(int(m.group(1)), dropped)
        self.assertEqual(err.count("access log: dropping lines"), 1, err)
        self.assertEqual(sample(srv.request("GET", "/metrics")[2].decode(), DROPPED), dropped)
        self.stop_ok(srv)
        reader.join(5 * SLOW)
        out = srv.out.decode()
        self.assertTrue(out.endswith("flushed; exit 0\n"), out[-300:])

    def test_normal_run_one_whole_line_per_request_in_order(self):
        srv = self.piped()
        reader = srv.drain_in_background()
        nconns, per_conn = 6, 400
        statuses = hammer(srv.port, nconns, per_conn,
                          lambda k, i: "/health?c=%d&i=%d" % (k, i), lambda k: "client-%d" % k,
                          batch=8)
        self.assertEqual(statuses, [200] * (nconns * per_conn))
        text = srv.metrics_when("%s 0\n" % DROPPED)
        self.assertEqual(sample(text, DROPPED), 0)
        self.stop_ok(srv)
        reader.join(5 * SLOW)
        self.assertFalse(reader.is_alive())
        out = srv.out.decode()
        self.assertTrue(out.endswith("\n"))
        # The /metrics polls' own lines may come after "received SIGTERM": libh2o logs a
        # request when it is disposed, which can be after its client has the answer.
        lines = [l for l in out.split("\n")[:-1] if '"GET /metrics ' not in l]
        self.assertRegex(lines[0], r"^visits-server: listening on http://")
        self.assertRegex(lines[-2], r"^visits-server: received SIGTERM: stopping")
        self.assertRegex(lines[-1], r"^visits-server: stopped after \d+ ms: .* exit 0$")
        seen = {k: [] for k in range(nconns)}
        for line in lines[1:-2]:
            m = ACCESS_RE.match(line)
            self.assertIsNotNone(m, "not one whole access-log line: %r" % line)
            path, status, ua = m.groups()
            q = re.match(r"^/health\?c=(\d+)&i=(\d+)$", path)
            self.assertIsNotNone(q, line)
            self.assertEqual((status, ua), ("200", "client-%s" % q.group(1)), line)
            seen[int(q.group(1))].append(int(q.group(2)))
        for k in range(nconns):
            self.assertEqual(seen[k], list(range(per_conn)), "connection %d" % k)
        self.assertNotIn("access log", srv.stderr())

    def test_closed_stdout_keeps_serving(self):
        srv = self.piped()
        srv.close_pipe()  # write(2) on stdout now fails with EPIPE
        statuses = hammer(srv.port, 2, 200, lambda k, i: "/", lambda k: "closed-stdout")
        self.assertEqual(statuses, [200] * 400)
        self.assertIsNone(srv.proc.poll(), "visits-server died: %s" % srv.stderr())
        text = srv.metrics_when(DROPPED)
        self.assertGreater(sample(text, DROPPED), 0)
        self.assertEqual(srv.get_json("/visits")[1]["visits"], 400)
        err = srv.stderr()
        self.assertEqual(err.count("access log: dropping lines: cannot write to stdout: "
                                   "Broken pipe"), 1, err)
        self.stop_ok(srv)


if __name__ == "__main__":
    run_tests()
