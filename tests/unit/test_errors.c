/*
 * test_errors.c: errors.c and the small API surface: visits_strerror() for every code,
 * the version functions, visits_options_init(), argument checks, visits_close(NULL).
 */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void test_strerror_library_codes(void **state)
{
    (void)state;
    /* The table in visits.h gives each code and its exact text. */
#define CHECK_CODE(name, value, msg)                                                               \
    assert_int_equal(VISITS_##name, value);                                                        \
    assert_non_null(visits_strerror(VISITS_##name));                                               \
    assert_string_equal(visits_strerror(VISITS_##name), msg);
    VISITS_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
}

/* Library codes never collide with -errno values (errno values are small positive). */
static void test_codes_do_not_collide_with_errno(void **state)
{
    (void)state;
#define CHECK_RANGE(name, value, msg) assert_true(-(value) > 4095);
    VISITS_ERRNO_MAP(CHECK_RANGE)
#undef CHECK_RANGE
}

static void test_strerror_errno_codes(void **state)
{
    (void)state;
    static const int errs[] = {EPERM, ENOENT,  EINTR,        EIO,    EBADF,  EACCES, EEXIST,
                               EXDEV, ENOTDIR, EISDIR,       EINVAL, ENFILE, EMFILE, ENOSPC,
                               EROFS, ELOOP,   ENAMETOOLONG, EDQUOT, ESTALE, EAGAIN};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *s = visits_strerror(-errs[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        /* the reason a user reads must be the system's one, not a generic text */
        assert_string_not_equal(s, "unknown error");
    }
    for (int e = 1; e < 200; e++) {
        const char *s = visits_strerror(-e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
    }
    assert_string_not_equal(visits_strerror(-ENOSPC), visits_strerror(-EIO));
}

static void test_strerror_unknown_codes(void **state)
{
    (void)state;
    /* unassigned codes in and around the library's range */
    static const int unknown[] = {-20000, -20010, -20011, -20100, -29999};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = visits_strerror(unknown[i]);
        assert_non_null(s);
        assert_string_equal(s, "unknown error");
    }
    /* anything else: never NULL, never a crash (INT_MIN cannot be negated) */
    static const int odd[] = {0,           1,     2,     20001,   INT_MAX, INT_MIN,
                              INT_MIN + 1, -4096, -4097, -100000, -1000000};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = visits_strerror(odd[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
    }
    /* static: the same pointer every time */
    assert_ptr_equal(visits_strerror(VISITS_ECORRUPT), visits_strerror(VISITS_ECORRUPT));
}

/* Names are stable: metric labels and log fields use them. */
static void test_err_name(void **state)
{
    (void)state;
#define CHECK_NAME(name, value, msg) assert_string_equal(visits_err_name(VISITS_##name), #name);
    VISITS_ERRNO_MAP(CHECK_NAME)
#undef CHECK_NAME
    assert_string_equal(visits_err_name(0), "OK");
    assert_string_equal(visits_err_name(-ENOSPC), "ENOSPC");
    assert_string_equal(visits_err_name(-EIO), "EIO");
    assert_string_equal(visits_err_name(-ENOENT), "ENOENT");
    assert_string_equal(visits_err_name(-EACCES), "EACCES");
    assert_string_equal(visits_err_name(-EROFS), "EROFS");
    assert_string_equal(visits_err_name(-EDQUOT), "EDQUOT");
    assert_string_equal(visits_err_name(-EMFILE), "EMFILE");
    static const int odd[] = {1, -20000, -20100, -4096, -100000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_string_equal(visits_err_name(odd[i]), "EUNKNOWN");
    for (int e = 1; e < 200; e++)
        assert_non_null(visits_err_name(-e));
    /* what a user reads for the common failures is the usual text */
    assert_string_equal(visits_strerror(-ENOSPC), "No space left on device");
    assert_string_equal(visits_strerror(-ENOENT), "No such file or directory");
}

/* The options and stats structures grow: a caller built against an older, smaller
 * structure gets only what it knows, and nothing is written past its end. */
static void test_sized_structures(void **state)
{
    struct tu_fixture *fx = *state;
    unsigned char buf[sizeof(visits_options) + 16];
    memset(buf, 0x5a, sizeof buf);
    size_t old = offsetof(visits_options, gather_us); /* a 0.2-era caller without gather_us */
    visits_options_init_sized((visits_options *)buf, old);
    for (size_t i = old; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0x5a);
    visits_options o;
    memcpy(&o, buf, sizeof o);
    assert_int_equal(o.size, old);
    assert_int_equal(o.mode, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, &o, &c), 0);
    visits_stats st;
    memset(&st, 0x5a, sizeof st);
    size_t small = offsetof(visits_stats, failed_error);
    assert_int_equal(visits_get_stats_sized(c, &st, small), 0);
    assert_int_equal(st.cycles, 0);
    assert_int_equal(((unsigned char *)&st)[small], 0x5a);
    assert_int_equal(visits_close(c), 0);
    /* options never filled by visits_options_init are refused */
    memset(&o, 0, sizeof o);
    c = (visits_counter *)&o;
    assert_int_equal(visits_open(fx->path, &o, &c), VISITS_EINVAL);
    assert_null(c);
    visits_options_init(&o);
    o.gather_us = 100001;
    assert_int_equal(visits_open(fx->path, &o, &c), VISITS_EINVAL);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(visits_version(), VISITS_VERSION_NUMBER);
    assert_non_null(visits_version_string());
    assert_string_equal(visits_version_string(), VISITS_VERSION_STRING);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", VISITS_VERSION_MAJOR, VISITS_VERSION_MINOR,
             VISITS_VERSION_PATCH);
    assert_string_equal(buf, VISITS_VERSION_STRING);
    assert_int_equal(VISITS_VERSION_NUMBER, VISITS_VERSION_MAJOR * 10000 +
                                                VISITS_VERSION_MINOR * 100 + VISITS_VERSION_PATCH);
}

static void test_options_init(void **state)
{
    (void)state;
    visits_options o;
    memset(&o, 0x5a, sizeof o);
    visits_options_init(&o);
    assert_int_equal(o.sync, VISITS_SYNC_ALWAYS);
    assert_int_equal(o.interval_ms, 1000);
    assert_int_equal(o.mode, 0644);
}

static void test_close_null(void **state)
{
    (void)state;
    assert_int_equal(visits_close(NULL), 0);
}

static void test_open_bad_options(void **state)
{
    struct tu_fixture *fx = *state;
    static const unsigned bad_interval[] = {0, 3600001, UINT_MAX};
    for (size_t i = 0; i < sizeof bad_interval / sizeof bad_interval[0]; i++) {
        visits_options o;
        visits_options_init(&o);
        o.sync = VISITS_SYNC_INTERVAL;
        o.interval_ms = bad_interval[i];
        visits_counter *c = (visits_counter *)&o; /* must be reset to NULL */
        assert_int_equal(visits_open(fx->path, &o, &c), VISITS_EINVAL);
        assert_null(c);
    }
    visits_options o;
    visits_options_init(&o);
    o.sync = (visits_sync_mode)7;
    visits_counter *c = (visits_counter *)&o;
    assert_int_equal(visits_open(fx->path, &o, &c), VISITS_EINVAL);
    assert_null(c);
    /* the bounds themselves are valid */
    static const unsigned good_interval[] = {1, 3600000};
    for (size_t i = 0; i < sizeof good_interval / sizeof good_interval[0]; i++) {
        visits_options_init(&o);
        o.sync = VISITS_SYNC_INTERVAL;
        o.interval_ms = good_interval[i];
        c = NULL;
        assert_int_equal(visits_open(fx->path, &o, &c), 0);
        assert_non_null(c);
        assert_int_equal(visits_close(c), 0);
    }
    /* nothing was written by any of these */
    assert_false(tu_exists(fx->path));
    tu_assert_no_temps(fx->dir);
}

static void test_open_bad_arguments(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(NULL, NULL, &c), VISITS_EINVAL);
    assert_null(c);
    assert_int_equal(visits_open(fx->path, NULL, NULL), VISITS_EINVAL);
    int rc = visits_open("", NULL, &c);
    assert_true(rc < 0);
    assert_null(c);
    uint64_t v;
    assert_int_equal(visits_parse(NULL, 1, &v), VISITS_EINVAL);
    assert_int_equal(visits_parse("1", 1, NULL), VISITS_EINVAL);
    assert_int_equal(visits_read_file(NULL, &v, NULL), VISITS_EINVAL);
    assert_int_equal(visits_read_file(fx->path, NULL, NULL), VISITS_EINVAL);
    assert_int_equal(visits_set_file(NULL, 1, NULL, NULL), VISITS_EINVAL);
    assert_false(tu_exists(fx->path));
}

static void test_path_is_kept(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    char given[TU_PATH_MAX];
    snprintf(given, sizeof given, "%s", fx->path);
    assert_int_equal(visits_open(given, NULL, &c), 0);
    memset(given, 'x', strlen(given)); /* the handle owns its own copy */
    assert_string_equal(visits_path(c), fx->path);
    assert_int_equal(visits_close(c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_library_codes),
        cmocka_unit_test(test_codes_do_not_collide_with_errno),
        cmocka_unit_test(test_strerror_errno_codes),
        cmocka_unit_test(test_strerror_unknown_codes),
        cmocka_unit_test(test_err_name),
        TU_TEST(test_sized_structures),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_options_init),
        cmocka_unit_test(test_close_null),
        TU_TEST(test_open_bad_options),
        TU_TEST(test_open_bad_arguments),
        TU_TEST(test_path_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
