/*
 * test_replace.c: the durable replace (replace.c), driven through the public API with
 * faults injected by visits_testing_syscall(): the order of the steps (temp, write,
 * fsync, rename, directory fsync), short writes and EINTR, every failure before the
 * rename (old value intact, no temp, handle still usable), fsync failures (handle
 * failed until reopened), and the permission bits of new and existing files.
 */
#include "util.h"

#include "visits_testing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- injection ------------------------------------------------------------------------ */

typedef int (*openat_fn)(int, const char *, int, mode_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fsync_fn)(int);
typedef int (*fchmod_fn)(int, mode_t);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*flock_fn)(int, int);

/* What the wrappers do. Reset by each test; the library is single-threaded in these
 * tests except for its own threads, so a mutex guards the record. */
static struct {
    pthread_mutex_t mu;
    openat_fn real_openat;
    write_fn real_write;
    fsync_fn real_fsync;
    fchmod_fn real_fchmod;
    renameat_fn real_renameat;
    flock_fn real_flock;

    int write_errno;      /* fail writes to a temp with this errno... */
    int write_fail_after; /* ...after this many successful write calls */
    int write_eintr;      /* this many EINTR first */
    size_t write_max;     /* cap each write at this many bytes (0: no cap) */
    int fsync_file_errno; /* fail fsync of a regular file */
    int fsync_dir_errno;  /* fail fsync of a directory */
    int rename_errno;
    int openat_temp_errno; /* fail creating a temp */
    int fchmod_errno;
    int flock_eintr;

    /* record */
    char log[256]; /* one letter per step: O open temp, W write, F fsync file, D fsync dir,
                      R rename, C chmod */
    size_t log_len;
    int temp_fd;
    int temp_flags;
    char rename_from[256];
    char rename_to[256];
    int fsync_fd;
    int writes;
    int fchmod_calls;
} inj = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void note(char what)
{
    if (inj.log_len + 1 < sizeof inj.log)
        inj.log[inj.log_len++] = what;
    inj.log[inj.log_len] = '\0';
}

static int is_temp_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return base[0] == '.' && strstr(base, ".tmp-") != NULL;
}

static int fd_is_temp(int fd)
{
    char link[64], target[TU_PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    return is_temp_name(target);
}

static int fake_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int temp = is_temp_name(path);
    pthread_mutex_lock(&inj.mu);
    int err = temp ? inj.openat_temp_errno : 0;
    if (temp) {
        note('O');
        inj.temp_flags = flags;
    }
    pthread_mutex_unlock(&inj.mu);
    if (err) {
        errno = err;
        return -1;
    }
    int fd = inj.real_openat(dirfd, path, flags, mode);
    if (temp && fd >= 0) {
        pthread_mutex_lock(&inj.mu);
        inj.temp_fd = fd;
        pthread_mutex_unlock(&inj.mu);
    }
    return fd;
}

static ssize_t fake_write(int fd, const void *buf, size_t len)
{
    if (!fd_is_temp(fd))
        return inj.real_write(fd, buf, len);
    pthread_mutex_lock(&inj.mu);
    note('W');
    int eintr = inj.write_eintr > 0;
    if (eintr)
        inj.write_eintr--;
    int err = !eintr && inj.write_errno && inj.writes >= inj.write_fail_after ? inj.write_errno : 0;
    if (!eintr && !err)
        inj.writes++;
    size_t cap = inj.write_max;
    pthread_mutex_unlock(&inj.mu);
    if (eintr) {
        errno = EINTR;
        return -1;
    }
    if (err) {
        errno = err;
        return -1;
    }
    if (cap != 0 && len > cap)
        len = cap;
    return inj.real_write(fd, buf, len);
}

static int fake_fsync(int fd)
{
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    pthread_mutex_lock(&inj.mu);
    note(dir ? 'D' : 'F');
    if (!dir)
        inj.fsync_fd = fd;
    int err = dir ? inj.fsync_dir_errno : inj.fsync_file_errno;
    pthread_mutex_unlock(&inj.mu);
    if (err) {
        /* like the kernel after a writeback error: the data may or may not be there */
        errno = err;
        return -1;
    }
    return inj.real_fsync(fd);
}

