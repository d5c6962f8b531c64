/*
 * test_identity.c: the count against files that change behind a running writer (issue
 * 12): other programs deleting temps and stray lock files while threads and processes
 * increment (exact totals), the counter file deleted or rolled back, an operator's set,
 * the directory swapped or replaced, and descriptors 0-2 closed at start.
 */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t incr(visits_counter *c)
{
    uint64_t v = 0;
    int rc = visits_incr(c, &v);
    if (rc != 0)
        fail_msg("visits_incr: %d (%s)", rc, visits_strerror(rc));
    return v;
}

static visits_stats stats_of(visits_counter *c)
{
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    return st;
}

/* Replaces path atomically with the given contents, as a restore or another tool would. */
static void replace_behind(const char *path, const char *contents)
{
    char tmp[TU_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.restore", path);
    tu_write_file(tmp, contents, strlen(contents), 0644);
    assert_int_equal(rename(tmp, path), 0);
}

/* ---- the file vanishes, goes back, or is set by the operator ------------------------- */

static void test_vanished_file_recreated_from_known(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    for (int i = 0; i < 5; i++)
        incr(c);
    assert_int_equal(unlink(fx->path), 0);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 5); /* never 0 */
    assert_int_equal(incr(c), 6);
    tu_assert_file_str(fx->path, "6\n");
    visits_stats st = stats_of(c);
    assert_int_equal(st.recreated, 1);
    assert_int_equal(st.rolled_back, 0);
    assert_int_equal(st.known, 6);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

/* A fresh counter's first write is a creation, not a recreation. */
static void test_first_creation_is_not_recreation(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(incr(c), 1);
    assert_int_equal(stats_of(c).recreated, 0);
    assert_int_equal(visits_close(c), 0);
}

static void test_rolled_back_file_counts_on(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    for (int i = 0; i < 10; i++)
        incr(c);
    replace_behind(fx->path, "3\n"); /* an older snapshot */
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(incr(c), 11);
    tu_assert_file_str(fx->path, "11\n");
    visits_stats st = stats_of(c);
    assert_int_equal(st.rolled_back, 1);
    assert_int_equal(st.sets_followed, 0);
    assert_int_equal(visits_close(c), 0);
}

/* The operator lowers it with visits_set_file: the handle follows, once. A file put
 * back later to the same value is a rollback again (the marker was already followed). */
static void test_operator_set_followed(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    for (int i = 0; i < 10; i++)
        incr(c);
    visits_prev prev;
    assert_int_equal(visits_set_file(fx->path, 4, NULL, &prev), 0);
    assert_int_equal(prev.value, 10);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(incr(c), 5);
    assert_int_equal(incr(c), 6);
    replace_behind(fx->path, "4\n");
    assert_int_equal(incr(c), 7);
    tu_assert_file_str(fx->path, "7\n");
    visits_stats st = stats_of(c);
    assert_int_equal(st.sets_followed, 1);
    assert_int_equal(st.rolled_back, 1);
    assert_int_equal(visits_close(c), 0);
}

/* Sets made before a handle opened are not news to it; a marker that names another value
 * than the file's, or a torn one, is not a set. */
static void test_stale_or_torn_marker_is_rollback(void **state)
{
    struct tu_fixture *fx = *state;
    char marker[TU_PATH_MAX];
    tu_join(marker, fx->dir, ".visits.set");
    assert_int_equal(visits_set_file(fx->path, 2, NULL, NULL), 0);
    assert_true(tu_exists(marker));
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    for (int i = 0; i < 5; i++)
        incr(c);
    replace_behind(fx->path, "2\n"); /* the old set's value, restored */
    assert_int_equal(incr(c), 8);
    tu_write_file(marker, "3 00000000000000", 16, 0644); /* torn */
    replace_behind(fx->path, "3\n");
    assert_int_equal(incr(c), 9);
    tu_write_file(marker, "5 0123456789abcdef\n", 19, 0644); /* another value */
    replace_behind(fx->path, "3\n");
    assert_int_equal(incr(c), 10);
    assert_int_equal(stats_of(c).rolled_back, 3);
    assert_int_equal(stats_of(c).sets_followed, 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "10\n");
}

/* Interval mode: acknowledged visits not yet written are added on top of an operator's
 * set, lower or higher. */
static void check_interval_set(struct tu_fixture *fx, uint64_t set_to, const char *expect)
{
    visits_options o;
    visits_options_init(&o);
    o.sync = VISITS_SYNC_INTERVAL;
    o.interval_ms = 3600000;
    tu_write_file(fx->path, "100\n", 4, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, &o, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 3, &v), 0);
    assert_int_equal(v, 103);
    tu_assert_file_str(fx->path, "100\n"); /* not written yet */
    assert_int_equal(visits_set_file(fx->path, set_to, NULL, NULL), 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, expect);
}

