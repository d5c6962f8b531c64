#!/usr/bin/env python3
"""Every catchable signal whose default would end the process either stops the server
gracefully (a log line naming it, the counter flushed, exit 0) or is ignored (the server
goes on answering); in either case no acknowledged visit is lost, in interval mode too
(where visits are acknowledged before they are written). Faults (SIGSEGV, SIGABRT ...)
keep their default and are not tested here."""
import signal
import time

from harness import SLOW, ServerTest, run_tests

VISITS = 50
STOP = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGXCPU,
        signal.SIGPWR]
IGNORED_LOGGED = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGVTALRM,
                  signal.SIGPROF, signal.SIGPOLL, signal.SIGSTKFLT, signal.SIGRTMIN,
                  signal.SIGRTMIN + 5, signal.SIGRTMAX]
IGNORED_SILENT = [signal.SIGPIPE, signal.SIGXFSZ]


def name(sig):
    if sig == signal.SIGRTMIN:
        return "SIGRTMIN"
    if signal.SIGRTMIN < sig <= signal.SIGRTMAX:
        return "SIGRTMIN+%d" % (sig - signal.SIGRTMIN)
    return "SIGPOLL" if sig == signal.SIGPOLL else signal.Signals(sig).name


class Signals(ServerTest):
    def count(self, srv, n, sync):
        """n visits answered 1..n; in interval mode the file is still behind."""
        conn = srv.conn()
        for i in range(1, n + 1):
            status, body = srv.visit(conn)
            self.assertEqual((status, body["visits"]), (200, i))
        conn.close()
        if sync != "always":
            self.assertFalse(self.file_bytes().strip() == str(n).encode(),
                             "the interval had already written: the test proves nothing")

    def run_signal(self, sig, sync):
        self.write_file(b"0\n")
        srv = self.start(args=["--sync", sync])
        self.count(srv, VISITS, sync)
        if sig in STOP:
            self.stop_ok(srv, sig, within=2.0)
            out = srv.stdout()
            for line in ("received %s: stopping" % name(sig), "= %d flushed; exit 0" % VISITS):
                self.assertTrue(line in out, "no log line: " + line)
        else:
            srv.proc.send_signal(sig)
            if sig in IGNORED_LOGGED:
                line = "received %s: ignored" % name(sig)
                self.assertTrue(line in srv.wait_stdout(line), "no log line: " + line)
            else:
                time.sleep(0.2 * SLOW)
            self.assertIsNone(srv.proc.poll(), "%s ended the server: exit %s"
                              % (name(sig), srv.proc.returncode))
            status, body = srv.visit()
            self.assertEqual((status, body["visits"]), (200, VISITS + 1))
            self.stop_ok(srv)
            if sig in IGNORED_SILENT:
                self.assertFalse("received %s" % name(sig) in srv.stdout(), name(sig) + " logged")
        want = VISITS if sig in STOP else VISITS + 1
        self.assertEqual(self.file_bytes(), b"%d\n" % want,
                         "%s lost acknowledged visits (%s)" % (name(sig), sync))

    def test_interval_mode(self):
        for sig in STOP + IGNORED_LOGGED + IGNORED_SILENT:
            with self.subTest(signal=name(sig)):
                self.run_signal(sig, "interval:5000")
                self.kill_all()

    def test_always_mode(self):
        for sig in [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM]:
            with self.subTest(signal=name(sig)):
                self.run_signal(sig, "always")
                self.kill_all()


if __name__ == "__main__":
    run_tests()