static int fake_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    pthread_mutex_lock(&inj.mu);
    note('R');
    snprintf(inj.rename_from, sizeof inj.rename_from, "%s", oldpath);
    snprintf(inj.rename_to, sizeof inj.rename_to, "%s", newpath);
    int err = inj.rename_errno;
    pthread_mutex_unlock(&inj.mu);
    if (err) {
        errno = err;
        return -1;
    }
    return inj.real_renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int fake_fchmod(int fd, mode_t mode)
{
    pthread_mutex_lock(&inj.mu);
    note('C');
    inj.fchmod_calls++;
    int err = inj.fchmod_errno;
    pthread_mutex_unlock(&inj.mu);
    if (err) {
        errno = err;
        return -1;
    }
    return inj.real_fchmod(fd, mode);
}

static int fake_flock(int fd, int op)
{
    pthread_mutex_lock(&inj.mu);
    int eintr = (op & LOCK_EX) && inj.flock_eintr > 0;
    if (eintr)
        inj.flock_eintr--;
    pthread_mutex_unlock(&inj.mu);
    if (eintr) {
        errno = EINTR;
        return -1;
    }
    return inj.real_flock(fd, op);
}

/* Installs every wrapper with no fault armed. The fixture's teardown restores libc. */
static void inject_all(void)
{
    pthread_mutex_lock(&inj.mu);
    inj.write_errno = inj.write_fail_after = inj.write_eintr = 0;
    inj.write_max = 0;
    inj.fsync_file_errno = inj.fsync_dir_errno = inj.rename_errno = 0;
    inj.openat_temp_errno = inj.fchmod_errno = inj.flock_eintr = 0;
    inj.log_len = 0;
    inj.log[0] = '\0';
    inj.temp_fd = inj.fsync_fd = -1;
    inj.temp_flags = 0;
    inj.rename_from[0] = inj.rename_to[0] = '\0';
    inj.writes = inj.fchmod_calls = 0;
    pthread_mutex_unlock(&inj.mu);
    /* visits_testing_syscall returns the function it replaced: libc's, or ours from an
     * earlier test of this file if a teardown did not run */
    tu_restore_syscalls();
    openat_fn o = fake_openat;
    write_fn w = fake_write;
    fsync_fn f = fake_fsync;
    fchmod_fn ch = fake_fchmod;
    renameat_fn r = fake_renameat;
    flock_fn fl = fake_flock;
    tu_install("openat", &o, &inj.real_openat);
    tu_install("write", &w, &inj.real_write);
    tu_install("fsync", &f, &inj.real_fsync);
    tu_install("fchmod", &ch, &inj.real_fchmod);
    tu_install("renameat", &r, &inj.real_renameat);
    tu_install("flock", &fl, &inj.real_flock);
    assert_non_null(inj.real_openat);
    assert_non_null(inj.real_write);
    assert_non_null(inj.real_fsync);
    assert_non_null(inj.real_fchmod);
    assert_non_null(inj.real_renameat);
    assert_non_null(inj.real_flock);
}

static void disarm(void)
{
    pthread_mutex_lock(&inj.mu);
    inj.write_errno = inj.write_eintr = 0;
    inj.write_max = 0;
    inj.fsync_file_errno = inj.fsync_dir_errno = inj.rename_errno = 0;
    inj.openat_temp_errno = inj.fchmod_errno = inj.flock_eintr = 0;
    inj.log_len = 0;
    inj.log[0] = '\0';
    pthread_mutex_unlock(&inj.mu);
}

/* ---- the seam itself ------------------------------------------------------------------ */

static void test_seam_names(void **state)
{
    (void)state;
    static const char *names[] = {"openat",  "read",     "write",    "fsync", "fchmod", "fstat",
                                  "fstatat", "renameat", "unlinkat", "close", "flock",  "readlink"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *prev = visits_testing_syscall(names[i], NULL);
        if (prev == NULL)
            fail_msg("visits_testing_syscall(\"%s\") is unknown", names[i]);
    }
    assert_null(visits_testing_syscall("nosuchcall", NULL));
    assert_null(visits_testing_syscall("", NULL));
    /* replacing returns the previous entry, restoring (NULL) returns the replacement */
    fsync_fn mine = fake_fsync, libc = NULL, back = NULL;
    tu_install("fsync", &mine, &libc);
    assert_true(libc != NULL && libc != fake_fsync);
    void *prev = visits_testing_syscall("fsync", NULL);
    memcpy(&back, &prev, sizeof prev);
    assert_true(back == fake_fsync);
    prev = visits_testing_syscall("fsync", NULL);
    memcpy(&back, &prev, sizeof prev);
    assert_true(back == libc);
}

