/*
 * test_lock.c: the writers' lock and stale temps (lock.c). A write cycle locks the counter
 * file itself (the directory while creating it) and checks it is still the one at the
 * path; opening removes ".<name>.tmp-*" left by a dead writer and nothing else.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The lock is the counter file itself (and its directory): writing creates no lock file,
 * and a lock file left by an earlier release is neither needed nor touched. */
static void test_no_lock_file(void **state)
{
    struct tu_fixture *fx = *state;
    char lock[TU_PATH_MAX];
    tu_join(lock, fx->dir, ".visits.lock");
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(visits_incr(c, NULL), 0);
    tu_assert_file_str(fx->path, "1\n");
    assert_int_equal(visits_close(c), 0);
    assert_false(tu_exists(lock));
    tu_write_file(lock, "junk", 4, 0600);
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(visits_incr(c, NULL), 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "2\n");
    tu_assert_file(lock, "junk", 4);
    tu_assert_no_temps(fx->dir);
}

/* Long names: the temp ".<name>.tmp-" + 12 random characters must fit NAME_MAX (255),
 * so 237 characters is the longest name the library can write. That one works; a longer
 * one is refused at open (-ENAMETOOLONG) instead of giving a handle that can never
 * write. */
static void check_long_name(struct tu_fixture *fx, size_t len, int expect_open)
{
    char name[256];
    memset(name, 'n', len);
    name[len] = '\0';
    char path[TU_PATH_MAX], lock[TU_PATH_MAX];
    tu_join(path, fx->dir, name);
    visits_counter *c = NULL;
    int rc = visits_open(path, NULL, &c);
    if (rc != expect_open) {
        int rc2 = c ? visits_incr(c, NULL) : 0;
        visits_close(c);
        fail_msg("name of %zu characters: visits_open = %d, expected %d (an increment then "
                 "gave %d)",
                 len, rc, expect_open, rc2);
    }
    if (rc != 0) {
        assert_null(c);
        return;
    }
    assert_int_equal(visits_incr(c, NULL), 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(path, "1\n");
    char lockname[300];
    snprintf(lockname, sizeof lockname, ".%s.lock", name);
    assert_false(tu_exists(tu_join(lock, fx->dir, lockname)));
    tu_assert_no_temps(fx->dir);
}

static void test_long_name(void **state)
{
    struct tu_fixture *fx = *state;
    check_long_name(fx, 237, 0);
    check_long_name(fx, 238, -ENAMETOOLONG);
    check_long_name(fx, 249, -ENAMETOOLONG);
    check_long_name(fx, 255, -ENAMETOOLONG);
}

struct sibling {
    const char *name;
    int removed; /* 1: a stale temp of "visits", 0: must stay */
};

static const struct sibling siblings[] = {
    {".visits.tmp-abc123", 1},
    {".visits.tmp-XXXXXX", 1},
    {".visits.tmp-0", 1},
    {".visits.tmp-a.b-c", 1},
    {".visits.tmpfoo", 0},
    {".visits.tmp", 0},
    {"visits.tmp-x", 0},
    {".visits.tmp-", 0}, /* the library's temps always have a suffix */
    {".visits2.tmp-abc123", 0},
    {".visit.tmp-abc123", 0},
    {"..visits.tmp-abc123", 0},
    {".other.tmp-abc123", 0},
    {".visits.lock.tmp-abc123", 0},
    {"x.visits.tmp-abc123", 0},
    {".VISITS.tmp-abc123", 0},
};

static void make_siblings(const struct tu_fixture *fx)
{
    char p[TU_PATH_MAX];
    for (size_t i = 0; i < sizeof siblings / sizeof siblings[0]; i++) {
        tu_join(p, fx->dir, siblings[i].name);
        tu_write_file(p, siblings[i].name, strlen(siblings[i].name), 0600);
        tu_age(p);
    }
}

static void check_siblings(const struct tu_fixture *fx)
{
    char p[TU_PATH_MAX];
    for (size_t i = 0; i < sizeof siblings / sizeof siblings[0]; i++) {
        tu_join(p, fx->dir, siblings[i].name);
        if (siblings[i].removed) {
            if (tu_exists(p))
                fail_msg("stale temp %s was not removed", siblings[i].name);
        } else {
            if (!tu_exists(p))
                fail_msg("%s is not a temp of \"visits\" but was removed", siblings[i].name);
            tu_assert_file(p, siblings[i].name, strlen(siblings[i].name));
        }
    }
}

static void test_stale_temps_removed(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "8\n", 2, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    make_siblings(fx);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    check_siblings(fx);
    /* removing temps does not touch the counter */
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "9\n");
    check_siblings(fx);
}

