/*
 * json.c: a strict reader of a peer's GET /visits answer, {"visits":N,"pod":"NAME"}.
 *
 * The whole body must be one JSON value (RFC 8259) and that value an object with a member
 * "visits" holding an integer 0..18446744073709551615 (no sign, fraction or exponent) and
 * a member "pod" holding a string of 1..253 characters without control characters.
 * Other members are allowed and skipped (checked for syntax); duplicate "visits" or "pod"
 * members are refused. Nesting is limited so that no input can exhaust the stack.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define JSON_MAX_DEPTH 16
#define POD_NAME_MAX 253

struct reader {
    const char *p;
    const char *end;
    const char *start;
    char *err; /* set on the first failure */
    size_t errsize;
    int failed;
};

static int fail_at(struct reader *r, const char *what)
{
    if (!r->failed)
        snprintf(r->err, r->errsize, "not JSON: %s at byte %zu", what, (size_t)(r->p - r->start));
    r->failed = 1;
    return -1;
}

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(struct reader *r, unsigned *out)
{
    if (r->end - r->p < 4)
        return fail_at(r, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(r->p[i]);
        if (d < 0)
            return fail_at(r, "bad \\u escape");
        v = v * 16 + (unsigned)d;
    }
    r->p += 4;
    *out = v;
    return 0;
}

/* Appends one decoded character to out (when out is not NULL): code points up to U+00FF
 * as that single byte (how visits-server escapes the bytes of its pod name), larger ones
 * as UTF-8. Returns -1 when out is full. */
