/*
 * util.h: helpers shared by the libvisits unit tests (cmocka).
 *
 * Every test gets a fresh directory from mkdtemp() under $VISITS_TEST_TMPDIR (default
 * /tmp), removed again by the teardown. The helpers read and write exact bytes, look for
 * leftover temp files and run code in a forked child with a time limit.
 */
#ifndef VISITS_TEST_UTIL_H
#define VISITS_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/types.h>

#include "visits.h"

#define TU_PATH_MAX 4096

/* The per-test state handed to each test through cmocka's void **state. */
struct tu_fixture {
    char dir[TU_PATH_MAX];  /* the fresh temp directory */
    char path[TU_PATH_MAX]; /* dir + "/visits": the counter most tests use */
};

/* cmocka setup/teardown: create and remove the temp dir, restore every syscall. */
int tu_setup(void **state);
int tu_teardown(void **state);

#define TU_TEST(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)

/* snprintf into buf (TU_PATH_MAX) of dir + "/" + name; returns buf. */
char *tu_join(char *buf, const char *dir, const char *name);

/* Creates (or truncates) path with exactly len bytes and the given mode (chmod'ed, so
 * the umask does not apply). Fails the test on error. */
void tu_write_file(const char *path, const void *bytes, size_t len, mode_t mode);

/* Reads at most cap bytes of path into buf; returns the length, or -1 if the file is
 * missing. Fails the test on other errors. */
long tu_read_file(const char *path, char *buf, size_t cap);

/* Asserts that path holds exactly the len bytes given. */
#define tu_assert_file(path, bytes, len) tu_assert_file_at(path, bytes, len, __FILE__, __LINE__)
void tu_assert_file_at(const char *path, const void *bytes, size_t len, const char *file, int line);
/* Asserts that path holds exactly the string s (no NUL). */
#define tu_assert_file_str(path, s) tu_assert_file(path, s, strlen(s))

/* Number of entries of dir whose name starts with "." and contains ".tmp-": temp files
 * of any counter in that directory. With verbose, each is named on stderr. */
int tu_count_temps(const char *dir, int verbose);
#define tu_assert_no_temps(dir) assert_int_equal(tu_count_temps(dir, 1), 0)

/* Number of open file descriptors of this process. */
int tu_count_fds(void);

/* 1 if something (a dangling symlink included) exists at path, else 0 (lstat). */
int tu_exists(const char *path);

/* Sets atime/mtime of path to a fixed time in the past (2001), so that any rewrite of
 * the file shows in its mtime. Does not follow symlinks. */
void tu_age(const char *path);

/* lstat that fails the test on error. */
void tu_lstat(const char *path, struct stat *st);
/* Asserts that two stats describe the same unchanged inode: dev, ino, mode, size, mtime. */
void tu_assert_same_stat(const struct stat *a, const struct stat *b);

/* Monotonic clock in nanoseconds / milliseconds. */
uint64_t tu_now_ns(void);
uint64_t tu_now_ms(void);
void tu_sleep_ms(unsigned ms);

/*
 * Runs fn(arg) in a forked child and waits at most timeout_ms for it. The child's int
 * result travels back through a pipe. Returns 0 and *result when the child finished,
 * -1 if it had to be killed (timed out) or died without a result. Never use cmocka
 * assertions inside fn: they would unwind into the child's copy of the test runner.
 */
int tu_run_child(int (*fn)(void *), void *arg, unsigned timeout_ms, int *result);

/* Drops root in a forked child: setgroups/setgid/setuid to 65534. Returns 0 or -errno. */
int tu_drop_privileges(void);

/*
 * Replaces the library's system call `name` (see visits_testing.h) with the function
 * stored in the function-pointer variable *fn, and stores the function it replaced in
 * the function-pointer variable *prev (nullable). ISO C has no conversion between
 * function and object pointers, so the seam's void * travels by memcpy. Fails the test
 * for an unknown name.
 */
void tu_install(const char *name, const void *fn, void *prev);

/* Makes every write(2) of the library fail with err from now on (0: write again), from any
 * thread; installs the wrapper on first use in a test (the teardown removes it). */
void tu_fail_writes(int err);

/* Restores every libc function in the library's syscall table. */
void tu_restore_syscalls(void);

/* Base directory for temp dirs: $VISITS_TEST_TMPDIR or /tmp. */
const char *tu_tmp_base(void);

/* Parses an unsigned decimal env var, or returns def. */
unsigned long tu_env_ulong(const char *name, unsigned long def);

#endif
