#!/usr/bin/env python3
"""visits-server's command line: flags, environment variables (the flag wins), --help,
--version, --print-routes, usage errors (exit 2) and refusals to start (exit 1) that
leave the counter file untouched."""
import os
import socket
import subprocess

from harness import NOBODY, SERVER, ServerTest, require, run_tests

ROUTES = ("/ GET,HEAD visit\n/visits GET,HEAD count\n/cluster GET,HEAD cluster\n"
          "/slots GET,HEAD exchange\n/health GET,HEAD liveness\n/ready GET,HEAD readiness\n/metrics GET,HEAD metrics\n")
ENV_NAMES = ("PORT", "VISITS_BIND", "VISITS_DATA_DIR", "VISITS_THREADS", "VISITS_SYNC",
             "POD_NAME", "VISITS_PEERS", "VISITS_PEERS_DNS", "VISITS_PEER_TIMEOUT_MS",
             "VISITS_SYNC_PEERS_MS", "VISITS_RECOVER_MS")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(extra)
    return env


def run(args, env=None, as_nobody=False):
    cmd = [SERVER] + list(args)
    if as_nobody:
        cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"] + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env or clean_env(), timeout=30, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Informational(ServerTest):
    def test_help_shows_every_option_and_default(self):
        rc, out, err = run(["--help"])
        self.assertEqual((rc, err), (0, ""))
        for text in ("--port N", "(default 8080)", "--bind ADDR", "(default 0.0.0.0)",
                     "--data-dir DIR", "(default /data)", "--threads N", "CPU count",
                     "--sync MODE", "always | interval:MS", "--pod-name NAME", "hostname",
                     "--peers LIST", "--peers-dns NAME:PORT", "--peer-timeout-ms N",
                     "(default 500)", "--sync-peers-ms N", "(default 1000)", "--recover-ms N",
                     "(default 5000)", "--print-routes", "--version") + ENV_NAMES:
            self.assertIn(text, out)

    def test_version(self):
        rc, out, err = run(["--version"])
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(out, r"^visits-server \d+\.\d+\.\d+ \(libvisits \d+\.\d+\.\d+, "
                              r"libh2o 2\.\d+\.\d+\)\n$")

    def test_print_routes_is_the_route_table(self):
        self.assertEqual(run(["--print-routes"]), (0, ROUTES, ""))


class UsageErrors(ServerTest):
    def assert_usage_error(self, args, mention, env=None):
        rc, out, err = run(args, env)
        self.assertEqual(rc, 2, (args, out, err))
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, "one line: %r" % err)
        self.assertTrue(err.startswith("visits-server: "), err)
        self.assertIn(mention, err)
        return err

    def test_bad_flags(self):
        cases = [
            (["--port", "70000"], "--port: invalid value '70000'"),
            (["--port", "-1"], "--port"),
            (["--port", "80a"], "--port"),
            (["--port", ""], "--port"),
            (["--port=x"], "--port: invalid value 'x'"),
            (["--bind", "localhost"], "--bind: invalid value 'localhost'"),
            (["--bind", "1.2.3"], "--bind"),
            (["--threads", "0"], "--threads: invalid value '0'"),
            (["--threads", "100000"], "--threads"),
            (["--sync", "sometimes"], "--sync: invalid value 'sometimes'"),
            (["--sync", "interval:0"], "--sync"),
            (["--sync", "interval:"], "--sync"),
            (["--sync", "interval:3600001"], "--sync"),
            (["--data-dir", ""], "--data-dir"),
            (["--pod-name", ""], "--pod-name"),
            (["--pod-name", "a\tb"], "--pod-name"),
            (["--frobnicate"], "unknown option '--frobnicate'"),
            (["extra"], "unknown option 'extra'"),
            (["--port"], "--port: missing value"),
        ]
        for args, mention in cases:
            self.assert_usage_error(args, mention)

    def test_bad_environment_values(self):
        for name, value in (("PORT", "http"), ("VISITS_BIND", "::x"), ("VISITS_THREADS", "two"),
                            ("VISITS_SYNC", "interval:abc"), ("POD_NAME", "")):
            self.assert_usage_error([], "%s: invalid value" % name, clean_env(**{name: value}))


