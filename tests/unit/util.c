/* util.c: helpers shared by the libvisits unit tests; see util.h. */
#include "util.h"

#include "visits_testing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const syscall_names[] = {"openat", "read",     "write",    "fsync",    "fchmod",
                                            "fstat",  "fstatat",  "renameat", "unlinkat", "close",
                                            "flock",  "readlink", "faccessat"};

const char *tu_tmp_base(void)
{
    const char *base = getenv("VISITS_TEST_TMPDIR");
    return base != NULL && base[0] != '\0' ? base : "/tmp";
}

unsigned long tu_env_ulong(const char *name, unsigned long def)
{
    const char *s = getenv(name);
    if (s == NULL || s[0] == '\0')
        return def;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return def;
    return v;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
static write_fn real_write;
static int write_errno;     /* set by the test thread, read by the library's threads */
static int write_installed; /* the wrapper is in the table */

static ssize_t failing_write(int fd, const void *buf, size_t len)
{
    int err = __atomic_load_n(&write_errno, __ATOMIC_SEQ_CST);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return real_write(fd, buf, len);
}

void tu_fail_writes(int err)
{
    __atomic_store_n(&write_errno, err, __ATOMIC_SEQ_CST);
    if (!write_installed) {
        write_fn mine = failing_write;
        tu_install("write", &mine, &real_write);
        write_installed = 1;
    }
}

void tu_restore_syscalls(void)
{
    write_installed = 0;
    __atomic_store_n(&write_errno, 0, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < sizeof syscall_names / sizeof syscall_names[0]; i++)
        visits_testing_syscall(syscall_names[i], NULL);
}

void tu_install(const char *name, const void *fn, void *prev)
{
    void *next;
    memcpy(&next, fn, sizeof next);
    void *old = visits_testing_syscall(name, next);
    if (old == NULL)
        fail_msg("visits_testing_syscall(\"%s\") returned NULL", name);
    if (prev != NULL)
        memcpy(prev, &old, sizeof old);
}

int tu_setup(void **state)
{
    struct tu_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    int n = snprintf(fx->dir, sizeof fx->dir, "%s/visits-unit-XXXXXX", tu_tmp_base());
    if (n < 0 || (size_t)n >= sizeof fx->dir || mkdtemp(fx->dir) == NULL) {
        fprintf(stderr, "mkdtemp under %s: %s\n", tu_tmp_base(), strerror(errno));
        free(fx);
        return -1;
    }
    tu_join(fx->path, fx->dir, "visits");
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP) {
        chmod(path, 0700); /* a test may have made it read-only */
        return rmdir(path) == 0 ? 0 : -1;
    }
    return unlink(path) == 0 ? 0 : -1;
}

int tu_teardown(void **state)
{
    struct tu_fixture *fx = *state;
    tu_restore_syscalls();
    if (fx == NULL)
        return 0;
    int rc = 0;
    if (getenv("VISITS_TEST_KEEP") == NULL) {
        chmod(fx->dir, 0700);
        rc = nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (rc != 0)
            fprintf(stderr, "cannot remove %s: %s\n", fx->dir, strerror(errno));
    } else {
        fprintf(stderr, "kept %s\n", fx->dir);
    }
    free(fx);
    *state = NULL;
    return rc;
}

char *tu_join(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, TU_PATH_MAX, "%s/%s", dir, name);
    assert_true(n > 0 && n < TU_PATH_MAX);
    return buf;
}

void tu_write_file(const char *path, const void *bytes, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    const char *p = bytes;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

long tu_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return -1;
        fail_msg("open %s: %s", path, strerror(errno));
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_msg("read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (long)got;
}

void tu_assert_file_at(const char *path, const void *bytes, size_t len, const char *file, int line)
{
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    long got = tu_read_file(path, buf, len + 1); /* one more: a longer file shows */
    if (got < 0) {
        free(buf);
        fail_msg("%s:%d: %s is missing, expected %zu bytes", file, line, path, len);
        return; /* fail_msg does not return; gcc cannot tell (use-after-free warning) */
    }
    if ((size_t)got != len || memcmp(buf, bytes, len) != 0) {
        char shown[256];
        size_t k = 0;
        for (long i = 0; i < got && k + 5 < sizeof shown; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if (ch >= 0x20 && ch < 0x7f && ch != '\\')
                shown[k++] = (char)ch;
            else
                k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", ch);
        }
        shown[k] = '\0';
        free(buf);
        fail_msg("%s:%d: %s holds %ld%s bytes \"%s\", expected %zu other bytes", file, line, path,
                 got, (size_t)got > len ? "+" : "", shown, len);
    }
    free(buf);
}

int tu_count_temps(const char *dir, int verbose)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp-") != NULL) {
            if (verbose)
                fprintf(stderr, "temp file left: %s/%s\n", dir, e->d_name);
            count++;
        }
    }
    closedir(d);
    return count;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

int tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

void tu_age(const char *path)
{
    struct timespec ts[2] = {{978307200, 123456789}, {978307200, 123456789}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

void tu_lstat(const char *path, struct stat *st)
{
    if (lstat(path, st) != 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
}

void tu_assert_same_stat(const struct stat *a, const struct stat *b)
{
    assert_int_equal(a->st_dev, b->st_dev);
    assert_int_equal(a->st_ino, b->st_ino);
    assert_int_equal(a->st_mode, b->st_mode);
    assert_int_equal(a->st_size, b->st_size);
    assert_int_equal(a->st_mtim.tv_sec, b->st_mtim.tv_sec);
    assert_int_equal(a->st_mtim.tv_nsec, b->st_mtim.tv_nsec);
}

uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tu_now_ms(void)
{
    return tu_now_ns() / 1000000u;
}

void tu_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int tu_run_child(int (*fn)(void *), void *arg, unsigned timeout_ms, int *result)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int r = fn(arg);
        ssize_t n = write(fds[1], &r, sizeof r);
        _exit(n == (ssize_t)sizeof r ? 0 : 99);
    }
    close(fds[1]);
    uint64_t deadline = tu_now_ms() + timeout_ms;
    int status = 0;
    int done = 0;
    while (!done) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = 1;
        } else if (tu_now_ms() > deadline) {
            fprintf(stderr, "child %d still running after %u ms: killed\n", (int)pid, timeout_ms);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(fds[0]);
            return -1;
        } else {
            tu_sleep_ms(2);
        }
    }
    int r = 0;
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    if (n != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d ended without a result (status 0x%x)\n", (int)pid, status);
        return -1;
    }
    *result = r;
    return 0;
}

int tu_drop_privileges(void)
{
    gid_t gid = 65534;
    if (setgroups(1, &gid) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
        return -errno;
    return 0;
}
