#!/usr/bin/env python3
"""Power-loss tests of libvisits and visits-server on real filesystems on loop devices.

What a power cut leaves on a disk is modelled by an atomic point-in-time copy of the
block device's backing file, taken while a writer runs: the backing file lives on a
btrfs filesystem (itself on a loop device) and is cloned with FICLONE, the ioctl behind
`cp --reflink=always`. Each image is then recovered the way a reboot would (mount:
journal or log replay), checked, unmounted and fsck'ed. See docs/crash-testing.md for
what this proves and what it cannot.

Modes:
  lib      library writers (crash_writer incr: 2 processes x 2 threads, one file)
  server   visits-server --sync always, HTTP clients (GET /) as the writers
  control  a writer that acknowledges before its data is durable (--control nosync: no
           fsync at all; nodirsync: no directory fsync): the harness must catch it
  fullfs   ENOSPC on a full tmpfs and a full ext4, EROFS after a read-only remount

Needs root, loop devices, mkfs/fsck for the filesystem and btrfs (for the images).
Outside CI a missing prerequisite skips loudly (exit 77); with CI=true it fails.
All mounts are made inside a private mount namespace (the script re-executes itself
under `unshare --mount`), so they vanish with the process even if it is killed.
"""

import argparse
import ctypes
import errno
import fcntl
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
SKIP = 77
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NAME = "crash_test"
COUNTER = "visits"
TEMP_RE = re.compile(r"^\.visits\.tmp-")
VALUE_RE = re.compile(rb"(0|[1-9][0-9]{0,19})\n?\Z")  # used with match(): anchored


class Failure(Exception):
    """A check failed: the message says what, where and why."""


def log(msg):
    print(f"{NAME}: {msg}", flush=True)