/* ---- the protocol --------------------------------------------------------------------- */

/* One increment: temp created exclusively and without following links, written,
 * fsynced, renamed over the counter, then the directory fsynced, all before return. */
static void test_replace_steps_in_order(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    for (int round = 0; round < 3; round++) {
        inject_all();
        uint64_t v = 0;
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, (uint64_t)round + 1);
        char log[256];
        pthread_mutex_lock(&inj.mu);
        snprintf(log, sizeof log, "%s", inj.log);
        int flags = inj.temp_flags;
        int temp_fd = inj.temp_fd, fsync_fd = inj.fsync_fd;
        pthread_mutex_unlock(&inj.mu);
        /* O, then W..., then F (maybe C before it), then R, then D */
        const char *o = strchr(log, 'O'), *w = strchr(log, 'W'), *f = strchr(log, 'F'),
                   *r = strchr(log, 'R'), *d = strrchr(log, 'D');
        if (!o || !w || !f || !r || !d || !(o < w && w < f && f < r && r < d))
            fail_msg("round %d: steps were \"%s\"; expected open temp, write, fsync file, "
                     "rename, fsync dir",
                     round, log);
        assert_true(strchr(r + 1, 'W') == NULL); /* nothing written after the rename */
        assert_int_equal(fsync_fd, temp_fd);     /* the fsynced file is the temp */
        assert_true(flags & O_CREAT);
        assert_true(flags & O_EXCL);
        assert_true(flags & O_NOFOLLOW);
        assert_true(flags & O_CLOEXEC);
        assert_true(is_temp_name(inj.rename_from));
        assert_true(strncmp(inj.rename_from, ".visits.tmp-", 12) == 0);
        assert_string_equal(inj.rename_to, "visits");
        char expect[8];
        snprintf(expect, sizeof expect, "%d\n", round + 1);
        tu_assert_file_str(fx->path, expect);
        tu_assert_no_temps(fx->dir);
    }
    assert_int_equal(visits_close(c), 0);
}

/* ---- writes that need retrying -------------------------------------------------------- */

