#!/usr/bin/env python3
"""--log-format json (VISITS_LOG_FORMAT=json): every line visits-server writes on stdout and
stderr is one JSON object that Python's json module parses (strictly: valid UTF-8, no raw
control characters, no duplicate keys, nothing but one object per line), with time, level,
msg and pod, and on access lines method, path, protocol, status, bytes, duration,
remote_addr and user_agent with the values of the request. Checked with normal requests,
hostile targets, methods and user agents (quotes, backslashes, control bytes, every
ill-formed UTF-8 byte, 10 KB), over HTTP/1.1 and HTTP/2, under concurrent load, with hostile
pod names and data directories, on errors, recoveries and dropped lines. An invalid value
exits 2 with a message; text stays the default (test_accesslog and test_routes check its
lines)."""
import collections
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time

from harness import (FAULT_LIB, SERVER, SLOW, H2Client, ServerTest, parse_responses,
                     raw_exchange, run_tests)
from test_accesslog import PipedServer

FIELD_MAX = 512  # bytes of a request's field in a line (accesslog.c), "..." appended beyond
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EVENT_KEYS = ["time", "level", "msg", "pod"]
ACCESS_KEYS = EVENT_KEYS + ["method", "path", "protocol", "status", "bytes", "duration",
                            "remote_addr", "user_agent"]
UA = b"jsonlog-test/1"


def logged(raw):
    """What a JSON line holds for the request field raw (bytes): ill-formed UTF-8 as U+FFFD,
    counted as Python's "replace" counts (maximal subparts); beyond FIELD_MAX bytes, cut
    where no well-formed character is split, "..." appended."""
    if len(raw) <= FIELD_MAX:
        return raw.decode("utf-8", "replace")
    cut = FIELD_MAX
    for start in range(cut - 1, cut - 4, -1):
        b = raw[start]
        if b < 0x80:
            break
        if b >= 0xC0:
            n = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            try:
                raw[start:start + n].decode("utf-8")
                if start + n > cut:
                    cut = start
            except UnicodeDecodeError:
                pass
            break
    return raw[:cut].decode("utf-8", "replace") + "..."


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys: %r" % keys)
    return dict(pairs)


def refuse_constant(name):
    raise ValueError("not JSON: %s" % name)


def utc_seconds(stamp):
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class JsonLines:
    """Assertions on the JSON lines of one stream."""

    def __init__(self, test, data, stream, pod, since):
        self.test = test
        self.data = data
        self.stream = stream
        self.pod = pod
        self.since = since  # time.time() before the server started
        self.docs = self.parse()

    def parse(self):
        t = self.test
        t.assertTrue(self.data == b"" or self.data.endswith(b"\n"),
                     "%s does not end with a whole line: %r" % (self.stream, self.data[-200:]))
        docs = []
        for raw in self.data.split(b"\n")[:-1]:
            where = "%s line %r" % (self.stream, raw[:300])
            text = raw.decode("utf-8")  # strict: ill-formed UTF-8 fails here
            # no second line hidden inside (U+2028, U+2029, NEL, form feed, ...)
            t.assertEqual(text.splitlines(), [text], where)
            doc = json.loads(text, object_pairs_hook=no_duplicates,
                             parse_constant=refuse_constant)
            t.assertIsInstance(doc, dict, where)
            t.assertEqual(list(doc)[:4], EVENT_KEYS, where)
            t.assertRegex(doc["time"], TIME_RE, where)
            at = utc_seconds(doc["time"])
            t.assertTrue(self.since - 1 <= at <= time.time() + 1, where)
            t.assertEqual(doc["level"], "error" if self.stream == "stderr" else "info", where)
            t.assertIsInstance(doc["msg"], str, where)
            if self.pod is None:  # not known yet (usage errors)
                t.assertIsInstance(doc["pod"], str, where)
            else:
                t.assertEqual(doc["pod"], self.pod, where)
            if doc["msg"] == "access":
                t.assertEqual(list(doc), ACCESS_KEYS, where)
                for key in ("method", "path", "protocol", "remote_addr"):
                    t.assertIsInstance(doc[key], str, where)
                t.assertIn(doc["protocol"], ("HTTP/1.0", "HTTP/1.1", "HTTP/2"), where)
                t.assertEqual(doc["remote_addr"], "127.0.0.1", where)
                t.assertIsInstance(doc["status"], int, where)
                t.assertIsInstance(doc["bytes"], int, where)
                t.assertIsInstance(doc["duration"], float, where)
                t.assertTrue(0 <= doc["duration"] < 60, where)
                t.assertTrue(doc["user_agent"] is None or isinstance(doc["user_agent"], str),
                             where)
            else:
                t.assertEqual(list(doc), EVENT_KEYS, where)
            docs.append(doc)
        return docs

    def access(self):
        return [d for d in self.docs if d["msg"] == "access"]

    def events(self):
        return [d["msg"] for d in self.docs if d["msg"] != "access"]