static void test_interval_set_lower(void **state)
{
    check_interval_set(*state, 10, "13\n");
}

static void test_interval_set_higher(void **state)
{
    check_interval_set(*state, 1000, "1003\n");
}

/* ---- the directory is swapped, replaced or gone ---------------------------------------- */

static void dir_paths(struct tu_fixture *fx, char *dir, char *path, char *old)
{
    tu_join(dir, fx->dir, "data");
    tu_join(path, dir, "visits");
    tu_join(old, fx->dir, "data.old");
    assert_int_equal(mkdir(dir, 0755), 0);
}

/* mv DIR DIR.old; mkdir DIR: counting follows the path; the old directory keeps what it
 * had and gets nothing more. */
static void test_dir_swapped(void **state)
{
    struct tu_fixture *fx = *state;
    char dir[TU_PATH_MAX], path[TU_PATH_MAX], old[TU_PATH_MAX], oldfile[TU_PATH_MAX];
    dir_paths(fx, dir, path, old);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(path, NULL, &c), 0);
    for (int i = 0; i < 5; i++)
        incr(c);
    assert_int_equal(rename(dir, old), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(incr(c), 6);
    assert_int_equal(incr(c), 7);
    tu_assert_file_str(path, "7\n");
    tu_assert_file_str(tu_join(oldfile, old, "visits"), "5\n");
    visits_stats st = stats_of(c);
    assert_int_equal(st.dir_changed, 1);
    assert_int_equal(st.recreated, 1);
    assert_int_equal(visits_close(c), 0);
}

/* rm -rf DIR: writes fail (nothing is acknowledged, the handle is not failed); once the
 * directory is back (a re-attached volume) counting resumes from the known value. */
static void test_dir_removed_then_back(void **state)
{
    struct tu_fixture *fx = *state;
    char dir[TU_PATH_MAX], path[TU_PATH_MAX], old[TU_PATH_MAX];
    dir_paths(fx, dir, path, old);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(path, NULL, &c), 0);
    for (int i = 0; i < 5; i++)
        incr(c);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    uint64_t v = 0;
    int rc = visits_incr(c, &v);
    if (rc != VISITS_ENODIR && rc != -ENOENT)
        fail_msg("increment into a removed directory: %d (%s)", rc, visits_strerror(rc));
    assert_int_equal(stats_of(c).failed, 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(incr(c), 6);
    tu_assert_file_str(path, "6\n");
    assert_int_equal(visits_close(c), 0);
}