static int put_char(char *out, size_t size, size_t *len, unsigned cp)
{
    char buf[4];
    size_t n;
    if (cp <= 0xff) {
        buf[0] = (char)cp;
        n = 1;
    } else if (cp <= 0x7ff) {
        buf[0] = (char)(0xc0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp <= 0xffff) {
        buf[0] = (char)(0xe0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        buf[0] = (char)(0xf0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (out == NULL)
        return 0;
    if (*len + n >= size)
        return -1;
    memcpy(out + *len, buf, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

/* A string at r->p (the opening quote). Decoded into out (may be NULL: only checked);
 * *too_long is set when it did not fit. Raw bytes >= 0x80 are copied as they are. */
static int read_string(struct reader *r, char *out, size_t size, size_t *len, int *too_long)
{
    *len = 0;
    *too_long = 0;
    if (out != NULL)
        out[0] = '\0';
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return fail_at(r, "control character in a string");
        unsigned cp = c;
        r->p++;
        if (c == '\\') {
            if (r->p >= r->end)
                break;
            char e = *r->p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                cp = (unsigned char)e;
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (read_hex4(r, &cp) != 0)
                    return -1;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                        return fail_at(r, "unpaired surrogate");
                    r->p += 2;
                    if (read_hex4(r, &lo) != 0)
                        return -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(r, "unpaired surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return fail_at(r, "unpaired surrogate");
                }
                break;
            default:
                r->p--;
                return fail_at(r, "bad escape in a string");
            }
            if (!*too_long && put_char(out, size, len, cp) != 0)
                *too_long = 1;
        } else if (out != NULL && !*too_long) {
            if (*len + 1 >= size) {
                *too_long = 1;
            } else {
                out[(*len)++] = (char)c;
                out[*len] = '\0';
            }
        }
    }
    return fail_at(r, "unterminated string");
}

/* A number at r->p. *is_uint and *value tell whether it is a plain non-negative integer
 * that fits 64 bits (*overflow: an integer too large). */
static int read_number(struct reader *r, int *is_uint, int *overflow, uint64_t *value)
{
    int neg = 0, frac = 0;
    uint64_t v = 0;
    *overflow = 0;
    if (r->p < r->end && *r->p == '-') {
        neg = 1;
        r->p++;
    }
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return fail_at(r, "bad number");
    if (*r->p == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
        return fail_at(r, "leading zero in a number");
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = 1;
        else
            v = v * 10 + d;
        r->p++;
    }
    if (r->p < r->end && *r->p == '.') {
        frac = 1;
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return fail_at(r, "bad fraction");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        frac = 1;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return fail_at(r, "bad exponent");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    *is_uint = !neg && !frac && !*overflow;
    if (neg || frac)
        *overflow = 0;
    *value = v;
    return 0;
}

static int read_literal(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail_at(r, "unexpected character");
    r->p += n;
    return 0;
}

static int skip_value(struct reader *r, int depth);

static int skip_container(struct reader *r, int depth, char close, int object)
{
    if (depth >= JSON_MAX_DEPTH)
        return fail_at(r, "nested too deeply");
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (object) {
            size_t len;
            int too_long;
            if (r->p >= r->end || *r->p != '"')
                return fail_at(r, "expected a member name");
            if (read_string(r, NULL, 0, &len, &too_long) != 0)
                return -1;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return fail_at(r, "expected ':'");
            r->p++;
        }
        if (skip_value(r, depth + 1) != 0)
            return -1;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 0;
        }
        return fail_at(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int skip_value(struct reader *r, int depth)
{
    skip_ws(r);
    if (r->p >= r->end)
        return fail_at(r, "unexpected end");
    switch (*r->p) {
    case '{':
        return skip_container(r, depth, '}', 1);
    case '[':
        return skip_container(r, depth, ']', 0);
    case '"': {
        size_t len;
        int too_long;
        return read_string(r, NULL, 0, &len, &too_long);
    }
    case 't':
        return read_literal(r, "true");
    case 'f':
        return read_literal(r, "false");
    case 'n':
        return read_literal(r, "null");
    default: {
        int is_uint, overflow;
        if (*r->p != '-' && (*r->p < '0' || *r->p > '9'))
            return fail_at(r, "unexpected character");
        uint64_t v;
        return read_number(r, &is_uint, &overflow, &v);
    }
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
shape(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(err, size, "wrong shape: ");
    if (n > 0 && (size_t)n < size)
        vsnprintf(err + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value of "visits" at r->p. */
static int read_visits(struct reader *r, uint64_t *visits)
{
    int is_uint = 0, overflow = 0;
    if (r->p >= r->end || (*r->p != '-' && (*r->p < '0' || *r->p > '9'))) {
        if (skip_value(r, 1) != 0)
            return -1;
        return shape(r->err, r->errsize, "\"visits\" is not a number");
    }
    if (read_number(r, &is_uint, &overflow, visits) != 0)
        return -1;
    if (overflow)
        return shape(r->err, r->errsize, "\"visits\" is over 18446744073709551615");
    if (!is_uint)
        return shape(r->err, r->errsize, "\"visits\" is not a non-negative integer");
    return 0;
}

/* The value of "pod" at r->p. */
static int read_pod(struct reader *r, char *pod, size_t pod_size)
{
    size_t len;
    int too_long;
    if (r->p >= r->end || *r->p != '"') {
        if (skip_value(r, 1) != 0)
            return -1;
        return shape(r->err, r->errsize, "\"pod\" is not a string");
    }
    size_t cap = pod_size < POD_NAME_MAX + 1 ? pod_size : POD_NAME_MAX + 1;
    if (read_string(r, pod, cap, &len, &too_long) != 0)
        return -1;
    if (too_long || len == 0)
        return shape(r->err, r->errsize, "\"pod\" must have 1..%d characters", POD_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pod[i];
        if (c < 0x20 || c == 0x7f)
            return shape(r->err, r->errsize, "\"pod\" has a control character");
    }
    return 0;
}

/* What the answer held so far. */
struct answer {
    uint64_t *visits;
    char *pod;
    size_t pod_size;
    int have_visits, have_pod;
};

/* One member of the object at r->p: "visits" and "pod" are read, others only checked. */
static int read_member(struct reader *r, struct answer *a)
{
    char name[16];
    size_t nlen;
    int too_long;
    skip_ws(r);
    if (r->p >= r->end || *r->p != '"')
        return fail_at(r, "expected a member name");
    if (read_string(r, name, sizeof(name), &nlen, &too_long) != 0)
        return -1;
    skip_ws(r);
    if (r->p >= r->end || *r->p != ':')
        return fail_at(r, "expected ':'");
    r->p++;
    skip_ws(r);
    int is_visits = !too_long && nlen == 6 && memcmp(name, "visits", 6) == 0;
    int is_pod = !too_long && nlen == 3 && memcmp(name, "pod", 3) == 0;
    if ((is_visits && a->have_visits) || (is_pod && a->have_pod))
        return shape(r->err, r->errsize, "member \"%s\" given twice", name);
    if (is_visits) {
        a->have_visits = 1;
        return read_visits(r, a->visits);
    }
    if (is_pod) {
        a->have_pod = 1;
        return read_pod(r, a->pod, a->pod_size);
    }
    return skip_value(r, 1);
}

int peer_answer_parse(const char *body, size_t len, uint64_t *visits, char *pod, size_t pod_size,
                      char *err, size_t errsize)
{
    struct reader r = {body, body + len, body, err, errsize, 0};
    struct answer a = {visits, pod, pod_size, 0, 0};
    err[0] = '\0';
    skip_ws(&r);
    if (r.p >= r.end) {
        snprintf(err, errsize, "empty body (expected a JSON object)");
        return -1;
    }
    if (*r.p != '{') {
        if (skip_value(&r, 0) != 0)
            return -1;
        return shape(err, errsize, "not an object (expected {\"visits\":N,\"pod\":\"NAME\"})");
    }
    r.p++;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}')
        r.p++;
    else
        for (;;) {
            if (read_member(&r, &a) != 0)
                return -1;
            skip_ws(&r);
            if (r.p < r.end && *r.p == ',') {
                r.p++;
                continue;
            }
            if (r.p < r.end && *r.p == '}') {
                r.p++;
                break;
            }
            return fail_at(&r, "expected ',' or '}'");
        }
    skip_ws(&r);
    if (r.p != r.end)
        return fail_at(&r, "trailing data after the object");
    if (!a.have_visits)
        return shape(err, errsize, "no \"visits\" member");
    if (!a.have_pod)
        return shape(err, errsize, "no \"pod\" member");
    return 0;
}
