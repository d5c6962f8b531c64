/*
 * test_file.c: reading the counter file (file.c) through visits_open(), visits_read_file()
 * and visits_set_file(): missing files, every corrupt shape (left byte-identical),
 * non-regular files, the operator's replace and its report of what it replaced.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct corrupt_case {
    const char *name;
    const char *bytes;
    size_t len;
};

#define CASE(n, s)                                                                                 \
    {                                                                                              \
        n, s, sizeof(s) - 1                                                                        \
    }

static const struct corrupt_case corrupt_cases[] = {
    CASE("empty", ""),
    CASE("newline only", "\n"),
    CASE("plus sign", "+1\n"),
    CASE("minus sign", "-1\n"),
    CASE("leading space", " 1\n"),
    CASE("trailing space", "1 \n"),
    CASE("two newlines", "1\n\n"),
    CASE("crlf", "1\r\n"),
    CASE("junk suffix", "12a\n"),
    CASE("letters", "abc"),
    CASE("nul byte", "\0"),
    CASE("nul after digit", "1\0\n"),
    CASE("leading zero", "01\n"),
    CASE("double zero", "00\n"),
    CASE("overflow by one", "18446744073709551616\n"),
    CASE("overflow long", "1844674407370955161500\n"),
    CASE("33 bytes", "111111111111111111111111111111111"),
    CASE("value then junk line", "5\nhello\n"),
};

/* A file of n bytes that is corrupt only because it is too long (the first 32 bytes
 * are digits, the rest newline-terminated digits). */
static char *long_file(size_t n)
{
    char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('1' + (char)(i % 9));
    buf[n - 1] = '\n';
    return buf;
}

/* open, read_file, and an increment through an already open handle all refuse the
 * bytes and leave the file exactly as it was (bytes, inode, mode, mtime), no temp. */
static void check_corrupt_refused(struct tu_fixture *fx, const char *bytes, size_t len,
                                  const char *what)
{
    tu_write_file(fx->path, bytes, len, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);

    visits_counter *c = (visits_counter *)fx;
    int rc = visits_open(fx->path, NULL, &c);
    if (rc != VISITS_ECORRUPT)
        fail_msg("%s: visits_open = %d (%s), expected VISITS_ECORRUPT", what, rc,
                 visits_strerror(rc));
    assert_null(c);

    uint64_t v = 77;
    int exists = -1;
    rc = visits_read_file(fx->path, &v, &exists);
    if (rc != VISITS_ECORRUPT)
        fail_msg("%s: visits_read_file = %d, expected VISITS_ECORRUPT", what, rc);

    tu_assert_file(fx->path, bytes, len);
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    tu_assert_no_temps(fx->dir);
    assert_int_equal(unlink(fx->path), 0);
}

static void test_corrupt_files_refused_untouched(void **state)
{
    struct tu_fixture *fx = *state;
    for (size_t i = 0; i < sizeof corrupt_cases / sizeof corrupt_cases[0]; i++)
        check_corrupt_refused(fx, corrupt_cases[i].bytes, corrupt_cases[i].len,
                              corrupt_cases[i].name);
    static const size_t sizes[] = {33, 34, 64, 4096, 4097, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *buf = long_file(sizes[i]);
        char what[64];
        snprintf(what, sizeof what, "file of %zu bytes", sizes[i]);
        check_corrupt_refused(fx, buf, sizes[i], what);
        free(buf);
    }
}