static void test_short_writes(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "18446744073709551000\n", 21, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    static const size_t caps[] = {1, 2, 3, 7, 20};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        pthread_mutex_lock(&inj.mu);
        inj.write_max = caps[i];
        inj.writes = 0;
        pthread_mutex_unlock(&inj.mu);
        uint64_t v = 0;
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, UINT64_C(18446744073709551001) + i);
        char expect[32];
        snprintf(expect, sizeof expect, "%" PRIu64 "\n", v);
        tu_assert_file_str(fx->path, expect);
        /* 21 bytes in pieces of caps[i]: that many write calls at least */
        pthread_mutex_lock(&inj.mu);
        int writes = inj.writes;
        pthread_mutex_unlock(&inj.mu);
        assert_true((size_t)writes >= (21 + caps[i] - 1) / caps[i]);
    }
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_write_eintr_retried(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    pthread_mutex_lock(&inj.mu);
    inj.write_eintr = 3;
    inj.write_max = 1; /* and interleave with short writes */
    pthread_mutex_unlock(&inj.mu);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 42);
    tu_assert_file_str(fx->path, "42\n");
    assert_int_equal(inj.write_eintr, 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_flock_eintr_retried(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    visits_counter *c = NULL;
    inject_all();
    pthread_mutex_lock(&inj.mu);
    inj.flock_eintr = 2;
    pthread_mutex_unlock(&inj.mu);
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    pthread_mutex_lock(&inj.mu);
    inj.flock_eintr = 2;
    pthread_mutex_unlock(&inj.mu);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(inj.flock_eintr, 0);
    tu_assert_file_str(fx->path, "42\n");
    assert_int_equal(visits_close(c), 0);
}

/* ---- reading the file fails --------------------------------------------------------- */

typedef ssize_t (*read_fn)(int, void *, size_t);
static read_fn real_read;
static int read_errno; /* fail every read with this */
static int read_eintr; /* this many EINTR first */

static ssize_t fake_read(int fd, void *buf, size_t len)
{
    if (__atomic_load_n(&read_eintr, __ATOMIC_SEQ_CST) > 0) {
        __atomic_fetch_sub(&read_eintr, 1, __ATOMIC_SEQ_CST);
        errno = EINTR;
        return -1;
    }
    int err = __atomic_load_n(&read_errno, __ATOMIC_SEQ_CST);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return real_read(fd, buf, len > 1 ? 1 : len); /* and short reads */
}

/* EIO reading the counter fails the increment with -EIO and writes nothing; EINTR and
 * short reads are retried. */
static void test_read_faults(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    read_fn mine = fake_read;
    tu_install("read", &mine, &real_read);
    __atomic_store_n(&read_eintr, 2, __ATOMIC_SEQ_CST);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 41);
    __atomic_store_n(&read_errno, EIO, __ATOMIC_SEQ_CST);
    assert_int_equal(visits_incr(c, &v), -EIO);
    assert_int_equal(visits_read(c, &v), -EIO);
    assert_int_equal(visits_read_file(fx->path, &v, NULL), -EIO);
    assert_int_equal(visits_set_file(fx->path, 9, NULL, NULL), -EIO);
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    tu_assert_no_temps(fx->dir);
    __atomic_store_n(&read_errno, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&read_eintr, 3, __ATOMIC_SEQ_CST);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 42);
    tu_assert_file_str(fx->path, "42\n");
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

/* ---- failures before the rename: nothing changes -------------------------------------- */

enum fault {
    F_ENOSPC_WRITE,
    F_ENOSPC_AFTER_PARTIAL,
    F_EIO_WRITE,
    F_EXDEV_RENAME,
    F_EACCES_RENAME,
    F_EACCES_OPEN_TEMP,
    F_EMFILE_OPEN_TEMP,
    F_EDQUOT_OPEN_TEMP,
};

static int arm(enum fault f)
{
    pthread_mutex_lock(&inj.mu);
    int expect = 0;
    switch (f) {
    case F_ENOSPC_WRITE:
        inj.write_errno = ENOSPC;
        inj.write_fail_after = inj.writes;
        expect = -ENOSPC;
        break;
    case F_ENOSPC_AFTER_PARTIAL:
        inj.write_max = 1;
        inj.write_errno = ENOSPC;
        inj.write_fail_after = inj.writes + 1;
        expect = -ENOSPC;
        break;
    case F_EIO_WRITE:
        inj.write_errno = EIO;
        inj.write_fail_after = inj.writes;
        expect = -EIO;
        break;
    case F_EXDEV_RENAME:
        inj.rename_errno = EXDEV;
        expect = -EXDEV;
        break;
    case F_EACCES_RENAME:
        inj.rename_errno = EACCES;
        expect = -EACCES;
        break;
    case F_EACCES_OPEN_TEMP:
        inj.openat_temp_errno = EACCES;
        expect = -EACCES;
        break;
    case F_EMFILE_OPEN_TEMP:
        inj.openat_temp_errno = EMFILE;
        expect = -EMFILE;
        break;
    case F_EDQUOT_OPEN_TEMP:
        inj.openat_temp_errno = EDQUOT;
        expect = -EDQUOT;
        break;
    }
    pthread_mutex_unlock(&inj.mu);
    return expect;
}

static const char *const fault_names[] = {"ENOSPC on write",
                                          "ENOSPC after a partial write",
                                          "EIO on write",
                                          "EXDEV on rename",
                                          "EACCES on rename",
                                          "EACCES creating the temp",
                                          "EMFILE creating the temp",
                                          "EDQUOT creating the temp"};

/* Existing file "41\n": the fault fails the increment with -errno, leaves the file
 * identical (bytes, inode, mtime), no temp; the same handle then counts on from 41. */