/* visits_reopen follows a retargeted symlink and keeps the known value. */
static void test_reopen_follows_path(void **state)
{
    struct tu_fixture *fx = *state;
    char a[TU_PATH_MAX], b[TU_PATH_MAX];
    tu_join(a, fx->dir, "a");
    tu_join(b, fx->dir, "b");
    tu_write_file(a, "20\n", 3, 0644);
    tu_write_file(b, "7\n", 2, 0644);
    assert_int_equal(symlink("a", fx->path), 0);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(incr(c), 21);
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(symlink("b", fx->path), 0);
    assert_int_equal(visits_reopen(c), 0);
    assert_int_equal(incr(c), 22); /* b went "back" to 7 from the handle's view */
    tu_assert_file_str(b, "22\n");
    tu_assert_file_str(a, "21\n");
    assert_int_equal(stats_of(c).reopens, 1);
    assert_int_equal(visits_close(c), 0);
}

/* ---- descriptors 0, 1 and 2 ------------------------------------------------------------ */

/* In a child started with 0, 1 and 2 closed: after open and increments, none of the three
 * is one of the library's files (each is closed or /dev/null), and printing to stdout
 * puts nothing into the counter's directory. */
static int stdio_closed_child(void *arg)
{
    const struct tu_fixture *fx = arg;
    close(0);
    close(1);
    close(2);
    visits_counter *c = NULL;
    if (visits_open(fx->path, NULL, &c) != 0)
        return 1;
    uint64_t v = 0;
    for (int i = 0; i < 3; i++)
        if (visits_incr(c, &v) != 0)
            return 2;
    for (int fd = 0; fd <= 2; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && !S_ISCHR(st.st_mode))
            return 10 + fd; /* a file or directory of ours took a standard descriptor */
    }
    /* what a careless program prints lands nowhere near the counter */
    if (write(1, "junk\n", 5) < 0 && errno != EBADF)
        return 20;
    if (visits_close(c) != 0)
        return 3;
    return v == 3 ? 0 : 4;
}

static void test_stdio_closed(void **state)
{
    struct tu_fixture *fx = *state;
    int result = -1;
    assert_int_equal(tu_run_child(stdio_closed_child, fx, 10000, &result), 0);
    if (result != 0)
        fail_msg("child with 0-2 closed: result %d (10-12: that descriptor was ours)", result);
    tu_assert_file_str(fx->path, "3\n");
    /* nothing else in the directory: no junk, no lock file, no temps */
    DIR *d = opendir(fx->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strcmp(e->d_name, "visits") != 0)
            fail_msg("unexpected entry %s beside the counter", e->d_name);
    closedir(d);
}

/* ---- others delete lock files and temps while threads and processes count ------------ */

#define CHAOS_PROCS 3
#define CHAOS_THREADS 2
#define CHAOS_CALLS 150 /* per thread */

struct chaos_thread {
    visits_counter *c;
    int ok, failed;
};

static void *chaos_thread_main(void *p)
{
    struct chaos_thread *t = p;
    uint64_t deadline = tu_now_ms() + 60000;
    for (int i = 0; i < CHAOS_CALLS && tu_now_ms() < deadline; i++) {
        int rc = visits_incr(t->c, NULL);
        if (rc == 0)
            t->ok++;
        else {
            t->failed++;
            if (getenv("CHAOS_DEBUG"))
                fprintf(stderr, "chaos: %d %s\n", rc, visits_strerror(rc));
        }
    }
    return NULL;
}

/* One writer process: its threads share one handle; it reports how many increments were
 * acknowledged (and how many failed) through a pipe. */
static void chaos_writer(const char *path, int out_fd)
{
    visits_counter *c = NULL;
    int counts[2] = {0, 0};
    if (visits_open(path, NULL, &c) == 0) {
        pthread_t tid[CHAOS_THREADS];
        struct chaos_thread t[CHAOS_THREADS];
        for (int i = 0; i < CHAOS_THREADS; i++) {
            t[i] = (struct chaos_thread){c, 0, 0};
            pthread_create(&tid[i], NULL, chaos_thread_main, &t[i]);
        }
        for (int i = 0; i < CHAOS_THREADS; i++) {
            pthread_join(tid[i], NULL);
            counts[0] += t[i].ok;
            counts[1] += t[i].failed;
        }
        visits_close(c);
    } else {
        counts[1] = -1;
    }
    _exit(write(out_fd, counts, sizeof counts) == (ssize_t)sizeof counts ? 0 : 1);
}