/* The corrupt file also makes a handle that is already open refuse to write. */
static void test_corrupted_while_open(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 5, &v), 0);
    assert_int_equal(v, 5);
    tu_assert_file_str(fx->path, "5\n");

    /* another program writes junk in place */
    tu_write_file(fx->path, "5x\n", 3, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    assert_int_equal(visits_incr(c, &v), VISITS_ECORRUPT);
    assert_int_equal(visits_add(c, 0, &v), VISITS_ECORRUPT);
    tu_assert_file_str(fx->path, "5x\n");
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    tu_assert_no_temps(fx->dir);

    /* the operator repairs it; the same handle carries on from the new value */
    visits_prev prev;
    assert_int_equal(visits_set_file(fx->path, 40, NULL, &prev), 0);
    assert_int_equal(prev.state, VISITS_ECORRUPT);
    assert_int_equal(prev.len, 3);
    assert_memory_equal(prev.bytes, "5x\n", 3);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 40);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 41);
    tu_assert_file_str(fx->path, "41\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "41\n");
    tu_assert_no_temps(fx->dir);
}

static void test_value_without_newline_accepted(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41", 2, 0644);
    uint64_t v = 0;
    int exists = 0;
    assert_int_equal(visits_read_file(fx->path, &v, &exists), 0);
    assert_int_equal(v, 41);
    assert_int_equal(exists, 1);
    tu_assert_file_str(fx->path, "41");

    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 41);
    tu_assert_file_str(fx->path, "41"); /* opening and reading do not rewrite */
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 42);
    tu_assert_file_str(fx->path, "42\n"); /* the first write canonicalises */
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_missing_file_reads_zero(void **state)
{
    struct tu_fixture *fx = *state;
    uint64_t v = 99;
    int exists = 1;
    assert_int_equal(visits_read_file(fx->path, &v, &exists), 0);
    assert_int_equal(v, 0);
    assert_int_equal(exists, 0);
    v = 99;
    assert_int_equal(visits_read_file(fx->path, &v, NULL), 0);
    assert_int_equal(v, 0);

    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    v = 99;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 0);
    assert_false(tu_exists(fx->path)); /* opening and reading create nothing */
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 1);
    tu_assert_file_str(fx->path, "1\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "1\n");
    tu_assert_no_temps(fx->dir);

    /* opening and closing without an increment leaves a missing file missing */
    char other[TU_PATH_MAX];
    tu_join(other, fx->dir, "other");
    assert_int_equal(visits_open(other, NULL, &c), 0);
    assert_int_equal(visits_close(c), 0);
    assert_false(tu_exists(other));
}

static void test_missing_parent_dir(void **state)
{
    struct tu_fixture *fx = *state;
    char path[TU_PATH_MAX];
    tu_join(path, fx->dir, "nope/visits");
    visits_counter *c = (visits_counter *)fx;
    assert_int_equal(visits_open(path, NULL, &c), VISITS_ENODIR);
    assert_null(c);
    tu_join(path, fx->dir, "nope/deeper/visits");
    assert_int_equal(visits_open(path, NULL, &c), VISITS_ENODIR);
    assert_null(c);
    char nope[TU_PATH_MAX];
    assert_false(tu_exists(tu_join(nope, fx->dir, "nope")));
}

static void test_directory_at_path(void **state)
{
    struct tu_fixture *fx = *state;
    assert_int_equal(mkdir(fx->path, 0755), 0);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    visits_counter *c = (visits_counter *)fx;
    assert_int_equal(visits_open(fx->path, NULL, &c), VISITS_ENOTREG);
    assert_null(c);
    uint64_t v;
    assert_int_equal(visits_read_file(fx->path, &v, NULL), VISITS_ENOTREG);
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    assert_true(S_ISDIR(after.st_mode));
    tu_assert_no_temps(fx->dir);
}

struct fifo_arg {
    const char *path;
    int use_read_file;
};

static int open_fifo_child(void *p)
{
    struct fifo_arg *a = p;
    if (a->use_read_file) {
        uint64_t v;
        return visits_read_file(a->path, &v, NULL);
    }
    visits_counter *c = NULL;
    int rc = visits_open(a->path, NULL, &c);
    if (rc == 0)
        visits_close(c);
    return rc;
}

/* A FIFO at the path is refused at once: opening it for reading must not wait for a
 * writer. Runs in a child so that a hang fails the test instead of blocking it. */
