/*
 * test_parse.c: the file format (parse.c). visits_parse() on every valid and corrupt
 * shape, and the bytes the library writes for a value ("N\n").
 */
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Parses exactly len bytes placed at the very end of a readable page followed by an
 * inaccessible one, so a read past len faults even without ASan. */
static int parse_guarded(const char *bytes, size_t len, uint64_t *out)
{
    long page = sysconf(_SC_PAGESIZE);
    assert_true(page > 0 && len <= (size_t)page);
    char *map =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    char *buf = map + page - len;
    if (len > 0)
        memcpy(buf, bytes, len);
    int rc = visits_parse(buf, len, out);
    munmap(map, 2 * (size_t)page);
    return rc;
}

struct good {
    const char *text;
    size_t len;
    uint64_t value;
};

#define GOOD(s, v)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, v                                                                        \
    }

static void test_parse_accepts(void **state)
{
    (void)state;
    static const struct good cases[] = {
        GOOD("0", 0),
        GOOD("0\n", 0),
        GOOD("1", 1),
        GOOD("1\n", 1),
        GOOD("9\n", 9),
        GOOD("10\n", 10),
        GOOD("42", 42),
        GOOD("1234567890\n", 1234567890u),
        GOOD("4294967296\n", 4294967296u),
        GOOD("9999999999999999999\n", UINT64_C(9999999999999999999)),
        GOOD("10000000000000000000\n", UINT64_C(10000000000000000000)),
        GOOD("18446744073709551609\n", UINT64_MAX - 6),
        GOOD("18446744073709551614", UINT64_MAX - 1),
        GOOD("18446744073709551615", UINT64_MAX),
        GOOD("18446744073709551615\n", UINT64_MAX),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 12345;
        int rc = parse_guarded(cases[i].text, cases[i].len, &v);
        if (rc != 0 || v != cases[i].value)
            fail_msg("parse(\"%.*s\") = %d, %" PRIu64 "; expected 0, %" PRIu64, (int)cases[i].len,
                     cases[i].text, rc, v, cases[i].value);
    }
}

struct bad {
    const char *text;
    size_t len;
};

#define BAD(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

static void test_parse_rejects(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        BAD(""),
        BAD("\n"),
        BAD("\n\n"),
        BAD("+1"),
        BAD("+1\n"),
        BAD("-1"),
        BAD("-0\n"),
        BAD(" 1"),
        BAD("1 "),
        BAD("1 \n"),
        BAD("\t1\n"),
        BAD("1\n\n"),
        BAD("1\r\n"),
        BAD("1\r"),
        BAD("\n1"),
        BAD("1\n2"),
        BAD("12a"),
        BAD("a12"),
        BAD("abc"),
        BAD("0x10"),
        BAD("1e3"),
        BAD("1.0"),
        BAD("1,000"),
        BAD("\0"),
        BAD("1\0"),
        BAD("\0"
            "1"),
        BAD("1\0\n"),
        BAD("01"),
        BAD("01\n"),
        BAD("00"),
        BAD("00\n"),
        BAD("007"),
        BAD("018446744073709551615"),
        BAD("18446744073709551616"),
        BAD("18446744073709551616\n"),
        BAD("18446744073709551620"),
        BAD("18446744073709551700"),
        BAD("19000000000000000000"),
        BAD("20000000000000000000"),
        BAD("99999999999999999999"),
        BAD("36893488147419103231"), /* 2^65 - 1: wraps to UINT64_MAX if unchecked */
        BAD("36893488147419103232"), /* 2^65: wraps to 0 */
        BAD("100000000000000000000"),
        BAD("184467440737095516150"),
        BAD("111111111111111111111111111111111"),
        BAD("1111111111111111111111111111111111111111111111111111111111111111\n"),
        BAD("\xff"),
        BAD("\xd9\xa1"),     /* Arabic-Indic digit one */
        BAD("\xef\xbc\x91"), /* fullwidth digit one */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        int rc = parse_guarded(cases[i].text, cases[i].len, &v);
        if (rc != VISITS_ECORRUPT)
            fail_msg("case %zu: parse of %zu bytes \"%.*s\" = %d (value %" PRIu64
                     "); expected VISITS_ECORRUPT",
                     i, cases[i].len, (int)cases[i].len, cases[i].text, rc, v);
    }
}