/* Temps are removed even when the counter itself does not exist yet. */
static void test_stale_temps_removed_missing_counter(void **state)
{
    struct tu_fixture *fx = *state;
    make_siblings(fx);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    check_siblings(fx);
    assert_false(tu_exists(fx->path));
    assert_int_equal(visits_close(c), 0);
}

/* A corrupt counter is refused; its stale temps do not matter to that. */
static void test_stale_temps_beside_corrupt(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "x\n", 2, 0644);
    char tmp[TU_PATH_MAX];
    tu_join(tmp, fx->dir, ".visits.tmp-123456");
    tu_write_file(tmp, "9\n", 2, 0600);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), VISITS_ECORRUPT);
    tu_assert_file_str(fx->path, "x\n");
}

/* Only regular files are temps: a directory, symlink or FIFO that carries a temp's name
 * is left alone, and it does not stop the counter from opening. */
static void test_temp_named_non_files_left(void **state)
{
    struct tu_fixture *fx = *state;
    char dir[TU_PATH_MAX], lnk[TU_PATH_MAX], fifo[TU_PATH_MAX], stale[TU_PATH_MAX];
    tu_join(dir, fx->dir, ".visits.tmp-dir");
    assert_int_equal(mkdir(dir, 0755), 0);
    tu_join(lnk, fx->dir, ".visits.tmp-lnk");
    assert_int_equal(symlink("visits", lnk), 0);
    tu_join(fifo, fx->dir, ".visits.tmp-fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tu_join(stale, fx->dir, ".visits.tmp-abc123");
    tu_write_file(stale, "1\n", 2, 0600);
    tu_write_file(fx->path, "3\n", 2, 0644);
    visits_counter *c = NULL;
    int rc = visits_open(fx->path, NULL, &c);
    if (rc != 0)
        fail_msg("entries named like temps make visits_open fail: %d (%s)", rc,
                 visits_strerror(rc));
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "4\n");
    assert_false(tu_exists(stale));
    struct stat st;
    tu_lstat(dir, &st);
    assert_true(S_ISDIR(st.st_mode));
    tu_lstat(lnk, &st);
    assert_true(S_ISLNK(st.st_mode));
    tu_lstat(fifo, &st);
    assert_true(S_ISFIFO(st.st_mode));
}

/* Stale temps of the target, not of the link name, are removed when opening by link. */
static void test_stale_temps_of_symlink_target(void **state)
{
    struct tu_fixture *fx = *state;
    char real[TU_PATH_MAX], p[TU_PATH_MAX];
    tu_join(real, fx->dir, "real");
    tu_write_file(real, "3\n", 2, 0644);
    assert_int_equal(symlink("real", fx->path), 0);
    tu_join(p, fx->dir, ".real.tmp-zzzzzz");
    tu_write_file(p, "4\n", 2, 0600);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_false(tu_exists(p));
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(real, "3\n");
}

/*
 * Another process writes the way a second handle does in its write cycle, slowly: it
 * holds the lock while it replaces the file with 50. An increment started meanwhile waits
 * for the lock and builds on the other process's value: 51, never 1.
 *
 * With the file missing, the other writer is creating it: it holds the directory
 * exclusively. With the file present it holds the directory shared and the file
 * exclusively; our handle then waits on the old file, finds it replaced once it gets its
 * lock, and takes the lock of the new one (a lock retry).
 */
