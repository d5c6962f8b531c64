/*
 * test_text.c: visits-server's escaper of JSON log lines (adapters/h2o/text.c):
 * format_json_utf8, utf8_cut and format_utc_seconds; and the responses' escapers built on
 * it (strbuf_json, strbuf_html) with the pod name's check (utf8_printable).
 *
 * The escaper is compared byte for byte with a reference written differently: it splits
 * the input by the rows of the Unicode Standard's table of well-formed UTF-8 byte sequences
 * (Table 3-7), an ill-formed part being the longest prefix of some row (a "maximal
 * subpart", U+FFFD each), for every input of 1 and 2 bytes and for every 3- and 4-byte
 * input over the bytes at the edges of those rows. Each input sits at the very end of a
 * readable page, so a read past it faults. The output is also checked on its own: valid
 * UTF-8, no control character, no raw U+2028/U+2029, only JSON's escapes.
 */
#include "text.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the reference ------------------------------------------------------------------ */

/* Table 3-7: the byte ranges of each well-formed sequence, lead byte first. */
static const struct row {
    int n;
    unsigned char lo[4], hi[4];
} rows[] = {
    {1, {0x00}, {0x7f}},
    {2, {0xc2, 0x80}, {0xdf, 0xbf}},
    {3, {0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}},
    {3, {0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}},
    {3, {0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}},
    {3, {0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}},
    {4, {0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}},
    {4, {0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}},
    {4, {0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}},
};

/* The unit at s: its length; *ok says whether it is a well-formed character. */
static size_t ref_unit(const unsigned char *s, size_t len, int *ok)
{
    size_t best = 0;
    *ok = 0;
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        size_t k = 0;
        while (k < (size_t)rows[r].n && k < len && s[k] >= rows[r].lo[k] && s[k] <= rows[r].hi[k])
            k++;
        if (k == (size_t)rows[r].n) {
            *ok = 1;
            return k;
        }
        if (k > best)
            best = k;
    }
    return best > 0 ? best : 1;
}

static uint32_t decode(const unsigned char *s, size_t n)
{
    static const unsigned char mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = s[0] & mask[n];
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    return cp;
}

/* What format_json_utf8 should write for s (unlimited room); its length. */
static size_t reference(char *out, const unsigned char *s, size_t len)
{
    char *p = out;
    for (size_t i = 0; i < len;) {
        int ok;
        size_t n = ref_unit(s + i, len - i, &ok);
        uint32_t cp = ok ? decode(s + i, n) : 0xfffd;
        if (cp == '"' || cp == '\\')
            p += sprintf(p, "\\%c", (char)cp);
        else if (cp == '\n')
            p += sprintf(p, "\\n");
        else if (cp == '\r')
            p += sprintf(p, "\\r");
        else if (cp == '\t')
            p += sprintf(p, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || !ok)
            p += sprintf(p, "\\u%04x", (unsigned)cp);
        else {
            memcpy(p, s + i, n);
            p += n;
        }
        i += n;
    }
    return (size_t)(p - out);
}

/* ---- checks of the output on its own --------------------------------------------------- */

static void assert_json_string_inside(const char *out, size_t len)
{
    const unsigned char *u = (const unsigned char *)out;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        assert_true(c >= 0x20 && c != 0x7f && c != '"'); /* no raw control, no bare quote */
        if (c == '\\') {
            assert_true(i + 1 < len);
            char e = out[i + 1];
            if (e == 'u') {
                assert_true(i + 6 <= len);
                for (int k = 2; k < 6; k++)
                    assert_non_null(strchr("0123456789abcdef", out[i + k]));
                i += 6;
            } else {
                assert_non_null(strchr("\"\\nrt", e));
                i += 2;
            }
            continue;
        }
        int ok;
        size_t n = ref_unit(u + i, len - i, &ok);
        assert_true(ok); /* valid UTF-8 */
        uint32_t cp = decode(u + i, n);
        assert_false((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029);
        i += n;
    }
}

/* ---- inputs at the end of a page ---------------------------------------------------- */

static char *page_end; /* the first byte of the inaccessible page */

static int setup(void **state)
{
    (void)state;
    long page = sysconf(_SC_PAGESIZE);
    char *map =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + page, (size_t)page, PROT_NONE) != 0)
        return -1;
    page_end = map + page;
    return 0;
}