/* Only len bytes count: what follows them in memory is ignored. */
static void test_parse_honours_len(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(visits_parse("123", 2, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(visits_parse("7\nxyz", 2, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(visits_parse("5abc", 1, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(visits_parse("01", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(visits_parse("1", 0, &v), VISITS_ECORRUPT);
    assert_int_equal(visits_parse("184467440737095516159", 20, &v), 0);
    assert_int_equal(v, UINT64_MAX);
}

/* Every value near a power of ten or of two, and random ones, survives
 * printf -> parse with and without the newline; one more digit overflows or is rejected. */
static void check_roundtrip(uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", v);
    uint64_t got = ~v;
    assert_int_equal(parse_guarded(buf, (size_t)n, &got), 0);
    assert_int_equal(got, v);
    got = ~v;
    assert_int_equal(parse_guarded(buf, (size_t)n - 1, &got), 0);
    assert_int_equal(got, v);
    /* appending a digit multiplies by ten: valid only without overflow ("07" is a
     * leading zero) */
    buf[n - 1] = '7';
    int rc = parse_guarded(buf, (size_t)n, &got);
    if (v != 0 && v <= (UINT64_MAX - 7) / 10) {
        assert_int_equal(rc, 0);
        assert_int_equal(got, v * 10 + 7);
    } else {
        assert_int_equal(rc, VISITS_ECORRUPT);
    }
}

static void test_parse_roundtrip(void **state)
{
    (void)state;
    uint64_t p = 1;
    for (int i = 0; i < 20; i++) {
        check_roundtrip(p - 1);
        check_roundtrip(p);
        check_roundtrip(p + 1);
        if (i < 19)
            p *= 10;
    }
    for (int b = 0; b < 64; b++) {
        uint64_t x = UINT64_C(1) << b;
        check_roundtrip(x - 1);
        check_roundtrip(x);
        check_roundtrip(x + 1);
    }
    check_roundtrip(UINT64_MAX);
    check_roundtrip(UINT64_MAX - 1);
    check_roundtrip(UINT64_MAX / 10);
    check_roundtrip(UINT64_MAX / 10 + 1);
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_roundtrip(x >> (i % 64));
    }
}

/* The bytes on disk: "N\n", for a value set by the operator command and after increments. */
static void test_format_on_disk(void **state)
{
    struct tu_fixture *fx = *state;
    static const struct {
        uint64_t value;
        const char *bytes;
    } cases[] = {
        {0, "0\n"},
        {1, "1\n"},
        {9, "9\n"},
        {10, "10\n"},
        {100, "100\n"},
        {4294967295u, "4294967295\n"},
        {UINT64_C(10000000000000000000), "10000000000000000000\n"},
        {UINT64_MAX - 1, "18446744073709551614\n"},
        {UINT64_MAX, "18446744073709551615\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(visits_set_file(fx->path, cases[i].value, NULL, NULL), 0);
        tu_assert_file_str(fx->path, cases[i].bytes);
        uint64_t v = 1;
        int exists = 0;
        assert_int_equal(visits_read_file(fx->path, &v, &exists), 0);
        assert_int_equal(v, cases[i].value);
        assert_int_equal(exists, 1);
    }
    tu_assert_no_temps(fx->dir);
}

static void test_format_after_increments(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    char expect[32];
    for (uint64_t i = 1; i <= 12; i++) {
        uint64_t v = 0;
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, i);
        snprintf(expect, sizeof expect, "%" PRIu64 "\n", i);
        tu_assert_file_str(fx->path, expect);
    }
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 988, &v), 0);
    assert_int_equal(v, 1000);
    tu_assert_file_str(fx->path, "1000\n");
    assert_int_equal(visits_add(c, UINT64_MAX - 1001, &v), 0);
    assert_int_equal(v, UINT64_MAX - 1);
    tu_assert_file_str(fx->path, "18446744073709551614\n");
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    tu_assert_no_temps(fx->dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_honours_len),
        cmocka_unit_test(test_parse_roundtrip),
        TU_TEST(test_format_on_disk),
        TU_TEST(test_format_after_increments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
