/*
 * fuzz_parse.c: libFuzzer target for visits_parse().
 *
 * Invariants checked on every input:
 * - the result is 0 or VISITS_ECORRUPT, and it agrees with an independent reference
 *   reading of the format (digits, no leading zero except "0", at most UINT64_MAX,
 *   optionally one "\n");
 * - on success the input is exactly the canonical text of the value ("%" PRIu64 "\n"),
 *   with or without that one trailing newline, and the library's own formatter
 *   (visits__format) produces that canonical text;
 * - the input is never written to, and never read past len (the bytes live in a heap
 *   block of exactly len bytes, so AddressSanitizer reports any read beyond).
 */
#include "visits.h"
#include "visits_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_parse: invariant failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The format as the header states it, written independently of the library. */
static int reference_parse(const uint8_t *p, size_t len, uint64_t *out)
{
    if (len > 0 && p[len - 1] == '\n')
        len--;
    if (len == 0 || len > 20)
        return 0;
    if (p[0] == '0' && len > 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    if (len == 20 && memcmp(p, "18446744073709551615", 20) > 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    *out = v;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly size bytes (ASan's malloc(0) gives a valid zero-byte block) */
    char *buf = malloc(size);
    CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);

    uint64_t value = 0xdeadbeef;
    int rc = visits_parse(buf, size, &value);
    CHECK(rc == 0 || rc == VISITS_ECORRUPT);
    CHECK(size == 0 || memcmp(buf, data, size) == 0);

    uint64_t ref = 0;
    int ref_ok = reference_parse(data, size, &ref);
    CHECK((rc == 0) == ref_ok);

    if (rc == 0) {
        CHECK(value == ref);
        char canon[32];
        int n = snprintf(canon, sizeof canon, "%" PRIu64 "\n", value);
        CHECK(n >= 2 && n <= 21);
        CHECK(size == (size_t)n || size == (size_t)n - 1);
        CHECK(memcmp(buf, canon, size) == 0);

        char formatted[VISITS__FORMAT_MAX];
        size_t flen = visits__format(value, formatted);
        CHECK(flen == (size_t)n);
        CHECK(memcmp(formatted, canon, flen) == 0);

        /* parsing the canonical form gives the value back, with and without "\n" */
        uint64_t again = 0;
        CHECK(visits_parse(canon, (size_t)n, &again) == 0 && again == value);
        CHECK(visits_parse(canon, (size_t)n - 1, &again) == 0 && again == value);
    }
    free(buf);
    return 0;
}