static const char *guarded(const unsigned char *bytes, size_t len)
{
    memcpy(page_end - len, bytes, len);
    return page_end - len;
}

/* format_json_utf8 on s against the reference, and (if rooms) against itself with less
 * room. */
static void check(const unsigned char *s, size_t len, int rooms)
{
    char want[64], got[64], cut[64];
    size_t wlen = reference(want, s, len), used = 99;
    const char *in = guarded(s, len);
    char *end = format_json_utf8(got, got + sizeof(got), in, len, &used);
    size_t glen = (size_t)(end - got);
    if (glen != wlen || memcmp(got, want, wlen) != 0 || used != len) {
        char shown[64];
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            k += (size_t)snprintf(shown + k, sizeof(shown) - k, "%02x ", s[i]);
        fail_msg("input %s: wrote \"%.*s\" (%zu bytes, %zu used), expected \"%.*s\"", shown,
                 (int)glen, got, glen, used, (int)wlen, want);
    }
    assert_json_string_inside(got, glen);
    /* With room for fewer bytes: a prefix that ends where a unit ends, never a part of one. */
    for (size_t room = 0; rooms && room < glen; room++) {
        end = format_json_utf8(cut, cut + room, in, len, &used);
        size_t clen = (size_t)(end - cut);
        assert_true(clen <= room && used < len);
        assert_memory_equal(cut, want, clen);
        char again[64];
        assert_int_equal(reference(again, s, used), clen); /* exactly the units of s[0..used) */
    }
}

static const unsigned char edges[] = {
    0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x22, 0x41, 0x5c, 0x7e, 0x7f, 0x80, 0x81,
    0x85, 0x8f, 0x90, 0x9f, 0xa0, 0xa8, 0xa9, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xdf, 0xe0,
    0xe1, 0xe2, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xff};
#define NEDGES (sizeof(edges) / sizeof(edges[0]))
/* Fewer, for the longer inputs: the continuation bytes' edges and a few others. */
static const unsigned char tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                      0xa0, 0xbf, 0xc0, 0xc2, 0xe2, 0xf0, 0xff};
#define NTAILS (sizeof(tails) / sizeof(tails[0]))

static void test_every_one_and_two_byte_input(void **state)
{
    (void)state;
    check((const unsigned char *)"", 0, 1);
    for (unsigned a = 0; a < 256; a++) {
        unsigned char s[2] = {(unsigned char)a};
        check(s, 1, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check(s, 2, 1);
        }
    }
}

static void test_three_and_four_byte_inputs_at_the_edges(void **state)
{
    (void)state;
    for (size_t a = 0; a < NEDGES; a++) {
        for (size_t b = 0; b < NEDGES; b++)
            for (size_t c = 0; c < NEDGES; c++) {
                unsigned char s[3] = {edges[a], edges[b], edges[c]};
                check(s, 3, 1);
            }
        for (size_t b = 0; b < NTAILS; b++)
            for (size_t c = 0; c < NTAILS; c++)
                for (size_t d = 0; d < NTAILS; d++) {
                    unsigned char s[4] = {edges[a], tails[b], tails[c], tails[d]};
                    check(s, 4, 0);
                }
    }
}

static void test_known_lines(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"GET /caf\xc3\xa9?q=\"x\"\\", "GET /caf\xc3\xa9?q=\\\"x\\\"\\\\"},
        {"a\xe2\x82(b", "a\\ufffd(b"},             /* one maximal subpart */
        {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"}, /* a surrogate: 3 */
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},  /* U+1F600 as it is */
        {"\xe2\x80\xa8\xc2\x85\x7f\x1b", "\\u2028\\u0085\\u007f\\u001b"},
        {"line\nbreak\r\ttab", "line\\nbreak\\r\\ttab"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[128];
        size_t len = strlen(cases[i].in);
        char *end = format_json_utf8(got, got + sizeof(got), cases[i].in, len, NULL);
        assert_int_equal((size_t)(end - got), strlen(cases[i].out));
        assert_memory_equal(got, cases[i].out, strlen(cases[i].out));
    }
    /* a NUL in the input is a character like another */
    char got[16];
    char *end = format_json_utf8(got, got + sizeof(got), "a\0b", 3, NULL);
    assert_int_equal(end - got, 8);
    assert_memory_equal(got, "a\\u0000b", 8);
}