class Startup(ServerTest):
    def test_defaults_and_startup_line(self):
        srv = self.start(threads=2)
        line = srv.stdout().splitlines()[0]
        self.assertRegex(line, r"^visits-server: listening on http://127\.0\.0\.1:\d+ \(threads 2,"
                               r" sync always, counter %s = 0, pod %s, slot %s\.[0-9a-f]{16} \(new volume\),"
                               r" version " % (self.counter, socket.gethostname(),
                                               socket.gethostname()))
        self.assertEqual(srv.get_json("/visits")[1]["pod"], socket.gethostname())
        self.stop_ok(srv)

    def test_environment_configures(self):
        env = clean_env(PORT="0", VISITS_BIND="127.0.0.1", VISITS_DATA_DIR=self.data,
                        VISITS_THREADS="1", VISITS_SYNC="interval:250", POD_NAME="env-pod")
        srv = self.server(env=env)
        srv.command = lambda: [SERVER]
        srv.start()
        self.assertIn("(threads 1, sync interval:250, counter %s = 0, pod env-pod,"
                      % self.counter, srv.stdout())
        self.assertEqual(srv.get_json("/visits")[1], {"visits": 0, "pod": "env-pod"})
        self.stop_ok(srv)

    def test_flag_wins_over_environment(self):
        env = clean_env(POD_NAME="env-pod", VISITS_SYNC="bogus", VISITS_THREADS="zero",
                        VISITS_DATA_DIR="/nonexistent")
        srv = self.start(env=env, args=["--pod-name", "flag-pod", "--sync", "always"])
        self.assertIn("sync always", srv.stdout())
        self.assertEqual(srv.get_json("/visits")[1]["pod"], "flag-pod")
        self.stop_ok(srv)

    def test_ipv6_loopback(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            require(False, "no IPv6 loopback here")
        env = clean_env()
        srv = self.server(env=env)
        srv.command = lambda: [SERVER, "--bind", "::1", "--port", "0", "--data-dir", self.data]
        srv.start()
        self.assertIn("listening on http://[::1]:%d " % srv.port, srv.stdout())
        s = socket.create_connection(("::1", srv.port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200 "))
        s.close()
        self.stop_ok(srv)

    def test_port_in_use_exits_1(self):
        first = self.start()
        rc, out, err = run(["--bind", "127.0.0.1", "--port", str(first.port), "--data-dir",
                            self.data])
        self.assertEqual(rc, 1)
        self.assertIn("cannot listen on 127.0.0.1 port %d: Address already in use"
                      % first.port, err)
        self.stop_ok(first)


class Refusals(ServerTest):
    """The server refuses to start (exit 1, path and reason on stderr) and writes nothing."""

    def refuse(self, mention, data_dir=None, as_nobody=False):
        rc, out, err = run(["--bind", "127.0.0.1", "--port", "0", "--data-dir",
                            data_dir or self.data], as_nobody=as_nobody)
        self.assertEqual(rc, 1, (out, err))
        self.assertNotIn("listening", out)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(mention, err)
        return err

    def snapshot(self):
        st = os.stat(self.counter)
        return self.file_bytes(), st.st_mtime_ns, st.st_ino, st.st_mode

    def test_corrupt_file(self):
        for content in (b"", b"abc\n", b"12x\n", b"-1\n", b"007\n", b"1\n\n", b" 5\n",
                        b"99999999999999999999\n", b"\x00\n"):
            self.write_file(content)
            os.chmod(self.counter, 0o640)
            before = self.snapshot()
            err = self.refuse(self.counter)
            self.assertIn("corrupt counter file", err)
            self.assertIn("visitsctl set %s N" % self.counter, err)
            self.assertEqual(self.snapshot(), before, content)
            self.assertFalse([n for n in os.listdir(self.data) if ".tmp" in n])

    def test_missing_data_dir(self):
        missing = os.path.join(self.tmp, "missing")
        err = self.refuse(missing + ": cannot use the data directory: No such file or directory",
                          data_dir=missing)
        self.assertFalse(os.path.exists(missing))

    def test_data_dir_is_a_file(self):
        path = os.path.join(self.tmp, "file")
        with open(path, "wb") as f:
            f.write(b"7\n")
        self.refuse(path + ": cannot use the data directory: not a directory", data_dir=path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"7\n")

    def test_unwritable_data_dir(self):
        # root ignores permissions: as root the server runs as nobody in a root-owned
        # 0755 directory; otherwise the directory is made 0555.
        root = os.geteuid() == 0
        self.write_file(b"5\n")
        os.chmod(self.data, 0o755 if root else 0o555)
        self.addCleanup(os.chmod, self.data, 0o755)
        before = self.snapshot()
        self.refuse(self.data + ": data directory is not writable: Permission denied",
                    as_nobody=root)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(sorted(os.listdir(self.data)), ["visits"])

    def test_read_only_counter_file_still_counts(self):
        # The file is replaced, never written in place: its mode does not block counting.
        self.write_file(b"5\n")
        os.chmod(self.counter, 0o444)
        srv = self.start()
        self.assertEqual(srv.visit(), (200, {"visits": 6, "pod": socket.gethostname()}))
        self.stop_ok(srv)
        self.assertEqual(self.file_bytes(), b"6\n")
        self.assertEqual(os.stat(self.counter).st_mode & 0o777, 0o444)


if __name__ == "__main__":
    run_tests()