class H2Raw(H2Client):
    """HTTP/2 requests whose :path and user-agent are any bytes (HPACK literals, integers
    of any size)."""

    @staticmethod
    def integer(v, prefix):
        top = (1 << prefix) - 1
        if v < top:
            return bytes([v])
        out = [top]
        v -= top
        while v >= 128:
            out.append(v % 128 + 128)
            v //= 128
        return bytes(out + [v])

    def literal_bytes(self, index, value):
        return self.integer(index, 4) + self.integer(len(value), 7) + value

    def send_raw(self, stream, path, ua):
        block = (b"\x82\x86" + self.literal_bytes(4, path) + self.literal_bytes(1, b"localhost")
                 + self.literal_bytes(58, ua))  # 58: user-agent
        self.streams[stream] = [None, b"", False]
        self.s.sendall(self.frame(1, 0x5, stream, block))


def http1(method, target, ua, extra=b""):
    head = b"%s %s HTTP/1.1\r\nHost: t\r\n" % (method, target)
    if ua is not None:
        head += b"User-Agent: " + ua + b"\r\n"
    return head + extra + b"\r\n"


def exchange(port, requests):
    """Sends the requests pipelined on one connection; returns their statuses."""
    answer = raw_exchange(port, b"".join(requests) + http1(b"GET", b"/health?last", UA,
                                                           b"Connection: close\r\n"))
    statuses = [r[0] for r in parse_responses(answer)]
    if len(statuses) != len(requests) + 1:
        raise AssertionError("%d answers to %d requests" % (len(statuses), len(requests) + 1))
    return statuses[:-1]