static void test_fifo_at_path_does_not_hang(void **state)
{
    struct tu_fixture *fx = *state;
    assert_int_equal(mkfifo(fx->path, 0644), 0);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    for (int use_read_file = 0; use_read_file <= 1; use_read_file++) {
        struct fifo_arg a = {fx->path, use_read_file};
        int result = 0;
        assert_int_equal(tu_run_child(open_fifo_child, &a, 5000, &result), 0);
        assert_int_equal(result, VISITS_ENOTREG);
    }
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    assert_true(S_ISFIFO(after.st_mode));
    tu_assert_no_temps(fx->dir);
}

static void test_uint64_max_accepted_then_overflow(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "18446744073709551615\n", 21, 0644);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    v = 5;
    assert_int_equal(visits_incr(c, &v), VISITS_EOVERFLOW);
    assert_int_equal(visits_add(c, UINT64_MAX, &v), VISITS_EOVERFLOW);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    /* the handle is not failed by an overflow */
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_overflow_partway(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "18446744073709551610\n", 21, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 6, &v), VISITS_EOVERFLOW);
    tu_assert_file_str(fx->path, "18446744073709551610\n");
    assert_int_equal(visits_add(c, 5, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

static void test_read_file_valid_missing_corrupt(void **state)
{
    struct tu_fixture *fx = *state;
    uint64_t v = 0;
    int exists = 0;
    tu_write_file(fx->path, "123\n", 4, 0644);
    assert_int_equal(visits_read_file(fx->path, &v, &exists), 0);
    assert_int_equal(v, 123);
    assert_int_equal(exists, 1);
    /* reading takes no lock and writes nothing: no lock file, no temp */
    char lock[TU_PATH_MAX];
    assert_false(tu_exists(tu_join(lock, fx->dir, ".visits.lock")));
    tu_assert_no_temps(fx->dir);

    tu_write_file(fx->path, "12 3\n", 5, 0644);
    assert_int_equal(visits_read_file(fx->path, &v, &exists), VISITS_ECORRUPT);
    tu_assert_file_str(fx->path, "12 3\n");

    assert_int_equal(unlink(fx->path), 0);
    v = 5;
    exists = 1;
    assert_int_equal(visits_read_file(fx->path, &v, &exists), 0);
    assert_int_equal(v, 0);
    assert_int_equal(exists, 0);
    assert_false(tu_exists(fx->path));
}

struct ro_arg {
    const char *dir;
    const char *path;
};

/* As nobody, in a directory owned by root: reading works, opening (which needs the lock
 * file) fails with -EACCES. Result: 0 on the expected outcome, else a distinct code. */
static int nobody_child(void *p)
{
    struct ro_arg *a = p;
    if (tu_drop_privileges() != 0)
        return 1;
    uint64_t v = 0;
    int exists = 0;
    if (visits_read_file(a->path, &v, &exists) != 0 || v != 5 || exists != 1)
        return 2;
    visits_counter *c = NULL;
    int rc = visits_open(a->path, NULL, &c);
    if (rc != -EACCES || c != NULL)
        return 3;
    rc = visits_set_file(a->path, 9, NULL, NULL);
    if (rc != -EACCES)
        return 4;
    return 0;
}

static void test_unwritable_directory(void **state)
{
    struct tu_fixture *fx = *state;
    assert_int_equal(chmod(fx->dir, 0755), 0);
    tu_write_file(fx->path, "5\n", 2, 0666);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    struct ro_arg a = {fx->dir, fx->path};
    int result = -1;
    assert_int_equal(tu_run_child(nobody_child, &a, 10000, &result), 0);
    assert_int_equal(result, 0);
    tu_assert_file_str(fx->path, "5\n");
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    tu_assert_no_temps(fx->dir);
}

static void test_set_file_missing(void **state)
{
    struct tu_fixture *fx = *state;
    visits_prev prev;
    memset(&prev, 0x5a, sizeof prev);
    assert_int_equal(visits_set_file(fx->path, 17, NULL, &prev), 0);
    assert_int_equal(prev.state, -ENOENT);
    tu_assert_file_str(fx->path, "17\n");
    tu_assert_no_temps(fx->dir);
}

static void test_set_file_valid(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0640);
    visits_prev prev;
    memset(&prev, 0x5a, sizeof prev);
    assert_int_equal(visits_set_file(fx->path, 0, NULL, &prev), 0);
    assert_int_equal(prev.state, 0);
    assert_int_equal(prev.value, 41);
    tu_assert_file_str(fx->path, "0\n");
    struct stat st;
    tu_lstat(fx->path, &st);
    assert_int_equal(st.st_mode & 07777, 0640); /* an existing file keeps its mode */
    /* prev is nullable */
    assert_int_equal(visits_set_file(fx->path, UINT64_MAX, NULL, NULL), 0);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    tu_assert_no_temps(fx->dir);
}

static void test_set_file_replaces_corrupt(void **state)
{
    struct tu_fixture *fx = *state;
    for (size_t i = 0; i < sizeof corrupt_cases / sizeof corrupt_cases[0]; i++) {
        const struct corrupt_case *k = &corrupt_cases[i];
        tu_write_file(fx->path, k->bytes, k->len, 0644);
        visits_prev prev;
        memset(&prev, 0x5a, sizeof prev);
        int rc = visits_set_file(fx->path, i, NULL, &prev);
        if (rc != 0)
            fail_msg("%s: visits_set_file = %d", k->name, rc);
        assert_int_equal(prev.state, VISITS_ECORRUPT);
        size_t want = k->len < VISITS_MAX_FILE_SIZE ? k->len : VISITS_MAX_FILE_SIZE;
        assert_int_equal(prev.len, want);
        assert_memory_equal(prev.bytes, k->bytes, want);
        char expect[32];
        snprintf(expect, sizeof expect, "%zu\n", i);
        tu_assert_file_str(fx->path, expect);
        tu_assert_no_temps(fx->dir);
    }
    /* a long file: the first 32 bytes are reported */
    char *buf = long_file(1000);
    tu_write_file(fx->path, buf, 1000, 0644);
    visits_prev prev;
    assert_int_equal(visits_set_file(fx->path, 3, NULL, &prev), 0);
    assert_int_equal(prev.state, VISITS_ECORRUPT);
    assert_int_equal(prev.len, VISITS_MAX_FILE_SIZE);
    assert_memory_equal(prev.bytes, buf, VISITS_MAX_FILE_SIZE);
    free(buf);
    tu_assert_file_str(fx->path, "3\n");
    tu_assert_no_temps(fx->dir);
}

static void test_set_file_directory_refused(void **state)
{
    struct tu_fixture *fx = *state;
    assert_int_equal(mkdir(fx->path, 0755), 0);
    tu_age(fx->path);
    struct stat before, after;
    tu_lstat(fx->path, &before);
    assert_int_equal(visits_set_file(fx->path, 1, NULL, NULL), VISITS_ENOTREG);
    tu_lstat(fx->path, &after);
    tu_assert_same_stat(&before, &after);
    tu_assert_no_temps(fx->dir);
}

static void test_set_file_missing_parent(void **state)
{
    struct tu_fixture *fx = *state;
    char path[TU_PATH_MAX];
    tu_join(path, fx->dir, "nope/visits");
    assert_int_equal(visits_set_file(path, 1, NULL, NULL), VISITS_ENODIR);
    char nope[TU_PATH_MAX];
    assert_false(tu_exists(tu_join(nope, fx->dir, "nope")));
}

/* The operator lowers a counter that stood at UINT64_MAX: an open handle's next
 * increment builds on the new value (no stale overflow refusal). */
static void test_set_file_lowers_value_under_open_handle(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "18446744073709551615\n", 21, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), VISITS_EOVERFLOW);
    assert_int_equal(visits_set_file(fx->path, 5, NULL, NULL), 0);
    int rc = visits_incr(c, &v);
    if (rc != 0)
        fail_msg("after visits_set_file(5), visits_incr on the open handle = %d (%s), "
                 "expected 0 and 6",
                 rc, visits_strerror(rc));
    assert_int_equal(v, 6);
    tu_assert_file_str(fx->path, "6\n");
    assert_int_equal(visits_close(c), 0);
}