static void check_fault_existing(struct tu_fixture *fx, enum fault f)
{
    tu_write_file(fx->path, "41\n", 3, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    int expect = arm(f);
    for (int attempt = 0; attempt < 3; attempt++) {
        uint64_t v = 0;
        int rc = visits_incr(c, &v);
        if (rc != expect)
            fail_msg("%s: visits_incr = %d (%s), expected %d", fault_names[f], rc,
                     visits_strerror(rc), expect);
        tu_assert_file_str(fx->path, "41\n");
        tu_lstat(fx->path, &after);
        tu_assert_same_stat(&before, &after);
        tu_assert_no_temps(fx->dir);
        assert_int_equal(visits_read(c, &v), 0);
        assert_int_equal(v, 41);
    }
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.last_error, expect);
    assert_int_equal(st.cycles_failed, 3);
    assert_int_equal(st.cycles, 0);
    assert_int_equal(st.increments, 0);

    disarm();
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 42);
    tu_assert_file_str(fx->path, "42\n");
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.last_error, 0);
    assert_int_equal(st.cycles, 1);
    assert_int_equal(st.increments, 1);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "42\n");
    tu_assert_no_temps(fx->dir);
    tu_restore_syscalls();
    assert_int_equal(unlink(fx->path), 0);
}

/* Missing file: the fault leaves it missing. */
static void check_fault_missing(struct tu_fixture *fx, enum fault f)
{
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    int expect = arm(f);
    uint64_t v = 0;
    int rc = visits_incr(c, &v);
    if (rc != expect)
        fail_msg("%s (no file yet): visits_incr = %d, expected %d", fault_names[f], rc, expect);
    assert_false(tu_exists(fx->path));
    tu_assert_no_temps(fx->dir);
    disarm();
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 1);
    tu_assert_file_str(fx->path, "1\n");
    assert_int_equal(visits_close(c), 0);
    tu_restore_syscalls();
    assert_int_equal(unlink(fx->path), 0);
}

static void test_faults_before_rename(void **state)
{
    struct tu_fixture *fx = *state;
    int fds = tu_count_fds();
    for (int f = F_ENOSPC_WRITE; f <= F_EDQUOT_OPEN_TEMP; f++) {
        check_fault_existing(fx, (enum fault)f);
        check_fault_missing(fx, (enum fault)f);
    }
    assert_int_equal(tu_count_fds(), fds); /* the failed temps' fds were closed */
}

/* visits_set_file() under the same faults: refused, old value intact, no temp. */
static void test_set_file_faults(void **state)
{
    struct tu_fixture *fx = *state;
    for (int f = F_ENOSPC_WRITE; f <= F_EDQUOT_OPEN_TEMP; f++) {
        tu_write_file(fx->path, "41\n", 3, 0644);
        tu_age(fx->path);
        struct stat before, after;
        tu_lstat(fx->path, &before);
        inject_all();
        int expect = arm((enum fault)f);
        int rc = visits_set_file(fx->path, 5, NULL, NULL);
        if (rc != expect)
            fail_msg("%s: visits_set_file = %d, expected %d", fault_names[f], rc, expect);
        tu_restore_syscalls();
        tu_assert_file_str(fx->path, "41\n");
        tu_lstat(fx->path, &after);
        tu_assert_same_stat(&before, &after);
        tu_assert_no_temps(fx->dir);
    }
}

/* fchmod of the temp (to keep an existing file's mode) failing is a failure before the
 * rename too. */
static void test_fchmod_failure(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0600);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    pthread_mutex_lock(&inj.mu);
    inj.fchmod_errno = EPERM;
    pthread_mutex_unlock(&inj.mu);
    uint64_t v = 0;
    int rc = visits_incr(c, &v);
    if (inj.fchmod_calls == 0) {
        /* the library chose not to chmod (e.g. the temp was created with the mode):
         * then it must have succeeded and kept the mode */
        assert_int_equal(rc, 0);
        tu_assert_file_str(fx->path, "42\n");
    } else {
        assert_int_equal(rc, -EPERM);
        tu_assert_file_str(fx->path, "41\n");
        tu_lstat(fx->path, &after);
        tu_assert_same_stat(&before, &after);
        disarm();
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, 42);
    }
    tu_lstat(fx->path, &after);
    assert_int_equal(after.st_mode & 07777, 0600);
    tu_assert_no_temps(fx->dir);
    assert_int_equal(visits_close(c), 0);
}