class JsonLog(ServerTest):
    def start_json(self, pod="web-0", threads=2):
        self.t0 = time.time()
        return self.start(args=["--log-format", "json", "--pod-name", pod, "--http2"],
                          threads=threads)

    def lines(self, srv, pod="web-0"):
        """(stdout, stderr) of a stopped server as JsonLines."""
        return (JsonLines(self, read_bytes(srv.out_path), "stdout", pod, self.t0),
                JsonLines(self, read_bytes(srv.err_path), "stderr", pod, self.t0))

    def run_server(self, args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        for name in ("VISITS_LOG_FORMAT", "POD_NAME"):
            if env is None or name not in env:
                e.pop(name, None)
        return subprocess.run([SERVER, "--bind", "127.0.0.1", "--port", "0", "--data-dir",
                               self.data] + args, env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=10 * SLOW)

    # ---- normal operation --------------------------------------------------------------
    def test_flag_events_and_access_lines(self):
        self.t0 = time.time()
        srv = self.start(args=["--log-format", "json", "--pod-name", "web-0", "--http2"])
        sent = []  # (method, path, status, body bytes)
        c = srv.conn()
        for method, path, hdrs in (("GET", "/", {"Accept": "application/json"}),
                                   ("GET", "/", {}),
                                   ("HEAD", "/", {}),
                                   ("GET", "/visits", {}),
                                   ("GET", "/health", {}),
                                   ("GET", "/ready", {}),
                                   ("GET", "/nope?x=1&y=%22", {}),
                                   ("POST", "/visits", {"Content-Length": "0"}),
                                   ("GET", "/metrics", {})):
            hdrs = dict(hdrs, **{"User-Agent": UA.decode()})
            status, _, body = srv.request(method, path, hdrs, conn=c)
            sent.append((method, path, status, len(body) if method != "HEAD" else 0))
        c.close()
        self.assertEqual([s[2] for s in sent], [200, 200, 200, 200, 200, 200, 404, 405, 200])
        h2 = H2Client(srv.port)
        try:
            status, body = h2.get(1, "/visits")
        finally:
            h2.close()
        self.assertEqual(status, 200)
        self.stop_ok(srv)

        out, err = self.lines(srv)
        self.assertEqual(err.docs, [])
        events = out.events()
        self.assertRegex(events[0], r"^listening on http://127\.0\.0\.1:%d \(threads 2, sync "
                                    r"always, counter .*/visits = 0, pod web-0, " % srv.port)
        self.assertRegex(events[-2], r"^received SIGTERM: stopping")
        self.assertRegex(events[-1], r"^stopped after \d+ ms: counter .*/visits = 2 flushed; "
                                     r"exit 0$")
        self.assertEqual(len(events), 3, events)
        self.assertEqual(out.docs[0]["msg"], events[0])  # the startup line comes first
        access = out.access()
        got = [(d["method"], d["path"], d["status"], d["bytes"]) for d in access
               if d["protocol"] == "HTTP/1.1"]
        self.assertEqual(got, sent)
        for d in access:
            if d["protocol"] == "HTTP/1.1":
                self.assertEqual(d["user_agent"], UA.decode())
        h2line = [d for d in access if d["protocol"] == "HTTP/2"]
        self.assertEqual(len(h2line), 1, access)
        self.assertEqual((h2line[0]["method"], h2line[0]["path"], h2line[0]["status"],
                          h2line[0]["bytes"], h2line[0]["user_agent"]),
                         ("GET", "/visits", 200, len(body), None))

    def test_environment_variable_and_the_flag_wins(self):
        self.t0 = time.time()
        srv = self.start(args=["--pod-name", "web-0"], env={"VISITS_LOG_FORMAT": "json"})
        self.assertEqual(srv.request("GET", "/health", {"User-Agent": "env"})[0], 200)
        self.stop_ok(srv)
        out, err = self.lines(srv)
        self.assertEqual([(d["path"], d["user_agent"]) for d in out.access()],
                         [("/health", "env")])
        self.assertEqual(len(out.events()), 3)

        # a flag wins over the variable, even over a bad value
        srv = self.start(args=["--log-format", "text"], env={"VISITS_LOG_FORMAT": "json"})
        self.stop_ok(srv)
        self.assertRegex(srv.stdout(), r"^visits-server: listening on http://")
        srv = self.start(args=["--log-format", "json", "--pod-name", "web-0"],
                         env={"VISITS_LOG_FORMAT": "yaml"})
        self.stop_ok(srv)
        self.lines(srv)
        # text is the default
        srv = self.start()
        self.stop_ok(srv)
        self.assertRegex(srv.stdout(), r"^visits-server: listening on http://")

    # ---- usage errors --------------------------------------------------------------------
    def test_invalid_value_exits_2_with_a_message(self):
        for args, env, message in (
                (["--log-format", "yaml"], None,
                 "--log-format: invalid value 'yaml' (expected text or json)"),
                (["--log-format=JSON"], None,
                 "--log-format: invalid value 'JSON' (expected text or json)"),
                (["--log-format", ""], None,
                 "--log-format: invalid value '' (expected text or json)"),
                (["--log-format"], None, "--log-format: missing value (see --help)"),
                ([], {"VISITS_LOG_FORMAT": "xml"},
                 "VISITS_LOG_FORMAT: invalid value 'xml' (expected text or json)")):
            r = self.run_server(args, env)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertEqual(r.stdout, b"")
            self.assertEqual(r.stderr.decode(), "visits-server: %s\n" % message)

    def test_other_usage_errors_are_json_lines(self):
        # the format applies before any other value is checked, wherever the flag is
        for args, env in ((["--log-format", "json", "--threads", "0"], None),
                          (["--threads", "0", "--log-format=json"], None),
                          (["--threads", "0"], {"VISITS_LOG_FORMAT": "json"})):
            self.t0 = time.time()
            r = self.run_server(args + ["--pod-name", "web-0"], env)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(r.stdout, b"")
            err = JsonLines(self, r.stderr, "stderr", None, self.t0)
            self.assertEqual([d["msg"] for d in err.docs],
                             ["--threads: invalid value '0' (expected a number of threads "
                              "1..256)"])

    def test_startup_failure_is_a_json_line(self):
        self.write_file(b"12x\n")
        self.t0 = time.time()
        r = self.run_server(["--log-format", "json", "--pod-name", "web-0"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        err = JsonLines(self, r.stderr, "stderr", "web-0", self.t0)
        self.assertEqual(len(err.docs), 1, r.stderr)
        self.assertIn("%s: corrupt counter file" % self.counter, err.docs[0]["msg"])
        self.assertIn("refusing to start", err.docs[0]["msg"])
        self.assertEqual(read_bytes(self.counter), b"12x\n")

    # ---- hostile input -------------------------------------------------------------------
    def test_hostile_targets_methods_and_user_agents(self):
        cases = []  # (method, target, user agent): each answered and logged
        # quotes, backslashes, JSON syntax, a tab
        cases.append((b"GET", b'/q"\\{}[],:', b'"quoted" \\back\\slash {"json": [1]}\tend'))
        # every byte that is never UTF-8 on its own, in a target and in a user agent
        for b in range(0x80, 0x100):
            cases.append((b"GET", b"/b%02x/" % b + bytes([b]) + b"z",
                          b"ua " + bytes([b]) + b" z"))
        # every lead byte before continuation bytes that fit it or not
        for lead in range(0xC0, 0x100):
            for cont in (0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0):
                cases.append((b"GET", b"/c%02x%02x/" % (lead, cont) + bytes([lead, cont, cont])
                              + b"z", UA))
        # three- and four-byte forms at the edges: overlong, surrogate, above U+10FFFF,
        # truncated before ASCII and at the end; and the characters escaped rather than
        # kept (C1 controls, line and paragraph separators)
        for seq in (b"\xe0\xa0\x80", b"\xe0\x9f\xbf", b"\xed\x9f\xbf", b"\xed\xa0\x80",
                    b"\xef\xbf\xbf", b"\xef\xbb\xbf", b"\xf0\x90\x80\x80", b"\xf0\x8f\xbf\xbf",
                    b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xe2\x82",
                    b"\xf0\x9f\x98", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xc2\x80", b"\xc2\x85",
                    b"\xc2\x9f", b"\xc2\xa0", "é😀".encode()):
            cases.append((b"GET", b"/e/" + seq + b"/" + seq, seq + b"x" + seq))
        # methods
        for method in (b'GE"T', b"G\\ET", "GÉT".encode(), b"G\xffT", b"{}"):
            cases.append((method, b"/m", UA))
        # 10 KB: cut at 512 bytes, never inside a character
        for target in (b"/" + b"a" * 10240, b"/" + "é".encode() * 5000,
                       b"/" + b"x" * 509 + "😀".encode() * 2000,
                       b"/" + b"\xff" * 10240, b"/%22" * 2600):
            cases.append((b"GET", target, b"u" * 10240))
            cases.append((b"GET", b"/long-ua", target[1:]))

        srv = self.start_json(threads=2)
        statuses = []
        for start in range(0, len(cases), 40):
            batch = cases[start:start + 40]
            statuses += exchange(srv.port, [http1(m, t, u) for m, t, u in batch])
        for (m, t, u), status in zip(cases, statuses):
            self.assertIn(status, (200, 404, 405), (m, t[:60], u[:60]))

        # over HTTP/2 too (one request of 10 KB fits a frame)
        h2cases = [(b"/h2" + bytes([b]) + b"\"\\", b"h2 \xc3\xa9 " + bytes([b]))
                   for b in range(0x80, 0x100, 7)]
        h2cases += [(b"/h2/" + b"\xe2\x82\xac" * 1700, b"\xe2\x80\xa8" * 1700)]
        h2 = H2Raw(srv.port)
        h2_statuses = []
        try:
            # in groups of 8: the server refuses (REFUSED_STREAM) more than 16 requests in
            # progress on one connection, which a slow (sanitized) build may reach
            for first in range(0, len(h2cases), 8):
                group = range(first, min(first + 8, len(h2cases)))
                for i in group:
                    h2.send_raw(1 + 2 * i, *h2cases[i])
                h2_statuses += [h2.wait(1 + 2 * i)[0] for i in group]
        finally:
            h2.close()
        self.assertEqual(h2_statuses, [404] * len(h2cases))

        # control bytes: libh2o refuses them (400) before any handler, so they have no
        # access-log line; the connection is closed, and the server goes on
        for request in (http1(b"GET", b"/ctl\x01", UA), http1(b"GET", b"/ctl", b"x\x1b[31m"),
                        http1(b"GET", b"/ctl", b"x\x00y"), http1(b"GET", b"/ctl\x7f", UA),
                        http1(b"GET", b"/ctl", b"a\rb")):
            answer = raw_exchange(srv.port, request)
            self.assertEqual(parse_responses(answer)[0][0], 400, answer[:200])
        self.stop_ok(srv)

        out, err = self.lines(srv)
        self.assertEqual(err.docs, [])
        got = collections.Counter(
            (d["protocol"], d["method"], d["path"], d["user_agent"], d["status"])
            for d in out.access() if d["path"] != "/health?last")
        want = collections.Counter(
            ("HTTP/1.1", logged(m), logged(t), logged(u), s)
            for (m, t, u), s in zip(cases, statuses))
        want.update(("HTTP/2", "GET", logged(p), logged(u), 404) for p, u in h2cases)
        self.assertEqual(got - want, collections.Counter(), "lines nobody asked for")
        self.assertEqual(want - got, collections.Counter(), "requests without their line")
        self.assertFalse([d for d in out.access() if "ctl" in d["path"]])
        # the cuts: 512 bytes at most, "..." appended, and not inside a character
        paths = {d["path"] for d in out.access()}
        self.assertIn("/" + "a" * 511 + "...", paths)
        self.assertIn("/" + "é" * 255 + "...", paths)  # 511 bytes: the 256th would cross
        self.assertIn("/" + "x" * 509 + "...", paths)  # the 4-byte character would cross
        self.assertIn("/" + "\ufffd" * 511 + "...", paths)
        raw = read_bytes(srv.out_path)
        self.assertNotIn(b"\xe2\x80\xa8", raw)  # escaped, not written as is
        self.assertIn(b"\\u2028", raw)
        self.assertIn(b"\\u0085", raw)
        self.assertIn("é😀".encode(), raw)  # well-formed UTF-8 stays as it is

    def test_hostile_pod_names(self):
        names = [
            ('we"ird\\pod{}[]:,é\u2028', True),
            ("p" * 253, True),
            # ill-formed UTF-8: config.c may refuse it (exit 2); if it takes it, every line
            # shows it with U+FFFD
            (os.fsdecode(b"pod-\xff\xfe-\xc3"), False),
            (os.fsdecode(b"\xed\xa0\x80\"\\"), False),
        ]
        for name, must_run in names:
            for how in ("flag", "env"):
                args = ["--log-format", "json"]
                env = {}
                if how == "flag":
                    args += ["--pod-name", name]
                else:
                    env["POD_NAME"] = name
                self.t0 = time.time()
                srv = self.server(args=args, env=env)
                srv.spawn()
                deadline = time.monotonic() + 10 * SLOW
                while (srv.proc.poll() is None and "listening on" not in srv.stdout()
                       and time.monotonic() < deadline):
                    time.sleep(0.01)
                expected = os.fsencode(name).decode("utf-8", "replace")
                if srv.proc.poll() is not None:
                    # refused: only allowed for ill-formed names, with exit 2 and a reason
                    self.assertFalse(must_run, "exit %d: %s" % (srv.proc.returncode,
                                                                srv.stderr()))
                    self.assertEqual(srv.proc.returncode, 2)
                    err = read_bytes(srv.err_path)
                    docs = JsonLines(self, err, "stderr", None, self.t0).docs
                    self.assertEqual(len(docs), 1, err)
                    self.assertIn("POD_NAME" if how == "env" else "--pod-name",
                                  docs[0]["msg"])
                    continue
                m = re.search(r"listening on http://[^:]+:(\d+) ", srv.stdout())
                self.assertIsNotNone(m, srv.stdout())
                srv.port = int(m.group(1))
                status, _, body = srv.request("GET", "/visits", {"User-Agent": "pod"})
                self.assertEqual(status, 200)
                self.stop_ok(srv)
                out, err = self.lines(srv, pod=expected)
                self.assertEqual(err.docs, [])
                self.assertEqual([d["path"] for d in out.access()], ["/visits"])
                self.assertIn("pod %s, slot " % expected, out.events()[0])

    def test_hostile_data_directory_in_messages(self):
        # The counter's path is in the startup and stop lines: control bytes, a newline,
        # quotes, a backslash, ill-formed UTF-8 and a line separator in a directory name.
        name = b'd"\\\x01\n\x1b[31m\x7f\xff\xc3(\xe2\x80\xa8\xc2\x85\t\xe2\x82\xac'
        data = os.path.join(os.fsencode(self.tmp), name)
        os.mkdir(data)
        self.t0 = time.time()
        srv = self.server(data_dir=data, args=["--log-format", "json", "--pod-name", "web-0"])
        srv.start()
        self.assertEqual(srv.visit()[0], 200)
        self.stop_ok(srv)
        out, err = self.lines(srv)
        self.assertEqual(err.docs, [])
        path = (data + b"/visits").decode("utf-8", "replace")
        events = out.events()
        self.assertIn("counter %s = 0, pod web-0" % path, events[0])
        self.assertIn("counter %s = 1 flushed" % path, events[-1])
        self.assertEqual(len(events), 3, events)

    def test_long_message_is_cut_to_one_atomic_write(self):
        # 4 x 255 control bytes in the data directory's path: 6 bytes each once escaped, more
        # than PIPE_BUF. The line is cut to 4096 bytes (one write(2) to a pipe is atomic, so
        # stderr lines of several threads never mix), still valid JSON, "..." at the end.
        missing = os.path.join(os.fsencode(self.tmp), *[b"\x01" * 255] * 4)
        self.t0 = time.time()
        r = subprocess.run([SERVER, "--log-format", "json", "--pod-name", "web-0",
                            "--data-dir", missing], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10 * SLOW)
        self.assertEqual(r.returncode, 1, r.stderr[:300])
        err = JsonLines(self, r.stderr, "stderr", "web-0", self.t0)
        self.assertEqual(len(err.docs), 1)
        self.assertLessEqual(len(r.stderr), 4096)
        self.assertGreater(len(r.stderr), 4000)
        msg = err.docs[0]["msg"]
        self.assertTrue(msg.startswith(missing.decode()[:500]), msg[:100])
        self.assertTrue(msg.endswith("\x01..."), msg[-20:])

    # ---- load ----------------------------------------------------------------------------
    def test_under_concurrent_load(self):
        nconns, per_conn, batch = 8, 300, 20
        uas = [b'load "%d" \\ \xff\xc3( \xe2\x80\xa8 ' % k + b"v" * (k * 300)
               for k in range(nconns)]

        def target(k, i):
            kind = (b"/health", b"/visits", b"/")[i % 3]
            return kind + b"?c=%d&i=%d&q=%%22\xe2\x82\xac\xff\"" % (k, i)

        srv = self.start_json(threads=2, pod='web-"0"')
        errors, statuses = [], collections.Counter()
        lock = threading.Lock()

        def client(k):
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW)
                try:
                    got = []
                    for start in range(0, per_conn, batch):
                        s.sendall(b"".join(http1(b"GET", target(k, i), uas[k])
                                           for i in range(start, start + batch)))
                        buf = b""
                        while len(got) < start + batch:
                            b = s.recv(262144)
                            if not b:
                                raise AssertionError("connection %d closed" % k)
                            buf += b
                            try:
                                answers = parse_responses(buf)
                            except (AssertionError, ValueError, IndexError):
                                continue  # not all there yet
                            if len(answers) == batch:
                                got += [a[0] for a in answers]
                    with lock:
                        statuses.update(got)
                finally:
                    s.close()
            except Exception as e:  # reported below
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(nconns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120 * SLOW)
        took = time.monotonic() - t0
        self.assertFalse(errors, errors[:1])
        self.assertEqual(statuses, {200: nconns * per_conn})
        self.assertLess(took, 60 * SLOW)
        text = srv.metrics_when("visits_access_log_dropped_lines_total 0\n")
        self.assertIn("\nvisits_access_log_dropped_lines_total 0\n", text)
        self.assertEqual(srv.get_json("/visits")[1]["visits"], nconns * per_conn // 3)
        self.stop_ok(srv)

        out, err = self.lines(srv, pod='web-"0"')
        self.assertEqual(err.docs, [])
        seen = {k: [] for k in range(nconns)}
        for d in out.access():
            m = re.match(r"^/(?:health|visits|)\?c=(\d+)&i=(\d+)&", d["path"])
            if m is None:
                continue  # the test's own /metrics and /visits
            k, i = int(m.group(1)), int(m.group(2))
            self.assertEqual(d["path"], logged(target(k, i)))
            self.assertEqual(d["user_agent"], logged(uas[k]))
            self.assertEqual((d["method"], d["status"]), ("GET", 200))
            seen[k].append(i)
        for k in range(nconns):
            self.assertEqual(seen[k], list(range(per_conn)), "connection %d" % k)
        print("\n%d requests on %d connections in %.2f s, %d JSON lines"
              % (nconns * per_conn, nconns, took, len(out.docs)))

    # ---- errors, recoveries, dropped lines -----------------------------------------------
    def test_errors_and_recoveries(self):
        self.assertTrue(os.path.exists(FAULT_LIB), "VISITS_FAULT_LIB must name the fault shim")
        trigger = os.path.join(self.tmp, "fail-fsync")
        self.t0 = time.time()
        srv = self.start(args=["--log-format", "json", "--pod-name", "web-0"],
                         preload_fault=True, env={"VISITS_FAULT_FSYNC": trigger})
        self.assertEqual(srv.visit()[0], 200)
        open(trigger, "w").close()
        self.assertEqual(srv.request("GET", "/", {"Accept": "application/json"})[0], 503)
        os.unlink(trigger)
        deadline = time.monotonic() + 10 * SLOW
        while srv.request("GET", "/ready")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("writes succeed again", srv.wait_stdout("writes succeed again"))
        self.assertEqual(srv.visit()[1]["visits"], 2)
        self.stop_ok(srv)
        out, err = self.lines(srv)
        msgs = [d["msg"] for d in err.docs]
        self.assertTrue(any("write failed: Input/output error" in m for m in msgs), msgs)
        self.assertTrue(any("the counter handle failed" in m for m in msgs), msgs)
        self.assertTrue(any("writes succeed again (counter reopened); ready" in m
                            for m in out.events()), out.events())
        self.assertIn(503, [d["status"] for d in out.access()])

    def test_dropped_lines_are_told_in_json(self):
        self.t0 = time.time()
        srv = PipedServer(self.data, args=["--log-format", "json", "--pod-name", "web-0"],
                          logs_dir=self.tmp)
        self.servers.append(srv)
        self.addCleanup(srv.close_pipe)
        srv.start()
        srv.close_pipe()  # write(2) on stdout now fails with EPIPE
        for _ in range(50):
            self.assertEqual(srv.request("GET", "/health")[0], 200)
        deadline = time.monotonic() + 5 * SLOW
        while "dropping lines" not in srv.stderr() and time.monotonic() < deadline:
            srv.request("GET", "/health")
            time.sleep(0.02)
        self.stop_ok(srv)
        err = JsonLines(self, read_bytes(srv.err_path), "stderr", "web-0", self.t0)
        msgs = [d["msg"] for d in err.docs]
        self.assertEqual(msgs[0], "access log: dropping lines: cannot write to stdout: "
                                  "Broken pipe; counted in visits_access_log_dropped_lines_total")
        self.assertRegex(msgs[-1], r"^access log: (\d+ lines were dropped while running|stdout "
                                   r"not drained within \d+ ms of the shutdown; .*)$")


if __name__ == "__main__":
    run_tests()
