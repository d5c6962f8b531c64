/*
 * test_path.c: where the counter lives (path.c). Symlinks are followed at open, writes
 * replace the final target in its own directory and the link stays a link; a dangling
 * link names the file to create; loops are refused; bare and relative names work.
 */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void assert_link(const char *path, const char *target)
{
    struct stat st;
    tu_lstat(path, &st);
    assert_true(S_ISLNK(st.st_mode));
    char buf[TU_PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, target);
}

static void incr_expect(const char *path, uint64_t expect)
{
    visits_counter *c = NULL;
    assert_int_equal(visits_open(path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, expect);
    assert_int_equal(visits_close(c), 0);
}

static void test_symlink_same_dir(void **state)
{
    struct tu_fixture *fx = *state;
    char real[TU_PATH_MAX], link[TU_PATH_MAX], lock[TU_PATH_MAX];
    tu_join(real, fx->dir, "real");
    tu_join(link, fx->dir, "visits");
    tu_write_file(real, "5\n", 2, 0644);
    assert_int_equal(symlink("real", link), 0);

    incr_expect(link, 6);
    tu_assert_file_str(real, "6\n");
    assert_link(link, "real");
    /* the lock is on the target itself: no lock file beside either name */
    assert_false(tu_exists(tu_join(lock, fx->dir, ".real.lock")));
    assert_false(tu_exists(tu_join(lock, fx->dir, ".visits.lock")));
    uint64_t v = 0;
    assert_int_equal(visits_read_file(link, &v, NULL), 0);
    assert_int_equal(v, 6);
    tu_assert_no_temps(fx->dir);
}

/* The link in one directory, the target in another: temps and lock in the target's. */
static void test_symlink_other_dir(void **state)
{
    struct tu_fixture *fx = *state;
    char a[TU_PATH_MAX], b[TU_PATH_MAX], real[TU_PATH_MAX], link[TU_PATH_MAX], lock[TU_PATH_MAX];
    tu_join(a, fx->dir, "a");
    tu_join(b, fx->dir, "b");
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    tu_join(real, b, "count");
    tu_join(link, a, "visits");
    tu_write_file(real, "10\n", 3, 0640);
    assert_int_equal(symlink("../b/count", link), 0); /* relative to the link's dir */

    incr_expect(link, 11);
    tu_assert_file_str(real, "11\n");
    assert_link(link, "../b/count");
    assert_false(tu_exists(tu_join(lock, b, ".count.lock")));
    assert_false(tu_exists(tu_join(lock, a, ".visits.lock")));
    struct stat st;
    tu_lstat(real, &st);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    tu_assert_no_temps(a);
    tu_assert_no_temps(b);
}

/* An absolute link and a chain of links: followed to the end. */
static void test_symlink_chain(void **state)
{
    struct tu_fixture *fx = *state;
    char sub[TU_PATH_MAX], real[TU_PATH_MAX], l1[TU_PATH_MAX], l2[TU_PATH_MAX], l3[TU_PATH_MAX];
    tu_join(sub, fx->dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    tu_join(real, sub, "real");
    tu_join(l1, fx->dir, "l1");
    tu_join(l2, sub, "l2");
    tu_join(l3, fx->dir, "visits");
    tu_write_file(real, "100\n", 4, 0644);
    assert_int_equal(symlink("real", l2), 0); /* sub/l2 -> sub/real */
    assert_int_equal(symlink(l2, l1), 0);     /* l1 -> absolute sub/l2 */
    assert_int_equal(symlink("l1", l3), 0);   /* visits -> l1 */

    incr_expect(l3, 101);
    tu_assert_file_str(real, "101\n");
    assert_link(l3, "l1");
    assert_link(l1, l2);
    assert_link(l2, "real");
    tu_assert_no_temps(fx->dir);
    tu_assert_no_temps(sub);
}

static void test_dangling_symlink_creates_target(void **state)
{
    struct tu_fixture *fx = *state;
    char sub[TU_PATH_MAX], real[TU_PATH_MAX], link[TU_PATH_MAX];
    tu_join(sub, fx->dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    tu_join(real, sub, "new");
    tu_join(link, fx->dir, "visits");
    assert_int_equal(symlink("sub/new", link), 0);

    uint64_t v = 5;
    int exists = 1;
    assert_int_equal(visits_read_file(link, &v, &exists), 0);
    assert_int_equal(v, 0);
    assert_int_equal(exists, 0);

    incr_expect(link, 1);
    tu_assert_file_str(real, "1\n");
    assert_link(link, "sub/new");
    incr_expect(link, 2);
    tu_assert_file_str(real, "2\n");
    tu_assert_no_temps(fx->dir);
    tu_assert_no_temps(sub);
}

/* The link is followed once, at open: pointing it elsewhere later does not move an open
 * handle's counter. */
static void test_symlink_followed_once_at_open(void **state)
{
    struct tu_fixture *fx = *state;
    char a[TU_PATH_MAX], b[TU_PATH_MAX];
    tu_join(a, fx->dir, "a");
    tu_join(b, fx->dir, "b");
    tu_write_file(a, "10\n", 3, 0644);
    tu_write_file(b, "20\n", 3, 0644);
    assert_int_equal(symlink("a", fx->path), 0);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(symlink("b", fx->path), 0);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(a, "12\n");
    tu_assert_file_str(b, "20\n");
    assert_link(fx->path, "b");
    incr_expect(fx->path, 21); /* a new handle follows the new link */
    tu_assert_file_str(b, "21\n");
    tu_assert_file_str(a, "12\n");
}

/* A dangling link into a missing directory: the directory is not created. */
static void test_dangling_symlink_missing_dir(void **state)
{
    struct tu_fixture *fx = *state;
    char link[TU_PATH_MAX], nodir[TU_PATH_MAX];
    tu_join(link, fx->dir, "visits");
    assert_int_equal(symlink("nodir/new", link), 0);
    visits_counter *c = (visits_counter *)fx;
    assert_int_equal(visits_open(link, NULL, &c), VISITS_ENODIR);
    assert_null(c);
    assert_false(tu_exists(tu_join(nodir, fx->dir, "nodir")));
    assert_link(link, "nodir/new");
}

static void test_symlink_loop_refused(void **state)
{
    struct tu_fixture *fx = *state;
    char a[TU_PATH_MAX], b[TU_PATH_MAX], self[TU_PATH_MAX];
    tu_join(a, fx->dir, "visits");
    tu_join(b, fx->dir, "other");
    tu_join(self, fx->dir, "self");
    assert_int_equal(symlink("other", a), 0);
    assert_int_equal(symlink("visits", b), 0);
    assert_int_equal(symlink("self", self), 0);
    const char *paths[] = {a, self};
    for (size_t i = 0; i < 2; i++) {
        visits_counter *c = (visits_counter *)fx;
        int rc = visits_open(paths[i], NULL, &c);
        if (rc != VISITS_ESYMLOOP && rc != -ELOOP)
            fail_msg("open of a symlink loop = %d (%s)", rc, visits_strerror(rc));
        assert_null(c);
        uint64_t v;
        rc = visits_read_file(paths[i], &v, NULL);
        assert_true(rc == VISITS_ESYMLOOP || rc == -ELOOP);
        rc = visits_set_file(paths[i], 1, NULL, NULL);
        assert_true(rc == VISITS_ESYMLOOP || rc == -ELOOP);
    }
    assert_link(a, "other");
    assert_link(b, "visits");
    assert_link(self, "self");
    tu_assert_no_temps(fx->dir);
}

/* A long chain that ends in a file, 30 links: shorter than the kernel's limit (40). */
static void test_symlink_long_chain(void **state)
{
    struct tu_fixture *fx = *state;
    char real[TU_PATH_MAX], link[TU_PATH_MAX], name[64], target[64];
    tu_join(real, fx->dir, "real");
    tu_write_file(real, "7\n", 2, 0644);
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "l%d", i);
        if (i == 0)
            snprintf(target, sizeof target, "real");
        else
            snprintf(target, sizeof target, "l%d", i - 1);
        assert_int_equal(symlink(target, tu_join(link, fx->dir, name)), 0);
    }
    incr_expect(link, 8);
    tu_assert_file_str(real, "8\n");
    assert_link(link, "l28");
}

static void test_symlink_to_directory(void **state)
{
    struct tu_fixture *fx = *state;
    char sub[TU_PATH_MAX];
    tu_join(sub, fx->dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(symlink("sub", fx->path), 0);
    visits_counter *c = (visits_counter *)fx;
    assert_int_equal(visits_open(fx->path, NULL, &c), VISITS_ENOTREG);
    assert_null(c);
    assert_link(fx->path, "sub");
}

/* A path through a symlinked directory and a path with ".." components. */
static void test_symlinked_directory_component(void **state)
{
    struct tu_fixture *fx = *state;
    char real_dir[TU_PATH_MAX], dir_link[TU_PATH_MAX], path[TU_PATH_MAX], real[TU_PATH_MAX];
    tu_join(real_dir, fx->dir, "data");
    assert_int_equal(mkdir(real_dir, 0755), 0);
    tu_join(dir_link, fx->dir, "current");
    assert_int_equal(symlink("data", dir_link), 0);
    tu_join(path, dir_link, "visits");
    tu_join(real, real_dir, "visits");
    incr_expect(path, 1);
    tu_assert_file_str(real, "1\n");
    tu_join(path, fx->dir, "data/../data/./visits");
    incr_expect(path, 2);
    tu_assert_file_str(real, "2\n");
    tu_assert_no_temps(real_dir);
}

/* A bare name is relative to the current directory. */
static void test_bare_name(void **state)
{
    struct tu_fixture *fx = *state;
    char cwd[TU_PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fx->dir), 0);
    visits_counter *c = NULL;
    int rc = visits_open("visits", NULL, &c);
    uint64_t v = 0;
    int rc2 = rc == 0 ? visits_incr(c, &v) : rc;
    /* the handle keeps working after the process changes directory */
    int rc3 = chdir("/");
    int rc4 = rc == 0 ? visits_incr(c, &v) : rc;
    int rc5 = rc == 0 ? visits_close(c) : rc;
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc3, 0);
    assert_int_equal(rc4, 0);
    assert_int_equal(rc5, 0);
    assert_int_equal(v, 2);
    tu_assert_file_str(fx->path, "2\n");
    char lock[TU_PATH_MAX];
    assert_false(tu_exists(tu_join(lock, fx->dir, ".visits.lock")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_symlink_same_dir),
        TU_TEST(test_symlink_other_dir),
        TU_TEST(test_symlink_chain),
        TU_TEST(test_dangling_symlink_creates_target),
        TU_TEST(test_symlink_followed_once_at_open),
        TU_TEST(test_dangling_symlink_missing_dir),
        TU_TEST(test_symlink_loop_refused),
        TU_TEST(test_symlink_long_chain),
        TU_TEST(test_symlink_to_directory),
        TU_TEST(test_symlinked_directory_component),
        TU_TEST(test_bare_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
