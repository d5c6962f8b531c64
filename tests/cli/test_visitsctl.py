#!/usr/bin/env python3
"""Tests of visitsctl: every command, exit status and message, and the bytes on disk.

Run by ctest as: test_visitsctl.py VISITSCTL VERSION
Each test works in a fresh temporary directory. Cases that need a permission error drop
privileges to nobody with setpriv when run as root (root would bypass the permissions).
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

VISITSCTL = None
VERSION = None
NOBODY = 65534
MAX = 18446744073709551615


def hint(path):
    return "replace it with: visitsctl set %s N" % path


def corrupt_msg(path, shown):
    return (
        "visitsctl: %s: corrupt counter file (expected a decimal number): holds %s; %s\n"
        % (path, shown, hint(path))
    )


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="visitsctl-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "visits")

    def run_cli(self, *args, as_nobody=False, cwd=None, stdout=subprocess.PIPE):
        cmd = [VISITSCTL] + list(args)
        if as_nobody and os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd,
                           timeout=60)
        out = p.stdout.decode() if p.stdout is not None else None
        return p.returncode, out, p.stderr.decode()

    def expect(self, args, rc, out="", err="", **kw):
        got = self.run_cli(*args, **kw)
        self.assertEqual(got, (rc, out, err), "visitsctl %r" % (args,))

    def write(self, data, path=None, mode=0o644):
        path = path or self.path
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    def read(self, path=None):
        with open(path or self.path, "rb") as f:
            return f.read()

    def listing(self):
        return sorted(os.listdir(self.dir))

    def snapshot(self, path=None):
        """What must not change when a command leaves a file alone."""
        st = os.stat(path or self.path)
        return (self.read(path), st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode))

    def open_to_nobody(self):
        """Lets nobody reach (not write) the test directory; checks nobody can run us."""
        os.chmod(self.dir, 0o755)
        rc, out, err = self.run_cli("--version", as_nobody=True)
        self.assertEqual(rc, 0, "nobody cannot run %s (every directory above it must be "
                         "searchable by others): %s" % (VISITSCTL, err))


class HelpAndVersion(Base):
    def test_help(self):
        rc, out, err = self.run_cli("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(out.startswith("Usage: visitsctl get FILE\n"
                                       "       visitsctl incr FILE [N]\n"
                                       "       visitsctl set FILE N\n"
                                       "       visitsctl check FILE\n"
                                       "       visitsctl slots DIR\n"
                                       "       visitsctl --help | --version\n"), out)
        self.assertIn("Exit status: 0 success; 1 the command failed", out)
        for args in (["-h"], ["get", "--help"], ["incr", "-h"], ["set", "x", "--help"]):
            self.expect(args, 0, out)
        self.assertEqual(self.listing(), [])

    def test_version(self):
        self.expect(["--version"], 0, "visitsctl %s\n" % VERSION)

    def test_help_and_version_take_no_argument(self):
        self.expect(["--version", "x"], 2, "",
                    "visitsctl: unexpected argument \"x\" (try 'visitsctl --help')\n")
        self.expect(["--help", "x"], 2, "",
                    "visitsctl: unexpected argument \"x\" (try 'visitsctl --help')\n")


class Usage(Base):
    def test_command_errors(self):
        self.expect([], 2, "", "visitsctl: missing command (try 'visitsctl --help')\n")
        self.expect(["frob"], 2, "", "visitsctl: unknown command \"frob\" (try 'visitsctl --help')\n")
        self.expect([""], 2, "", "visitsctl: unknown command \"\" (try 'visitsctl --help')\n")
        self.expect(["--frob"], 2, "", "visitsctl: unknown option \"--frob\" (try 'visitsctl --help')\n")
        self.expect(["GET", self.path], 2, "",
                    "visitsctl: unknown command \"GET\" (try 'visitsctl --help')\n")

    def test_argument_counts(self):
        p = self.path
        cases = [
            (["get"], "get: missing FILE (usage: visitsctl get FILE)"),
            (["get", p, "1"], "get: unexpected argument \"1\" (usage: visitsctl get FILE)"),
            (["check"], "check: missing FILE (usage: visitsctl check FILE)"),
            (["check", p, p], "check: unexpected argument \"%s\" (usage: visitsctl check FILE)" % p),
            (["incr"], "incr: missing FILE (usage: visitsctl incr FILE [N])"),
            (["incr", p, "1", "2"], "incr: unexpected argument \"2\" (usage: visitsctl incr FILE [N])"),
            (["set"], "set: missing FILE (usage: visitsctl set FILE N)"),
            (["set", p], "set: missing N (usage: visitsctl set FILE N)"),
            (["set", p, "1", "2"], "set: unexpected argument \"2\" (usage: visitsctl set FILE N)"),
            (["get", ""], "get: empty FILE (usage: visitsctl get FILE)"),
            (["incr", "", "1"], "incr: empty FILE (usage: visitsctl incr FILE [N])"),
            (["get", "--frob", p], "get: unknown option \"--frob\" (usage: visitsctl get FILE)"),
            (["slots"], "slots: missing DIR (usage: visitsctl slots DIR)"),
            (["slots", ""], "slots: empty DIR (usage: visitsctl slots DIR)"),
            (["slots", p, p], "slots: unexpected argument \"%s\" (usage: visitsctl slots DIR)" % p),
            (["incr", p, "-x"], "incr: unknown option \"-x\" (usage: visitsctl incr FILE [N])"),
        ]
        for args, msg in cases:
            self.expect(args, 2, "", "visitsctl: %s\n" % msg)
        self.assertEqual(self.listing(), [])

    def test_bad_n(self):
        cases = [
            ("-1", "has a sign"),
            ("+1", "has a sign"),
            ("-0", "has a sign"),
            ("", "is empty"),
            ("1x", "is not a decimal number"),
            ("x", "is not a decimal number"),
            (" 1", "is not a decimal number"),
            ("1 ", "is not a decimal number"),
            ("1\n", "is not a decimal number"),
            ("1.0", "is not a decimal number"),
            ("0x10", "is not a decimal number"),
            ("1e3", "is not a decimal number"),
            ("\u00e9", "is not a decimal number"),
            ("007", "has a leading zero"),
            ("00", "has a leading zero"),
            ("18446744073709551616", "is larger than 18446744073709551615"),
            ("18446744073709551620", "is larger than 18446744073709551615"),
            ("99999999999999999999999", "is larger than 18446744073709551615"),
        ]
        shown = {"1\n": "1\\n", "\u00e9": "\\xc3\\xa9"}
        for n, why in cases:
            for cmd, syn in (("incr", "FILE [N]"), ("set", "FILE N")):
                self.expect([cmd, self.path, n], 2, "",
                            "visitsctl: %s: invalid N \"%s\": %s (usage: visitsctl %s %s)\n"
                            % (cmd, shown.get(n, n), why, cmd, syn))
        # a refused N writes nothing, not even the lock file
        self.assertEqual(self.listing(), [])
        self.write(b"7\n")
        before = self.snapshot()
        self.expect(["set", self.path, "-5"], 2, "",
                    "visitsctl: set: invalid N \"-5\": has a sign (usage: visitsctl set FILE N)\n")
        self.assertEqual(self.snapshot(), before)

    def test_double_dash_ends_options(self):
        self.write(b"3\n", os.path.join(self.dir, "-f"))
        self.expect(["get", "--", "-f"], 0, "3\n", cwd=self.dir)
        self.expect(["incr", "--", "-f", "2"], 0, "5\n", cwd=self.dir)
        self.expect(["get", "-f"], 2, "",
                    "visitsctl: get: unknown option \"-f\" (usage: visitsctl get FILE)\n",
                    cwd=self.dir)
        self.assertEqual(self.read(os.path.join(self.dir, "-f")), b"5\n")


class Get(Base):
    def test_missing_file_prints_0_and_creates_nothing(self):
        self.expect(["get", self.path], 0, "0\n")
        self.assertEqual(self.listing(), [])

    def test_values(self):
        for data, out in ((b"0\n", "0\n"), (b"42\n", "42\n"), (b"42", "42\n"),
                          (b"%d\n" % MAX, "%d\n" % MAX)):
            self.write(data)
            before = self.snapshot()
            self.expect(["get", self.path], 0, out)
            self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])

    def test_relative_path(self):
        self.write(b"9\n")
        self.expect(["get", "visits"], 0, "9\n", cwd=self.dir)
        self.expect(["get", "./visits"], 0, "9\n", cwd=self.dir)

    def test_corrupt_is_reported_and_left_alone(self):
        cases = [
            (b"", '""'),
            (b"12a\n", '"12a\\n"'),
            (b"\n", '"\\n"'),
            (b"-1\n", '"-1\\n"'),
            (b"+1\n", '"+1\\n"'),
            (b"007\n", '"007\\n"'),
            (b" 1\n", '" 1\\n"'),
            (b"1\n\n", '"1\\n\\n"'),
            (b"1\r\n", '"1\\r\\n"'),
            (b"1\x00", '"1\\x00"'),
            (b"\xff\"\\\t", '"\\xff\\"\\\\\\t"'),
            (b"18446744073709551616\n", '"18446744073709551616\\n"'),
            (b"1" * 40, '"%s"...' % ("1" * 32)),
        ]
        for data, shown in cases:
            self.write(data)
            before = self.snapshot()
            self.expect(["get", self.path], 1, "", corrupt_msg(self.path, shown))
            self.assertEqual(self.snapshot(), before, data)
        self.assertEqual(self.listing(), ["visits"])

    def test_hint_quotes_the_path_for_the_shell(self):
        path = os.path.join(self.dir, "a b'c")
        self.write(b"x\n", path)
        quoted = "'%s/a b'\\''c'" % self.dir
        self.expect(["get", path], 1, "",
                    "visitsctl: %s: corrupt counter file (expected a decimal number): "
                    "holds \"x\\n\"; replace it with: visitsctl set %s N\n" % (path, quoted))
        self.write(b"x\n", os.path.join(self.dir, "-v"))
        self.expect(["get", "--", "-v"], 1, "",
                    "visitsctl: -v: corrupt counter file (expected a decimal number): "
                    "holds \"x\\n\"; replace it with: visitsctl set -- -v N\n", cwd=self.dir)

    def test_not_a_file(self):
        self.expect(["get", self.dir], 1, "", "visitsctl: %s: not a regular file\n" % self.dir)
        os.mkfifo(self.path)
        self.expect(["get", self.path], 1, "", "visitsctl: %s: not a regular file\n" % self.path)
        missing = os.path.join(self.dir, "nodir", "visits")
        self.expect(["get", missing], 1, "",
                    "visitsctl: %s: parent directory does not exist\n" % missing)
        self.expect(["get", self.dir + "/"], 1, "",
                    "visitsctl: %s/: invalid argument\n" % self.dir)

    def test_read_only_directory_as_nobody(self):
        self.open_to_nobody()
        self.write(b"42\n")
        before = self.snapshot()
        self.expect(["get", self.path], 0, "42\n", as_nobody=True)
        self.expect(["get", os.path.join(self.dir, "other")], 0, "0\n", as_nobody=True)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])  # no lock file: get writes nothing

    def test_unreadable_file_as_nobody(self):
        self.open_to_nobody()
        self.write(b"42\n", mode=0o600)
        self.expect(["get", self.path], 1, "", "visitsctl: %s: Permission denied\n" % self.path,
                    as_nobody=True)

    def test_symlink(self):
        self.write(b"5\n", os.path.join(self.dir, "target"))
        os.symlink("target", self.path)
        self.expect(["get", self.path], 0, "5\n")


class Incr(Base):
    def test_counts_from_a_missing_file(self):
        self.expect(["incr", self.path], 0, "1\n")
        self.assertEqual(self.read(), b"1\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o644)
        self.expect(["incr", self.path], 0, "2\n")
        self.expect(["incr", self.path, "40"], 0, "42\n")
        self.assertEqual(self.read(), b"42\n")
        # no lock file (the lock is on the counter itself); no temp file is left behind
        self.assertEqual(self.listing(), ["visits"])
        self.expect(["get", self.path], 0, "42\n")

    def test_zero(self):
        self.expect(["incr", self.path, "0"], 0, "0\n")
        self.assertEqual(self.read(), b"0\n")
        self.write(b"42")  # no newline: accepted, rewritten in the canonical form
        self.expect(["incr", self.path, "0"], 0, "42\n")
        self.assertEqual(self.read(), b"42\n")

    def test_keeps_mode(self):
        self.write(b"1\n", mode=0o600)
        self.expect(["incr", self.path], 0, "2\n")
        self.assertEqual(self.read(), b"2\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_limits(self):
        self.expect(["incr", self.path, str(MAX)], 0, "%d\n" % MAX)
        self.assertEqual(self.read(), b"%d\n" % MAX)
        self.expect(["incr", self.path, "0"], 0, "%d\n" % MAX)
        before = self.snapshot()
        self.expect(["incr", self.path], 1, "",
                    "visitsctl: %s: counter would overflow 18446744073709551615\n" % self.path)
        self.assertEqual(self.snapshot(), before)
        self.write(b"10\n")
        self.expect(["incr", self.path, str(MAX - 9)], 1, "",
                    "visitsctl: %s: counter would overflow 18446744073709551615\n" % self.path)
        self.assertEqual(self.read(), b"10\n")
        self.expect(["incr", self.path, str(MAX - 10)], 0, "%d\n" % MAX)
        self.assertEqual(self.listing(), ["visits"])

    def test_corrupt_is_reported_and_left_alone(self):
        for data, shown in ((b"12a\n", '"12a\\n"'), (b"", '""'), (b"01\n", '"01\\n"')):
            self.write(data)
            before = self.snapshot()
            for args in (["incr", self.path], ["incr", self.path, "0"], ["incr", self.path, "5"]):
                self.expect(args, 1, "", corrupt_msg(self.path, shown))
                self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])

    def test_not_a_file(self):
        self.expect(["incr", self.dir], 1, "", "visitsctl: %s: not a regular file\n" % self.dir)
        missing = os.path.join(self.dir, "nodir", "visits")
        self.expect(["incr", missing], 1, "",
                    "visitsctl: %s: parent directory does not exist\n" % missing)

    def test_permission_denied_as_nobody(self):
        self.open_to_nobody()
        self.write(b"41\n")
        before = self.snapshot()
        # the directory is not writable by nobody: neither the lock nor a temp can be made
        self.expect(["incr", self.path], 1, "", "visitsctl: %s: Permission denied\n" % self.path,
                    as_nobody=True)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])

    def test_symlink_stays_a_link(self):
        target = os.path.join(self.dir, "target")
        self.write(b"5\n", target)
        os.symlink("target", self.path)
        self.expect(["incr", self.path], 0, "6\n")
        self.assertTrue(os.path.islink(self.path))
        self.assertEqual(self.read(target), b"6\n")

    def test_concurrent_processes_lose_nothing(self):
        procs, each = 8, 10
        script = "for i in $(seq %d); do \"$0\" incr \"$1\" || exit 1; done" % each
        ps = [subprocess.Popen(["sh", "-c", script, VISITSCTL, self.path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(procs)]
        values = []
        for p in ps:
            out, err = p.communicate(timeout=300)
            self.assertEqual((p.returncode, err), (0, b""))
            values += [int(v) for v in out.split()]
        # every increment acknowledged once, each with its own value, none lost
        self.assertEqual(sorted(values), list(range(1, procs * each + 1)))
        self.assertEqual(self.read(), b"%d\n" % (procs * each))
        self.assertEqual(self.listing(), ["visits"])


class Set(Base):
    def test_creates(self):
        self.expect(["set", self.path, "5"], 0, "visitsctl: %s: created with 5\n" % self.path)
        self.assertEqual(self.read(), b"5\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o644)
        self.assertEqual(self.listing(), [".visits.set", "visits"])

    def test_replaces_a_value(self):
        self.write(b"41\n", mode=0o640)
        self.expect(["set", self.path, "5"], 0, "visitsctl: %s: replaced 41 with 5\n" % self.path)
        self.assertEqual(self.read(), b"5\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)
        self.write(b"7")
        self.expect(["set", self.path, "0"], 0, "visitsctl: %s: replaced 7 with 0\n" % self.path)
        self.assertEqual(self.read(), b"0\n")
        self.expect(["set", self.path, str(MAX)], 0,
                    "visitsctl: %s: replaced 0 with %d\n" % (self.path, MAX))
        self.assertEqual(self.read(), b"%d\n" % MAX)

    def test_replaces_corrupt_contents(self):
        cases = [
            (b"12a\n", '"12a\\n"'),
            (b"", '""'),
            (b"\x00\xff\"\\\t\r", '"\\x00\\xff\\"\\\\\\t\\r"'),
            (b"x" * 31, '"%s"' % ("x" * 31)),
            (b"y" * 32, 'starting "%s"' % ("y" * 32)),
            (b"z" * 4096, 'starting "%s"' % ("z" * 32)),
        ]
        for data, shown in cases:
            self.write(data, mode=0o600)
            self.expect(["set", self.path, "12"], 0,
                        "visitsctl: %s: replaced corrupt contents %s with 12\n"
                        % (self.path, shown))
            self.assertEqual(self.read(), b"12\n")
            self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
            self.expect(["check", self.path], 0, "%s: ok, 12\n" % self.path)
        self.assertEqual(self.listing(), [".visits.set", "visits"])

    def test_not_a_file(self):
        self.expect(["set", self.dir, "1"], 1, "", "visitsctl: %s: not a regular file\n" % self.dir)
        missing = os.path.join(self.dir, "nodir", "visits")
        self.expect(["set", missing, "1"], 1, "",
                    "visitsctl: %s: parent directory does not exist\n" % missing)
        self.assertEqual(self.listing(), [])

    def test_permission_denied_as_nobody(self):
        self.open_to_nobody()
        self.write(b"12a\n")
        before = self.snapshot()
        self.expect(["set", self.path, "5"], 1, "",
                    "visitsctl: %s: Permission denied\n" % self.path, as_nobody=True)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])


class Check(Base):
    def test_valid(self):
        for data in (b"42\n", b"42"):
            self.write(data)
            before = self.snapshot()
            self.expect(["check", self.path], 0, "%s: ok, 42\n" % self.path)
            self.expect(["check", "visits"], 0, "visits: ok, 42\n", cwd=self.dir)
            self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])

    def test_missing(self):
        self.expect(["check", self.path], 0, "%s: ok, 0 (no file yet)\n" % self.path)
        self.assertEqual(self.listing(), [])

    def test_corrupt(self):
        for data, shown in ((b"12a\n", '"12a\\n"'), (b"", '""'),
                            (b"99999999999999999999\n", '"99999999999999999999\\n"')):
            self.write(data)
            before = self.snapshot()
            self.expect(["check", self.path], 1, "", corrupt_msg(self.path, shown))
            self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.listing(), ["visits"])

    def test_errors_exit_2(self):
        self.expect(["check", self.dir], 2, "", "visitsctl: %s: not a regular file\n" % self.dir)
        missing = os.path.join(self.dir, "nodir", "visits")
        self.expect(["check", missing], 2, "",
                    "visitsctl: %s: parent directory does not exist\n" % missing)

    def test_unreadable_as_nobody(self):
        self.open_to_nobody()
        self.write(b"42\n", mode=0o600)
        self.expect(["check", self.path], 2, "",
                    "visitsctl: %s: Permission denied\n" % self.path, as_nobody=True)
        self.write(b"42\n", mode=0o644)
        self.expect(["check", self.path], 0, "%s: ok, 42\n" % self.path, as_nobody=True)
        self.assertEqual(self.listing(), ["visits"])


class Slots(Base):
    """visitsctl slots DIR: a visits-server data directory's volume id, own slot and
    replicas, and their total; it reads and never writes."""

    VOL = "0123456789abcdef"

    def data_dir(self):
        self.write(b"%s\n" % self.VOL.encode(), os.path.join(self.dir, "volume-id"))
        self.write(b"visits-0.%s\n" % self.VOL.encode(), os.path.join(self.dir, "slot-id"))
        self.write(b"103\n")
        slots = os.path.join(self.dir, "slots")
        os.mkdir(slots)
        for name, data in (("visits-1.fedcba9876543210", b"205\n"),
                           ("visits-0.1111111111111111", b"12\n"),
                           ("caf%C3%A9%201.2222222222222222", b"%d\n" % MAX),
                           (".visits-1.fedcba9876543210.lock", b""),
                           ("README", b"not a replica")):
            self.write(data, os.path.join(slots, name))
        return slots

    def test_shows_every_slot_and_the_total(self):
        slots = self.data_dir()
        before = {n: self.snapshot(os.path.join(slots, n)) for n in os.listdir(slots)}
        self.expect(["slots", self.dir], 0,
                    "volume-id %s\n"
                    "own visits-0.%s 103 visits-0\n"
                    "replica caf%%C3%%A9%%201.2222222222222222 %d caf\\xc3\\xa9 1\n"
                    "replica visits-0.1111111111111111 12 visits-0\n"
                    "replica visits-1.fedcba9876543210 205 visits-1\n"
                    "total %d\n" % (self.VOL, self.VOL, MAX, MAX))
        self.assertEqual({n: self.snapshot(os.path.join(slots, n)) for n in os.listdir(slots)},
                         before)
        os.unlink(os.path.join(slots, "caf%C3%A9%201.2222222222222222"))
        self.expect(["slots", self.dir + "/"], 0,
                    "volume-id %s\n"
                    "own visits-0.%s 103 visits-0\n"
                    "replica visits-0.1111111111111111 12 visits-0\n"
                    "replica visits-1.fedcba9876543210 205 visits-1\n"
                    "total 320\n" % (self.VOL, self.VOL))

    def test_a_directory_before_the_first_start(self):
        self.write(b"7\n")
        self.expect(["slots", self.dir], 0,
                    "volume-id none (visits-server makes it at its first start)\n"
                    "own - 7 -\ntotal 7\n")
        self.expect(["slots", os.path.join(self.dir, "none")], 1, "",
                    "visitsctl: %s/none: cannot read the data directory: No such file or "
                    "directory\n" % self.dir)

    def test_corrupt_files_are_named_and_left_out(self):
        slots = self.data_dir()
        bad = os.path.join(slots, "visits-1.fedcba9876543210")
        self.write(b"20x\n", bad)
        self.write(b"nope\n", os.path.join(self.dir, "volume-id"))
        rc, out, err = self.run_cli("slots", self.dir)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "own visits-0.%s 103 visits-0\n"
                              "replica caf%%C3%%A9%%201.2222222222222222 %d caf\\xc3\\xa9 1\n"
                              "replica visits-0.1111111111111111 12 visits-0\n"
                              "total %d\n" % (self.VOL, MAX, MAX))
        self.assertEqual(err, "visitsctl: %s/volume-id: corrupt volume id (expected 16 lowercase "
                              "hex digits)\n%s" % (self.dir, corrupt_msg(bad, '"20x\\n"')))
        self.assertEqual(self.read(bad), b"20x\n")


class StandardOutput(Base):
    def test_write_error_fails_the_command(self):
        self.write(b"42\n")
        msg = "visitsctl: standard output: No space left on device\n"
        with open("/dev/full", "wb") as full:
            for args, rc in ((["get", self.path], 1), (["check", self.path], 2),
                             (["incr", self.path], 1), (["set", self.path, "9"], 1),
                             (["--version"], 1), (["--help"], 1)):
                self.assertEqual(self.run_cli(*args, stdout=full), (rc, None, msg), args)
        # the write itself happened: only the report of it was lost
        self.assertEqual(self.read(), b"9\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: test_visitsctl.py VISITSCTL VERSION [unittest args]")
    VISITSCTL = os.path.abspath(sys.argv[1])
    VERSION = sys.argv[2]
    os.umask(0o022)
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