def skip_or_fail(reason):
    """A missing prerequisite: fail under CI=true, skip loudly otherwise."""
    if IN_CI:
        log(f"FAIL: {reason} (CI=true: a missing prerequisite is a failure)")
        sys.exit(1)
    log(f"SKIPPED: {reason}")
    sys.exit(SKIP)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this harness dies, however it dies, so no
    writer keeps the private mount namespace (and its loop devices) alive."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run(cmd, check=True, timeout=120, input_text=None):
    """Runs cmd; returns CompletedProcess. check: raise Failure naming the command."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           input=input_text)
    except subprocess.TimeoutExpired:
        raise Failure(f"{' '.join(cmd)}: timed out after {timeout} s")
    if check and p.returncode != 0:
        raise Failure(f"{' '.join(cmd)}: exit {p.returncode}: "
                      f"{(p.stderr or p.stdout).strip()[-800:]}")
    return p


# ---------------------------------------------------------------------------------------
# Prerequisites and the private mount namespace

FS_TOOLS = {
    "ext4": ["mkfs.ext4", "e2fsck"],
    "xfs": ["mkfs.xfs", "xfs_repair"],
    "btrfs": ["mkfs.btrfs", "btrfs"],
}
# xfsprogs >= 5.19 refuses filesystems under 300 MB; btrfs wants >= 114 MB.
FS_SIZE_MB = {"ext4": 64, "xfs": 320, "btrfs": 256}


def kernel_has_fs(fs):
    with open("/proc/filesystems") as f:
        if any(line.split()[-1] == fs for line in f if line.strip()):
            return True
    # not loaded yet: modprobe may bring it (ignore its absence; mount will tell)
    try:
        subprocess.run(["modprobe", fs], capture_output=True)
    except OSError:
        pass
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fs for line in f if line.strip())


def check_prereqs(filesystems, tools=()):
    if os.geteuid() != 0:
        skip_or_fail("needs root (mount, loop devices)")
    if not os.path.exists("/dev/loop-control"):
        skip_or_fail("no /dev/loop-control: loop devices unavailable")
    need = ["unshare", "mount", "umount", "losetup"] + list(tools)
    for fs in filesystems:
        need += FS_TOOLS[fs]
        if not kernel_has_fs(fs):
            skip_or_fail(f"the kernel has no {fs} support")
    missing = [t for t in need if shutil.which(t) is None]
    if missing:
        skip_or_fail(f"missing tools: {' '.join(missing)} "
                     "(Debian: e2fsprogs xfsprogs btrfs-progs util-linux)")


def enter_private_namespace():
    """Re-executes this script in a private mount namespace (once)."""
    if os.environ.get("VISITS_CRASH_IN_NS") == "1":
        return
    env = dict(os.environ, VISITS_CRASH_IN_NS="1")
    cmd = ["unshare", "--mount", "--propagation", "private", sys.executable] + sys.argv
    os.execvpe("unshare", cmd, env)


# ---------------------------------------------------------------------------------------
# Mounts, with cleanup that runs on every exit path

class Mounts:
    def __init__(self):
        self.points = []

    def mount(self, source, target, fstype=None, options=None):
        cmd = ["mount"]
        if fstype:
            cmd += ["-t", fstype]
        if options:
            cmd += ["-o", options]
        run(cmd + [source, target], timeout=60)
        self.points.append(target)

    def umount(self, target):
        run(["umount", target], timeout=60)
        self.points.remove(target)

    def cleanup(self):
        for target in reversed(self.points):
            p = subprocess.run(["umount", target], capture_output=True, text=True)
            if p.returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        self.points = []


def loop_options(fs):
    # Two clones of one xfs share its UUID; only one is mounted at a time, but say so.
    return "loop,nouuid" if fs == "xfs" else "loop"


def mkfs(fs, image):
    cmd = {"ext4": ["mkfs.ext4", "-q", "-F"],
           "xfs": ["mkfs.xfs", "-q", "-f"],
           "btrfs": ["mkfs.btrfs", "-q", "-f"]}[fs]
    run(cmd + [image])


def fsck_clean(fs, image):
    """Read-only fsck of an unmounted image: returns None if clean, else its report."""
    cmd = {"ext4": ["e2fsck", "-fn", image],
           "xfs": ["xfs_repair", "-n", image],
           "btrfs": ["btrfs", "check", "--readonly", image]}[fs]
    p = run(cmd, check=False, timeout=300)
    if p.returncode == 0:
        return None
    return f"{' '.join(cmd)}: exit {p.returncode}: {(p.stdout + p.stderr).strip()[-1500:]}"


def clone(src, dst):
    """Atomic point-in-time copy: FICLONE holds both inodes locked for the clone, and
    the loop driver writes the source through the same inode, so the copy holds exactly
    the writes the loop device had completed when it ran."""
    s = os.open(src, os.O_RDONLY)
    try:
        d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(d, FICLONE, s)
        finally:
            os.close(d)
    finally:
        os.close(s)


class AckLog:
    """Follows the writers' acknowledgement log: whole lines only."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        self.partial = b""
        self.max = 0
        self.count = 0
        self.values = []

    def poll(self):
        data = self.partial + self.f.read()
        lines = data.split(b"\n")
        self.partial = lines.pop()  # a line not yet complete waits for the next poll
        for line in lines:
            v = int(line)
            self.values.append(v)
            self.count += 1
            if v > self.max:
                self.max = v
        return self.max


def parse_counter(raw, where):
    m = VALUE_RE.match(raw)
    if not m or int(m.group(1)) > 2**64 - 1:
        raise Failure(f"{where}: counter file does not parse: {raw[:40]!r}")
    return int(m.group(1))


# ---------------------------------------------------------------------------------------
# The harness: a work dir holding an outer btrfs (for clones) with the image inside