/* ---- fsync failures: the handle fails until reopened ---------------------------------- */

static void check_fsync_failure(struct tu_fixture *fx, int dir)
{
    tu_write_file(fx->path, "41\n", 3, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    inject_all();
    pthread_mutex_lock(&inj.mu);
    if (dir)
        inj.fsync_dir_errno = EIO;
    else
        inj.fsync_file_errno = EIO;
    pthread_mutex_unlock(&inj.mu);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), -EIO);
    tu_assert_no_temps(fx->dir);
    if (!dir) {
        /* the temp's fsync comes before the rename: the old file is untouched */
        tu_assert_file_str(fx->path, "41\n");
        tu_lstat(fx->path, &after);
        tu_assert_same_stat(&before, &after);
    }
    uint64_t on_disk = 0;
    assert_int_equal(visits_read_file(fx->path, &on_disk, NULL), 0);
    assert_true(on_disk == 41 || on_disk == 42);
    struct stat failed_st;
    tu_lstat(fx->path, &failed_st);

    /* never retried into a success, even once the disk is healthy again */
    disarm();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(visits_incr(c, &v), VISITS_EFAILED);
        assert_int_equal(visits_add(c, 0, &v), VISITS_EFAILED);
    }
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&failed_st, &after);
    /* reading still works and shows the file */
    v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, on_disk);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 1);
    assert_true(st.cycles_failed >= 1);
    assert_int_equal(st.cycles, 0);
    assert_int_equal(visits_close(c), VISITS_EFAILED);

    /* a new handle works and counts on from what the file holds */
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, on_disk + 1);
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRIu64 "\n", on_disk + 1);
    tu_assert_file_str(fx->path, expect);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_fsync_file_eio_fails_handle(void **state)
{
    int fds = tu_count_fds();
    check_fsync_failure(*state, 0);
    assert_int_equal(tu_count_fds(), fds);
}

static void test_fsync_dir_eio_fails_handle(void **state)
{
    int fds = tu_count_fds();
    check_fsync_failure(*state, 1);
    assert_int_equal(tu_count_fds(), fds);
}

/* visits_set_file() reports an fsync failure too, and leaves a valid file. */
static void test_set_file_fsync_failure(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    inject_all();
    pthread_mutex_lock(&inj.mu);
    inj.fsync_file_errno = EIO;
    pthread_mutex_unlock(&inj.mu);
    assert_int_equal(visits_set_file(fx->path, 5, NULL, NULL), -EIO);
    tu_assert_file_str(fx->path, "41\n");
    tu_assert_no_temps(fx->dir);
    disarm();
    pthread_mutex_lock(&inj.mu);
    inj.fsync_dir_errno = EIO;
    pthread_mutex_unlock(&inj.mu);
    assert_int_equal(visits_set_file(fx->path, 5, NULL, NULL), -EIO);
    uint64_t v = 0;
    assert_int_equal(visits_read_file(fx->path, &v, NULL), 0);
    assert_true(v == 41 || v == 5);
    tu_assert_no_temps(fx->dir);
}

/* ---- permission bits ------------------------------------------------------------------ */

static void test_existing_mode_kept(void **state)
{
    struct tu_fixture *fx = *state;
    static const mode_t modes[] = {0600, 0640, 0644, 0664, 0666, 0400, 0751};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        tu_write_file(fx->path, "1\n", 2, modes[i]);
        visits_options o;
        visits_options_init(&o);
        o.mode = 0604; /* for new files only */
        visits_counter *c = NULL;
        assert_int_equal(visits_open(fx->path, &o, &c), 0);
        for (int k = 0; k < 3; k++)
            assert_int_equal(visits_incr(c, NULL), 0);
        assert_int_equal(visits_close(c), 0);
        tu_assert_file_str(fx->path, "4\n");
        struct stat st;
        tu_lstat(fx->path, &st);
        if ((st.st_mode & 07777) != modes[i])
            fail_msg("file of mode %04o has mode %04o after increments", (unsigned)modes[i],
                     (unsigned)(st.st_mode & 07777));
        assert_int_equal(visits_set_file(fx->path, 9, &o, NULL), 0);
        tu_lstat(fx->path, &st);
        assert_int_equal(st.st_mode & 07777, modes[i]);
        assert_int_equal(unlink(fx->path), 0);
    }
    tu_assert_no_temps(fx->dir);
}