static int other_writer(const char *dir, const char *path, int exists, int ready_fd)
{
    char tmp[TU_PATH_MAX];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, exists ? LOCK_SH : LOCK_EX) != 0)
        return 2;
    int fd = exists ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (exists && (fd < 0 || flock(fd, LOCK_EX) != 0))
        return 2;
    /* the lock is held: tell the parent, then write 50 slowly */
    if (write(ready_fd, "x", 1) != 1)
        return 3;
    tu_sleep_ms(300);
    int t = open(tu_join(tmp, dir, "other-writer"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (t < 0 || write(t, "50\n", 3) != 3 || fsync(t) != 0 || close(t) != 0)
        return 4;
    if (rename(tmp, path) != 0)
        return 5;
    tu_sleep_ms(100);
    if (fd >= 0)
        close(fd);
    return flock(dfd, LOCK_UN) == 0 ? 0 : 6;
}

static void check_lock_serialises(struct tu_fixture *fx, int exists)
{
    if (exists)
        tu_write_file(fx->path, "7\n", 2, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        _exit(other_writer(fx->dir, fx->path, exists, ready[1]));
    }
    close(ready[1]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);
    uint64_t t0 = tu_now_ms();
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    uint64_t waited = tu_now_ms() - t0;
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(v, 51);
    assert_true(waited >= 250);
    tu_assert_file_str(fx->path, "51\n");
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    if (exists)
        assert_true(st.lock_retries >= 1);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_lock_serialises_processes(void **state)
{
    check_lock_serialises(*state, 1);
}

static void test_lock_serialises_creation(void **state)
{
    check_lock_serialises(*state, 0);
}

/* visits_set_file() takes the same lock. */
static void test_set_file_waits_for_lock(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "3\n", 2, 0644);
    int fd = open(fx->path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    /* the lock is held by this open file description: a child's set_file must wait */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd); /* the parent keeps the lock */
        int rc = visits_set_file(fx->path, 7, NULL, NULL);
        _exit(rc == 0 ? 0 : 1);
    }
    tu_sleep_ms(300);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still waiting */
    tu_assert_file_str(fx->path, "3\n");
    assert_int_equal(flock(fd, LOCK_UN), 0);
    close(fd);
    uint64_t deadline = tu_now_ms() + 10000;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && tu_now_ms() < deadline)
        tu_sleep_ms(5);
    if (w == 0) {
        kill(pid, 9);
        waitpid(pid, &status, 0);
        fail_msg("visits_set_file did not finish after the lock was released");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_assert_file_str(fx->path, "7\n");
    tu_assert_no_temps(fx->dir);
}

/* A temp whose writer still holds it is never swept by another handle's open; one whose
 * writer died (nobody holds it) is. */
static void test_live_temp_kept(void **state)
{
    struct tu_fixture *fx = *state;
    char live[TU_PATH_MAX], dead[TU_PATH_MAX];
    tu_join(live, fx->dir, ".visits.tmp-livelivelive");
    tu_join(dead, fx->dir, ".visits.tmp-deaddeaddead");
    tu_write_file(live, "9\n", 2, 0600);
    tu_write_file(dead, "9\n", 2, 0600);
    int fd = open(live, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_true(tu_exists(live));
    assert_false(tu_exists(dead));
    assert_int_equal(visits_close(c), 0);
    close(fd);
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_false(tu_exists(live));
    assert_int_equal(visits_close(c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_no_lock_file),
        TU_TEST(test_long_name),
        TU_TEST(test_stale_temps_removed),
        TU_TEST(test_stale_temps_removed_missing_counter),
        TU_TEST(test_stale_temps_beside_corrupt),
        TU_TEST(test_stale_temps_of_symlink_target),
        TU_TEST(test_temp_named_non_files_left),
        TU_TEST(test_lock_serialises_processes),
        TU_TEST(test_set_file_waits_for_lock),
        TU_TEST(test_lock_serialises_creation),
        TU_TEST(test_live_temp_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