/* Every path, successful or not, closes what it opened. */
static void test_no_fd_leaks(void **state)
{
    struct tu_fixture *fx = *state;
    char corrupt[TU_PATH_MAX], dir[TU_PATH_MAX], nodir[TU_PATH_MAX];
    tu_join(corrupt, fx->dir, "corrupt");
    tu_write_file(corrupt, "x\n", 2, 0644);
    tu_join(dir, fx->dir, "dir");
    assert_int_equal(mkdir(dir, 0755), 0);
    tu_join(nodir, fx->dir, "nodir/visits");
    int before = tu_count_fds();
    for (int i = 0; i < 20; i++) {
        visits_counter *c = NULL;
        assert_int_equal(visits_open(fx->path, NULL, &c), 0);
        assert_int_equal(visits_incr(c, NULL), 0);
        uint64_t v;
        assert_int_equal(visits_read(c, &v), 0);
        assert_int_equal(visits_close(c), 0);
        assert_int_equal(visits_open(corrupt, NULL, &c), VISITS_ECORRUPT);
        assert_int_equal(visits_open(dir, NULL, &c), VISITS_ENOTREG);
        assert_int_equal(visits_open(nodir, NULL, &c), VISITS_ENODIR);
        assert_int_equal(visits_read_file(fx->path, &v, NULL), 0);
        assert_int_equal(visits_read_file(corrupt, &v, NULL), VISITS_ECORRUPT);
        assert_int_equal(visits_set_file(fx->path, 0, NULL, NULL), 0);
        assert_int_equal(visits_set_file(dir, 0, NULL, NULL), VISITS_ENOTREG);
    }
    assert_int_equal(tu_count_fds(), before);
}