static void test_utf8_cut_never_splits_a_character(void **state)
{
    (void)state;
    /* 4-byte inputs over the edges between two ASCII bytes, cut at every length. */
    for (size_t a = 0; a < NEDGES; a++)
        for (size_t b = 0; b < NTAILS; b++)
            for (size_t c = 0; c < NTAILS; c++)
                for (size_t d = 0; d < NTAILS; d++) {
                    unsigned char s[6] = {0x41, edges[a], tails[b], tails[c], tails[d], 0x41};
                    const char *in = guarded(s, sizeof(s));
                    for (size_t max = 0; max <= sizeof(s); max++) {
                        size_t want = max;
                        for (size_t i = 0; i < sizeof(s);) { /* the unit holding byte max */
                            int ok;
                            size_t n = ref_unit(s + i, sizeof(s) - i, &ok);
                            if (ok && i < max && max < i + n)
                                want = i;
                            i += n;
                        }
                        assert_int_equal(utf8_cut(in, sizeof(s), max), want);
                    }
                }
    assert_int_equal(utf8_cut("abc", 3, 10), 3);
}

static void test_utc_seconds(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *s;
    } cases[] = {
        {0, "1970-01-01T00:00:00"},
        {951782400, "2000-02-29T00:00:00"},
        {1764563400, "2025-12-01T04:30:00"},
        {4102444799, "2099-12-31T23:59:59"},
        {253402300799, "9999-12-31T23:59:59"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        char *end = format_utc_seconds(buf, cases[i].t);
        assert_int_equal(end - buf, 19);
        assert_memory_equal(buf, cases[i].s, 19);
    }
}

/* The responses' escapers and the pod name's check share the log lines' UTF-8 rules. */
static void test_response_escapers_and_utf8_printable(void **state)
{
    (void)state;
    static const struct {
        const char *in, *json, *html;
    } cases[] = {
        {"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9"},
        {"caf\xff", "caf\\ufffd", "caf\xef\xbf\xbd"},
        {"<a href=\"x\">&'", "<a href=\\\"x\\\">&'", "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"},
        {"a\x01"
         "b\x7f",
         "a\\u0001b\\u007f",
         "a\xef\xbf\xbd"
         "b\xef\xbf\xbd"},
        {"\xf0\x9f\x9a\x80\xed\xa0\x80", "\xf0\x9f\x9a\x80\\ufffd\\ufffd\\ufffd",
         "\xf0\x9f\x9a\x80\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf j, h;
        strbuf_init(&j);
        strbuf_init(&h);
        strbuf_json(&j, cases[i].in, strlen(cases[i].in));
        strbuf_html(&h, cases[i].in, strlen(cases[i].in));
        assert_string_equal(j.data, cases[i].json);
        assert_string_equal(h.data, cases[i].html);
        strbuf_free(&j);
        strbuf_free(&h);
    }
    struct strbuf nul;
    strbuf_init(&nul);
    strbuf_json(&nul, "a\0b", 3);
    assert_string_equal(nul.data, "a\\u0000b");
    strbuf_free(&nul);

    size_t bad = 0;
    int32_t control = 0;
    assert_int_equal(utf8_printable("pod-\xc3\xa9-\xf0\x9f\x9a\x80", 11, &bad, &control), 1);
    assert_int_equal(utf8_printable("caf\xff", 4, &bad, &control), 0);
    assert_int_equal(bad, 3);
    assert_int_equal(control, -1);
    assert_int_equal(utf8_printable("a\xc2\x85", 3, &bad, &control), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(control, 0x85);
    assert_int_equal(utf8_printable("\xc0\xaf", 2, &bad, &control), 0);     /* overlong */
    assert_int_equal(utf8_printable("\xed\xa0\x80", 3, &bad, &control), 0); /* surrogate */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_one_and_two_byte_input),
        cmocka_unit_test(test_three_and_four_byte_inputs_at_the_edges),
        cmocka_unit_test(test_known_lines),
        cmocka_unit_test(test_utf8_cut_never_splits_a_character),
        cmocka_unit_test(test_utc_seconds),
        cmocka_unit_test(test_response_escapers_and_utf8_printable),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