def make_workdir(prefix):
    """A fresh work dir holding an owner file, so that the dirs of a run that was
    killed outright (SIGKILL: no cleanup ran; its mounts died with its namespace) are
    removed by the next run."""
    base = os.environ.get("VISITS_CRASH_TMPDIR") or tempfile.gettempdir()
    for name in os.listdir(base):
        if not name.startswith(("visits-crash.", "visits-fullfs.")):
            continue
        old = os.path.join(base, name)
        try:
            with open(os.path.join(old, "owner.pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            continue  # its owner still runs
        except ProcessLookupError:
            log(f"removing {old}, left by killed run {pid}")
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError):
            continue
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    with open(os.path.join(d, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))
    return d


class Rig:
    def __init__(self, args, fs):
        self.args = args
        self.fs = fs
        self.mounts = Mounts()
        self.dir = make_workdir("visits-crash.")
        self.outer = os.path.join(self.dir, "outer")
        self.inner = os.path.join(self.dir, "inner")
        self.check = os.path.join(self.dir, "check")
        for d in (self.outer, self.inner, self.check):
            os.mkdir(d)
        self.image = os.path.join(self.outer, f"{fs}.img")
        self.snaps = os.path.join(self.outer, "snaps")
        self.procs = []

    def setup(self):
        outer_img = os.path.join(self.dir, "outer.img")
        with open(outer_img, "wb") as f:
            f.truncate(3 << 30)  # sparse: only what is written takes space
        mkfs("btrfs", outer_img)
        self.mounts.mount(outer_img, self.outer, options="loop")
        os.mkdir(self.snaps)
        with open(self.image, "wb") as f:
            f.truncate(FS_SIZE_MB[self.fs] << 20)
        mkfs(self.fs, self.image)
        self.mounts.mount(self.image, self.inner, options=loop_options(self.fs))
        os.mkdir(os.path.join(self.inner, "d"))
        # The directory must be durable before the test starts: making the counter's
        # parent directory durable is its creator's job, not the library's.
        os.sync()

    def spawn(self, cmd, name):
        """Starts cmd with its output in files of the work dir (a pipe nobody reads could
        fill and stall it); p.errtext() gives the tail of its stderr."""
        out = open(os.path.join(self.dir, f"{name}.out"), "wb")
        err_path = os.path.join(self.dir, f"{name}.err")
        err = open(err_path, "wb")
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 preexec_fn=die_with_parent)
        finally:
            out.close()
            err.close()

        def errtext():
            with open(err_path, "rb") as f:
                return f.read()[-1500:].decode(errors="replace").strip()

        p.errtext = errtext
        self.procs.append(p)
        return p

    def cleanup(self, keep):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.mounts.cleanup()
        if keep:
            log(f"kept {self.dir} (VISITS_CRASH_KEEP)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def check_image(rig, img, ack, final, idx, stats):
    """Recover one crash image and check the counter in it. Returns the value."""
    where = f"{rig.fs} image {idx} ({img})"
    rig.mounts.mount(img, rig.check, options=loop_options(rig.fs))
    d = os.path.join(rig.check, "d")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    temps = [n for n in names if TEMP_RE.match(n)]
    # visits-server's data directory also holds its volume and slot ids (each made once:
    # valid or absent in every image, a temp of it at most) and the replicas of other
    # pods' slots
    others = [n for n in names
              if n not in (COUNTER, f".{COUNTER}.lock", "volume-id", "slot-id", "slots")
              and n not in temps and not n.startswith((".volume-id.tmp-", ".slot-id.tmp-"))]
    if others:
        raise Failure(f"{where}: unexpected files in the counter directory: {others}")
    if "volume-id" in names:
        with open(os.path.join(d, "volume-id"), "rb") as f:
            vid = f.read()
        if re.fullmatch(rb"[0-9a-f]{16}\n", vid) is None:
            raise Failure(f"{where}: torn or corrupt volume-id: {vid!r}")
    if "slot-id" in names:
        with open(os.path.join(d, "slot-id"), "rb") as f:
            sid = f.read()
        if re.fullmatch(rb"[a-z0-9.%-]+\.[0-9a-f]{16}\n", sid) is None:
            raise Failure(f"{where}: torn or corrupt slot-id: {sid!r}")
    path = os.path.join(d, COUNTER)
    if COUNTER in names:
        with open(path, "rb") as f:
            raw = f.read()
        value = parse_counter(raw, where)
        p = run([rig.args.visitsctl, "check", path], check=False)
        if p.returncode != 0 or p.stdout.strip() != f"{path}: ok, {value}":
            raise Failure(f"{where}: visitsctl check disagrees: exit {p.returncode}: "
                          f"{(p.stdout + p.stderr).strip()}")
    else:
        value, raw = 0, None
    if value < ack:
        raise Failure(f"{where}: LOST ACKNOWLEDGED INCREMENTS: the image holds {value}, "
                      f"but {ack} was acknowledged before the image was taken")
    if value > final:
        raise Failure(f"{where}: the image holds {value}, more than was ever written "
                      f"({final})")
    if os.path.isdir(d):
        # Open it with the library, as the next start would: stale temps go, the value stays.
        p = run([rig.args.writer, "shell", path], input_text="open\nread\nclose\n",
                check=False)
        want = f"ok\nok {value}\nok\n"
        if p.returncode != 0 or p.stdout != want:
            raise Failure(f"{where}: reopening with the library: exit {p.returncode}, "
                          f"output {p.stdout!r} (want {want!r}), {p.stderr.strip()}")
        left = [n for n in os.listdir(d) if TEMP_RE.match(n)]
        if left:
            raise Failure(f"{where}: temp files left after the library opened it: {left}")
        if raw is not None:
            with open(path, "rb") as f:
                if f.read() != raw:
                    raise Failure(f"{where}: opening the counter changed its bytes")
    rig.mounts.umount(rig.check)
    report = fsck_clean(rig.fs, img)
    if report:
        raise Failure(f"{where}: the filesystem is not clean after recovery: {report}")
    stats["temps"] += bool(temps)
    stats["exact"] += value == ack
    stats["lag_max"] = max(stats["lag_max"], value - ack)
    stats["missing"] += raw is None
    return value


def take_images(rig, n, gap_ms, ack_fn, alive_fn, first=0):
    """n clones at random moments; each records the acknowledged maximum read just
    before it. Returns [(index, path, ack)]."""
    taken = []
    for i in range(first, first + n):
        time.sleep(random.uniform(0, 2 * gap_ms) / 1000.0)
        alive_fn()
        ack = ack_fn()
        dst = os.path.join(rig.snaps, f"{i:05d}.img")
        clone(rig.image, dst)
        taken.append((i, dst, ack))
    return taken


def check_all(rig, taken, final, stats, collect=None):
    """Checks every image; the first failure raises, unless collect is a list: then
    failures are appended to it and the checks go on."""
    for i, img, ack in taken:
        try:
            check_image(rig, img, ack, final, i, stats)
        except Failure as e:
            if collect is None:
                raise
            collect.append(str(e))
            if rig.check in rig.mounts.points:
                rig.mounts.umount(rig.check)
        os.unlink(img)


def run_batches(rig, args, n, start, stop, collect=None):
    """Takes and checks n images in batches of args.batch. Per batch: mount the image,
    start() the writers (it returns ack_fn, alive_fn), take the images, stop() them (it
    returns the final value, verified), unmount, check and delete the batch's images.
    Batches bound the number of live clones: every clone shares the image's extents, so
    each later write to the image copies, and thousands of live clones slow it all."""
    stats = {"temps": 0, "exact": 0, "lag_max": 0, "missing": 0}
    times = {"imaging": 0.0, "checking": 0.0}
    done, final = 0, 0
    while done < n:
        k = min(args.batch, n - done)
        if rig.inner not in rig.mounts.points:
            rig.mounts.mount(rig.image, rig.inner, options=loop_options(rig.fs))
        ack_fn, alive_fn = start()
        t1 = time.monotonic()
        taken = take_images(rig, k, args.gap_ms, ack_fn, alive_fn, first=done)
        t2 = time.monotonic()
        final = stop()
        rig.mounts.umount(rig.inner)
        t3 = time.monotonic()
        check_all(rig, taken, final, stats, collect)
        t4 = time.monotonic()
        times["imaging"] += t2 - t1
        times["checking"] += t4 - t3
        done += k
    return stats, final, times


def images_wanted(args):
    env = os.environ.get("VISITS_CRASH_IMAGES")
    return int(env) if env else args.images


# ---------------------------------------------------------------------------------------
# Modes

def mode_lib(args, control=False):
    fs = args.fs
    check_prereqs({fs, "btrfs"})
    n = images_wanted(args)
    rig = Rig(args, fs)
    ok = False
    t0 = time.monotonic()
    try:
        rig.setup()
        path = os.path.join(rig.inner, "d", COUNTER)
        acklog = os.path.join(rig.dir, "ack.log")  # outside the image
        open(acklog, "wb").close()
        acks = AckLog(acklog)
        writers = []

        def alive():
            for w in writers:
                if w.poll() is not None:
                    raise Failure(f"writer exited early with {w.returncode}: {w.errtext()}")

        def start():
            if control:
                writers[:] = [rig.spawn([args.writer, args.control, path, acklog], "writer")]
            else:
                # two processes sharing the file: the cross-process lock is under test too
                writers[:] = [rig.spawn([args.writer, "incr", path, acklog, "2"],
                                        f"writer{i}") for i in range(2)]
            return acks.poll, alive

        def stop():
            for w in writers:
                w.send_signal(signal.SIGTERM)
            for w in writers:
                try:
                    w.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    raise Failure("writer did not stop within 60 s of SIGTERM")
                if w.returncode != 0:
                    raise Failure(f"writer failed with exit {w.returncode}: {w.errtext()}")
            acks.poll()
            with open(path, "rb") as f:
                final = parse_counter(f.read(), f"{path} after the run")
            if not control and (final != acks.count or acks.max != final or
                                len(set(acks.values)) != acks.count):
                # every increment acknowledged exactly once, none lost between processes
                raise Failure(f"after the run: file {final}, {acks.count} acknowledgements, "
                              f"max {acks.max}, {len(set(acks.values))} distinct: "
                              "increments were lost or duplicated")
            return final

        if control:
            failures = []
            run_batches(rig, args, n, start, stop, collect=failures)
            lost = [f for f in failures if "LOST ACKNOWLEDGED" in f or "does not parse" in f]
            for f in failures[:3]:
                log(f"control: {f}")
            if not lost:
                raise Failure(f"control: {n} images of the {args.control} writer all held "
                              "every acknowledged value: this harness cannot detect lost "
                              "writes here (raise --images or --gap-ms)")
            log(f"PASS control {fs}: the {args.control} writer was caught: {len(lost)} of "
                f"{n} images lost acknowledged increments ({len(failures)} failed a check)")
            ok = True
            return 0
        stats, final, times = run_batches(rig, args, n, start, stop)
        total = time.monotonic() - t0
        log(f"PASS {fs}: {n} crash images, each >= the value acknowledged before it; "
            f"final value {final} ({acks.count} increments, 2 processes x 2 threads); "
            f"{stats['exact']} images held exactly the last acknowledged value, max lag "
            f"{stats['lag_max']}; {stats['temps']} held a stale temp file (removed on "
            f"open), {stats['missing']} held no file yet; fsck clean after recovery")
        log(f"time {fs}: imaging {times['imaging']:.1f} s, checking {times['checking']:.1f} s "
            f"({times['checking'] / max(n, 1) * 1000:.0f} ms/image), total {total:.1f} s")
        ok = True
        return 0
    finally:
        rig.cleanup(keep=not ok and os.environ.get("VISITS_CRASH_KEEP") == "1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, proc, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Failure(f"visits-server exited with {proc.returncode}: {proc.errtext()}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/visits")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"visits-server did not answer on 127.0.0.1:{port} within {timeout} s")


class HttpWriters:
    """Client threads doing GET / (counts a visit); a 200 with a JSON body is an
    acknowledgement of that value."""

    def __init__(self, port, nthreads, acked_before=0):
        self.port = port
        self.lock = threading.Lock()
        self.max = acked_before
        self.values = []
        self.errors = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True)
                        for _ in range(nthreads)]

    def loop(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/", headers={"Accept": "application/json"})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    self.errors.append(f"GET / answered {r.status}: {body[:200]!r}")
                    return
                v = int(json.loads(body)["visits"])
                with self.lock:
                    self.values.append(v)
                    if v > self.max:
                        self.max = v
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                self.errors.append(f"GET /: {e!r}")
                return

    def ack(self):
        with self.lock:
            return self.max


def mode_server(args):
    fs = args.fs
    if not args.server or not os.access(args.server, os.X_OK):
        skip_or_fail(f"visits-server not built ({args.server or 'no --server given'})")
    check_prereqs({fs, "btrfs"})
    n = images_wanted(args)
    rig = Rig(args, fs)
    ok = False
    t0 = time.monotonic()
    try:
        rig.setup()
        data = os.path.join(rig.inner, "d")
        path = os.path.join(data, COUNTER)
        port = free_port()
        run_ = {"srv": None, "clients": None}
        values = []  # every acknowledged visit, all batches

        def alive():
            srv, clients = run_["srv"], run_["clients"]
            if srv.poll() is not None:
                raise Failure(f"visits-server exited with {srv.returncode}: {srv.errtext()}")
            if clients.errors:
                raise Failure(f"client error: {clients.errors[0]}")

        def start():
            srv = rig.spawn([args.server, "--bind", "127.0.0.1", "--port", str(port),
                             "--data-dir", data, "--sync", "always", "--threads", "2"],
                            "server")
            wait_http(port, srv)
            clients = HttpWriters(port, 8, max(values, default=0))
            for t in clients.threads:
                t.start()
            run_["srv"], run_["clients"] = srv, clients
            return clients.ack, alive

        def stop():
            srv, clients = run_["srv"], run_["clients"]
            clients.stop.set()
            for t in clients.threads:
                t.join(timeout=60)
            if clients.errors:
                raise Failure(f"client error: {clients.errors[0]}")
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise Failure("visits-server did not stop within 60 s of SIGTERM")
            if srv.returncode != 0:
                raise Failure(f"visits-server exited with {srv.returncode} after SIGTERM: "
                              f"{srv.errtext()}")
            values.extend(clients.values)
            with open(path, "rb") as f:
                final = parse_counter(f.read(), f"{path} after the run")
            if (len(set(values)) != len(values) or max(values, default=0) > final or
                    final != len(values)):
                raise Failure(f"after the run: file {final}, {len(values)} acknowledged "
                              f"visits, {len(set(values))} distinct, max "
                              f"{max(values, default=0)}")
            return final

        stats, final, times = run_batches(rig, args, n, start, stop)
        total = time.monotonic() - t0
        log(f"PASS {fs} server: {n} crash images, each >= the visit count acknowledged "
            f"(HTTP 200) before it; final {final} ({len(values)} acknowledged by 8 clients); "
            f"{stats['exact']} exact, max lag {stats['lag_max']}, {stats['temps']} with a "
            f"stale temp (removed on open); fsck clean after recovery")
        log(f"time {fs} server: imaging {times['imaging']:.1f} s, checking "
            f"{times['checking']:.1f} s, total {total:.1f} s")
        ok = True
        return 0
    finally:
        rig.cleanup(keep=not ok and os.environ.get("VISITS_CRASH_KEEP") == "1")


class Shell:
    """crash_writer shell: one library handle kept open across filesystem changes."""

    def __init__(self, writer, path):
        self.p = subprocess.Popen([writer, "shell", path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=die_with_parent)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise Failure(f"crash_writer shell died on '{line}': {self.p.stderr.read()}")
        return out.rstrip("\n")

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def fill(dirpath):
    """Writes a filler file until the filesystem is full; returns its path."""
    filler = os.path.join(dirpath, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    chunk = b"\0" * 4096
    try:
        for _ in range(1 << 20):  # bounded: 4 GB at most
            try:
                os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        # small writes take the last partial blocks
        for _ in range(4096):
            try:
                os.write(fd, b"\0")
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    finally:
        os.close(fd)
    return filler


def full_fs_case(args, where, root):
    """ENOSPC: clear errors, old value intact, no temp left, recovery once space is free."""
    d = os.path.join(root, "d")
    os.mkdir(d)
    path = os.path.join(d, COUNTER)
    run([args.visitsctl, "set", path, "41"])
    sh = Shell(args.writer, path)
    try:
        expect(sh.cmd("open") == "ok", f"{where}: open failed")
        expect(sh.cmd("incr") == "ok 42", f"{where}: first incr")
        filler = fill(root)
        r = sh.cmd("incr")
        expect(r.startswith(f"err {-errno.ENOSPC} "),
               f"{where}: incr on a full filesystem answered {r!r}, want ENOSPC")
        p = run([args.visitsctl, "incr", path], check=False)
        expect(p.returncode == 1 and path in p.stderr and "No space left" in p.stderr,
               f"{where}: visitsctl incr on a full filesystem: exit {p.returncode}, "
               f"stderr {p.stderr.strip()!r} (want exit 1 naming {path} and ENOSPC)")
        log(f"{where}: visitsctl said: {p.stderr.strip()}")
        expect(file_bytes(path) == b"42\n",
               f"{where}: value changed by failed writes: {file_bytes(path)!r}")
        left = [n for n in os.listdir(d) if TEMP_RE.match(n)]
        expect(not left, f"{where}: temp files left after ENOSPC: {left}")
        p = run([args.visitsctl, "get", path], check=False)
        expect(p.returncode == 0 and p.stdout.strip() == "42",
               f"{where}: visitsctl get on a full filesystem: {p.stdout!r} {p.stderr!r}")
        os.unlink(filler)
        r = sh.cmd("incr")
        expect(r == "ok 43", f"{where}: the same handle after space was freed: {r!r}, "
               "want ok 43 (a failed ENOSPC write is not fatal and not counted)")
        expect(sh.cmd("close") == "ok", f"{where}: close failed")
    finally:
        sh.close()
    p = run([args.visitsctl, "incr", path], check=False)
    expect(p.returncode == 0 and p.stdout.strip() == "44",
           f"{where}: visitsctl incr after space was freed: {p.stdout!r} {p.stderr!r}")
    expect(file_bytes(path) == b"44\n", f"{where}: final bytes {file_bytes(path)!r}")
    log(f"ok {where}: ENOSPC reported with the path, value kept, no temp left, "
        "the open handle and visitsctl recover once space is freed")


def read_only_case(args, where, root):
    """EROFS: clear errors, reads still work, value intact, writes resume after rw."""
    d = os.path.join(root, "ro")
    os.mkdir(d)
    path = os.path.join(d, COUNTER)
    run([args.visitsctl, "set", path, "7"])
    # An open handle holds its lock file open for writing: the kernel refuses to
    # remount read-only under it (EBUSY). That is checked too.
    sh = Shell(args.writer, path)
    try:
        expect(sh.cmd("open") == "ok", f"{where}: open failed")
        p = run(["mount", "-o", "remount,ro", root], check=False)
        busy = p.returncode != 0
        expect(sh.cmd("close") == "ok", f"{where}: close failed")
    finally:
        sh.close()
    if busy:
        run(["mount", "-o", "remount,ro", root])
    try:
        p = run([args.visitsctl, "incr", path], check=False)
        expect(p.returncode == 1 and path in p.stderr and "Read-only file system" in p.stderr,
               f"{where}: visitsctl incr on a read-only filesystem: exit {p.returncode}, "
               f"stderr {p.stderr.strip()!r} (want exit 1 naming {path} and EROFS)")
        log(f"{where}: visitsctl said: {p.stderr.strip()}")
        sh = Shell(args.writer, path)
        try:
            r = sh.cmd("open")
            expect(r.startswith(f"err {-errno.EROFS} "),
                   f"{where}: visits_open on a read-only filesystem answered {r!r}")
        finally:
            sh.close()
        p = run([args.visitsctl, "get", path], check=False)
        expect(p.returncode == 0 and p.stdout.strip() == "7",
               f"{where}: visitsctl get on a read-only filesystem: {p.stdout!r} {p.stderr!r}")
        p = run([args.visitsctl, "check", path], check=False)
        expect(p.returncode == 0, f"{where}: visitsctl check read-only: {p.stderr!r}")
    finally:
        run(["mount", "-o", "remount,rw", root])
    p = run([args.visitsctl, "incr", path], check=False)
    expect(p.returncode == 0 and p.stdout.strip() == "8",
           f"{where}: incr after remount rw: {p.stdout!r} {p.stderr!r}")
    log(f"ok {where}: EROFS reported with the path, reads work, value kept, writes resume "
        f"after remount rw; remount ro with a handle open was "
        f"{'refused (EBUSY)' if busy else 'allowed'}")


def mode_fullfs(args):
    check_prereqs({"ext4"})
    mounts = Mounts()
    top = make_workdir("visits-fullfs.")
    try:
        tmpfs = os.path.join(top, "tmpfs")
        os.mkdir(tmpfs)
        mounts.mount("visits-test", tmpfs, fstype="tmpfs", options="size=64k,mode=0755")
        full_fs_case(args, "tmpfs size=64k", tmpfs)
        read_only_case(args, "tmpfs", tmpfs)
        ext4 = os.path.join(top, "ext4")
        os.mkdir(ext4)
        img = os.path.join(top, "ext4.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        run(["mkfs.ext4", "-q", "-F", "-m", "0", img])
        mounts.mount(img, ext4, options="loop")
        full_fs_case(args, "ext4 8 MB", ext4)
        read_only_case(args, "ext4", ext4)
        mounts.umount(ext4)
        report = fsck_clean("ext4", img)
        expect(report is None, f"ext4 after the ENOSPC/EROFS cases: {report}")
        log("PASS fullfs")
        return 0
    finally:
        mounts.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writer", required=True, help="path of crash_writer")
    ap.add_argument("--visitsctl", required=True, help="path of visitsctl")
    ap.add_argument("--server", help="path of visits-server (server mode)")
    ap.add_argument("mode", choices=["lib", "server", "control", "fullfs"])
    ap.add_argument("--fs", choices=["ext4", "xfs", "btrfs"], default="ext4")
    ap.add_argument("--images", type=int, default=100,
                    help="crash images to take (env VISITS_CRASH_IMAGES overrides)")
    ap.add_argument("--batch", type=int, default=100,
                    help="images per writer session (bounds the clones alive at once)")
    ap.add_argument("--gap-ms", type=float, default=25.0,
                    help="mean pause between images, ms (uniform 0..2x)")
    ap.add_argument("--seed", type=int, help="random seed (printed when not given)")
    ap.add_argument("--control", choices=["nosync", "nodirsync"], default="nosync",
                    help="control mode: which fsyncs the unsafe writer leaves out")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    if os.environ.get("VISITS_CRASH_IN_NS") != "1":
        if os.geteuid() != 0:
            skip_or_fail("needs root (mount, loop devices)")
        if shutil.which("unshare") is None:
            skip_or_fail("missing tool: unshare (util-linux)")
        if args.seed is None:
            sys.argv += ["--seed", str(seed)]
        enter_private_namespace()
    log(f"{args.mode} {args.fs if args.mode != 'fullfs' else ''} seed {seed}")
    try:
        if args.mode == "lib":
            return mode_lib(args)
        if args.mode == "control":
            return mode_lib(args, control=True)
        if args.mode == "server":
            return mode_server(args)
        return mode_fullfs(args)
    except Failure as e:
        log(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