/* Two handles in one process on one file see each other's increments. */
static void test_two_handles_share_file(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *a = NULL, *b = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &a), 0);
    assert_int_equal(visits_open(fx->path, NULL, &b), 0);
    uint64_t v = 0;
    assert_int_equal(visits_incr(a, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(visits_read(b, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(visits_incr(b, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(visits_add(a, 10, &v), 0);
    assert_int_equal(v, 12);
    tu_assert_file_str(fx->path, "12\n");
    assert_int_equal(visits_close(a), 0);
    assert_int_equal(visits_close(b), 0);
    tu_assert_file_str(fx->path, "12\n");
    tu_assert_no_temps(fx->dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_corrupt_files_refused_untouched),
        TU_TEST(test_corrupted_while_open),
        TU_TEST(test_value_without_newline_accepted),
        TU_TEST(test_missing_file_reads_zero),
        TU_TEST(test_missing_parent_dir),
        TU_TEST(test_directory_at_path),
        TU_TEST(test_fifo_at_path_does_not_hang),
        TU_TEST(test_uint64_max_accepted_then_overflow),
        TU_TEST(test_overflow_partway),
        TU_TEST(test_read_file_valid_missing_corrupt),
        TU_TEST(test_unwritable_directory),
        TU_TEST(test_set_file_missing),
        TU_TEST(test_set_file_valid),
        TU_TEST(test_set_file_replaces_corrupt),
        TU_TEST(test_set_file_directory_refused),
        TU_TEST(test_set_file_missing_parent),
        TU_TEST(test_set_file_lowers_value_under_open_handle),
        TU_TEST(test_two_handles_share_file),
        TU_TEST(test_no_fd_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