struct mode_arg {
    const char *path;
    mode_t umask;
    unsigned opts_mode; /* 0: NULL options (default 0644) */
    int use_set_file;
    mode_t existing; /* 0: no file before */
};

/* Child: umask set before, result is the file's mode bits, or a negative code. */
static int mode_child(void *p)
{
    struct mode_arg *a = p;
    umask(a->umask);
    if (a->existing) {
        int fd = open(a->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, "3\n", 2) != 2 || fchmod(fd, a->existing) != 0 || close(fd))
            return -1000;
    }
    visits_options o;
    visits_options_init(&o);
    if (a->opts_mode)
        o.mode = a->opts_mode;
    const visits_options *op = a->opts_mode ? &o : NULL;
    if (a->use_set_file) {
        int rc = visits_set_file(a->path, 1, op, NULL);
        if (rc != 0)
            return rc;
    } else {
        visits_counter *c = NULL;
        int rc = visits_open(a->path, op, &c);
        if (rc != 0)
            return rc;
        rc = visits_incr(c, NULL);
        int rc2 = visits_close(c);
        if (rc != 0 || rc2 != 0)
            return rc != 0 ? rc : rc2;
    }
    /* the library leaves the umask alone */
    if (umask(0) != a->umask)
        return -2000;
    struct stat st;
    if (stat(a->path, &st) != 0)
        return -3000;
    return (int)(st.st_mode & 07777);
}

static void test_new_file_mode_and_umask(void **state)
{
    struct tu_fixture *fx = *state;
    static const struct {
        mode_t umask;
        unsigned mode;
        mode_t expect;
    } cases[] = {
        {027, 0666, 0640}, {022, 0, 0644},    {022, 0600, 0600}, {0, 0666, 0666},
        {077, 0666, 0600}, {002, 0664, 0664}, {0, 0, 0644},      {027, 0640, 0640},
    };
    for (int set_file = 0; set_file <= 1; set_file++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct mode_arg a = {fx->path, cases[i].umask, cases[i].mode, set_file, 0};
            int result = -1;
            assert_int_equal(tu_run_child(mode_child, &a, 10000, &result), 0);
            if (result != (int)cases[i].expect)
                fail_msg("%s, umask %03o, mode %04o: new file mode %04o (or error %d), "
                         "expected %04o",
                         set_file ? "visits_set_file" : "visits_incr", (unsigned)cases[i].umask,
                         cases[i].mode, result > 0 ? (unsigned)result : 0u, result,
                         (unsigned)cases[i].expect);
            tu_assert_file_str(fx->path, "1\n");
            assert_int_equal(unlink(fx->path), 0);
        }
    }
    tu_assert_no_temps(fx->dir);
}

/* A restrictive umask does not narrow an existing file's mode. */
static void test_existing_mode_kept_under_umask(void **state)
{
    struct tu_fixture *fx = *state;
    struct mode_arg a = {fx->path, 077, 0, 0, 0664};
    int result = -1;
    assert_int_equal(tu_run_child(mode_child, &a, 10000, &result), 0);
    assert_int_equal(result, 0664);
    tu_assert_file_str(fx->path, "4\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_seam_names),
        TU_TEST(test_replace_steps_in_order),
        TU_TEST(test_short_writes),
        TU_TEST(test_write_eintr_retried),
        TU_TEST(test_flock_eintr_retried),
        TU_TEST(test_read_faults),
        TU_TEST(test_faults_before_rename),
        TU_TEST(test_set_file_faults),
        TU_TEST(test_fchmod_failure),
        TU_TEST(test_fsync_file_eio_fails_handle),
        TU_TEST(test_fsync_dir_eio_fails_handle),
        TU_TEST(test_set_file_fsync_failure),
        TU_TEST(test_existing_mode_kept),
        TU_TEST(test_new_file_mode_and_umask),
        TU_TEST(test_existing_mode_kept_under_umask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