/* Deletes what lies beside the counter, as fast as it can, until killed: lock files of
 * this and earlier releases and the operator's marker, and with temps also the writers'
 * temps. */
static void chaos_deleter(const char *dir, int temps)
{
    for (;;) {
        DIR *d = opendir(dir);
        if (d == NULL)
            _exit(1);
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 &&
                strcmp(e->d_name, "..") != 0 && (temps || strstr(e->d_name, ".tmp-") == NULL))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
        /* and a fresh stray lock file to delete next time */
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            int l = openat(fd, ".visits.lock", O_CREAT | O_WRONLY, 0644);
            if (l >= 0)
                close(l);
            close(fd);
        }
    }
}

static void run_chaos(struct tu_fixture *fx, int temps)
{
    int pipes[CHAOS_PROCS][2];
    pid_t writers[CHAOS_PROCS];
    fflush(NULL);
    pid_t deleter = fork();
    assert_true(deleter >= 0);
    if (deleter == 0)
        chaos_deleter(fx->dir, temps);
    for (int p = 0; p < CHAOS_PROCS; p++) {
        assert_int_equal(pipe(pipes[p]), 0);
        writers[p] = fork();
        assert_true(writers[p] >= 0);
        if (writers[p] == 0) {
            close(pipes[p][0]);
            chaos_writer(fx->path, pipes[p][1]);
        }
        close(pipes[p][1]);
    }
    int acked = 0, failed = 0;
    for (int p = 0; p < CHAOS_PROCS; p++) {
        int counts[2] = {0, 0};
        assert_int_equal(read(pipes[p][0], counts, sizeof counts), (ssize_t)sizeof counts);
        close(pipes[p][0]);
        int status;
        assert_int_equal(waitpid(writers[p], &status, 0), writers[p]);
        assert_true(counts[1] >= 0);
        acked += counts[0];
        failed += counts[1];
    }
    kill(deleter, SIGKILL);
    waitpid(deleter, NULL, 0);
    char expect[32];
    snprintf(expect, sizeof expect, "%d\n", acked);
    print_message("chaos (deleting %s): %d acknowledged, %d failed; the file holds %s",
                  temps ? "temps and lock files" : "lock files", acked, failed, expect);
    /* exactly what was acknowledged: nothing lost, nothing counted twice */
    tu_assert_file_str(fx->path, expect);
    if (!temps)
        assert_int_equal(failed, 0); /* a lock file is nothing the writers need */
    else
        assert_true(acked > 0); /* a write whose temp is deleted retries, then fails */
}

/* Other programs delete lock files (of this and earlier releases) while 3 processes of 2
 * threads increment: every increment succeeds and the file holds the exact total. */
static void test_deleting_lock_files_loses_nothing(void **state)
{
    run_chaos(*state, 0);
}

/* ... and the writers' temps too, in a tight loop: writes retry with a new temp and some
 * fail with ENOENT in the end, but the file holds exactly the acknowledged total. */
static void test_deleting_temps_loses_nothing(void **state)
{
    run_chaos(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_vanished_file_recreated_from_known),
        TU_TEST(test_first_creation_is_not_recreation),
        TU_TEST(test_rolled_back_file_counts_on),
        TU_TEST(test_operator_set_followed),
        TU_TEST(test_stale_or_torn_marker_is_rollback),
        TU_TEST(test_interval_set_lower),
        TU_TEST(test_interval_set_higher),
        TU_TEST(test_dir_swapped),
        TU_TEST(test_dir_removed_then_back),
        TU_TEST(test_reopen_follows_path),
        TU_TEST(test_stdio_closed),
        TU_TEST(test_deleting_lock_files_loses_nothing),
        TU_TEST(test_deleting_temps_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
