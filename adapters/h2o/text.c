/* text.c: growable strings, decimal numbers, JSON/HTML/log escaping. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void strbuf_init(struct strbuf *sb)
{
    memset(sb, 0, sizeof(*sb));
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->data);
    strbuf_init(sb);
}

static int reserve(struct strbuf *sb, size_t extra)
{
    if (sb->oom)
        return -1;
    if (sb->len + extra + 1 <= sb->cap)
        return 0;
    size_t cap = sb->cap != 0 ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = realloc(sb->data, cap);
    if (p == NULL) {
        sb->oom = 1;
        return -1;
    }
    sb->data = p;
    sb->cap = cap;
    return 0;
}

void strbuf_add(struct strbuf *sb, const char *s, size_t len)
{
    if (reserve(sb, len) != 0)
        return;
    memcpy(sb->data + sb->len, s, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
    strbuf_add(sb, s, strlen(s));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        strbuf_add(sb, small, (size_t)n);
        return;
    }
    if (reserve(sb, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

char *format_u64_width(char *p, uint64_t v, int width)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n < width && n < (int)sizeof(tmp))
        tmp[n++] = '0';
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

char *format_u64(char *p, uint64_t v)
{
    return format_u64_width(p, v, 1);
}

void strbuf_u64(struct strbuf *sb, uint64_t v)
{
    char buf[20];
    strbuf_add(sb, buf, (size_t)(format_u64(buf, v) - buf));
}

static const char hex[] = "0123456789abcdef";

char *format_logsafe(char *p, const char *end, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
        if (end - p < (plain ? 1 : 4))
            break;
        if (plain) {
            *p++ = (char)c;
        } else {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

/* ---- JSON strings of log lines: UTF-8 in, UTF-8 out ------------------------------------- */

/* At s (a byte >= 0x80): the length of the well-formed UTF-8 character it starts (2..4), or
 * 0 with the length of the ill-formed subsequence to replace in *bad (the lead byte and the
 * continuation bytes that fit it, Unicode's "maximal subpart"). */
static size_t utf8_char(const unsigned char *s, size_t len, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* no overlong forms */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */
    } else {
        *bad = 1; /* a continuation byte, or a byte that never occurs in UTF-8 */
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (i >= len || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return n;
}

char *format_json_utf8(char *p, const char *end, const char *s, size_t len, size_t *used)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* The common case first: a run of printable ASCII, copied as is. */
        size_t room = (size_t)(end - p), run = len - i < room ? len - i : room, k = 0;
        while (k < run && u[i + k] >= 0x20 && u[i + k] < 0x7f && u[i + k] != '"' &&
               u[i + k] != '\\') {
            p[k] = (char)u[i + k];
            k++;
        }
        p += k;
        i += k;
        if (i == len || p == end)
            break;
        unsigned char c = u[i];
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};
        size_t n = 6, step = 1;
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
            n = 2;
        } else if (c < 0x80) {
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        } else {
            size_t bad = 0, w = utf8_char(u + i, len - i, &bad);
            uint32_t cp = 0;
            if (w == 2)
                cp = (uint32_t)(c & 0x1f) << 6 | (u[i + 1] & 0x3f);
            else if (w == 3)
                cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(u[i + 1] & 0x3f) << 6 |
                     (u[i + 2] & 0x3f);
            if (w == 0) {
                memcpy(esc, "\\ufffd", 6);
                step = bad;
            } else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
                esc[2] = hex[cp >> 12];
                esc[3] = hex[cp >> 8 & 15];
                esc[4] = hex[cp >> 4 & 15];
                esc[5] = hex[cp & 15];
                step = w;
            } else {
                if ((size_t)(end - p) < w)
                    break;
                memcpy(p, u + i, w);
                p += w;
                i += w;
                continue;
            }
        }
        if ((size_t)(end - p) < n)
            break;
        memcpy(p, esc, n);
        p += n;
        i += step;
    }
    if (used != NULL)
        *used = i;
    return p;
}

size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    const unsigned char *u = (const unsigned char *)s;
    /* The character that holds byte max starts at most 3 bytes before it. */
    for (size_t j = max; j > 0 && max - j < 3; j--) {
        unsigned char c = u[j - 1];
        if (c < 0x80)
            return max; /* ASCII: no character crosses the cut */
        if (c >= 0xc0) {
            size_t bad, w = utf8_char(u + j - 1, len - (j - 1), &bad);
            return w != 0 && j - 1 + w > max ? j - 1 : max;
        }
    }
    return max;
}

/* ---- UTF-8 text in responses and settings --------------------------------------------- */

/* The code point of the well-formed character of w bytes at s. */
static uint32_t code_point(const unsigned char *s, size_t w)
{
    static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = s[0] & lead_mask[w];
    for (size_t i = 1; i < w; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    return cp;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int utf8_printable(const char *s, size_t len, size_t *bad, int32_t *control)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t skip = 0, w = u[i] < 0x80 ? 1 : utf8_char(u + i, len - i, &skip);
        uint32_t cp = w != 0 ? code_point(u + i, w) : 0;
        if (w == 0 || is_control(cp)) {
            *bad = i;
            *control = w != 0 ? (int32_t)cp : -1;
            return 0;
        }
        i += w;
    }
    return 1;
}

void strbuf_json(struct strbuf *sb, const char *s, size_t len)
{
    /* format_json_utf8 writes at most 6 bytes per byte of s. */
    if (len > (SIZE_MAX - sb->len - 1) / 6) {
        sb->oom = 1;
        return;
    }
    if (reserve(sb, 6 * len) != 0)
        return;
    char *end = format_json_utf8(sb->data + sb->len, sb->data + sb->cap - 1, s, len, NULL);
    sb->len = (size_t)(end - sb->data);
    sb->data[sb->len] = '\0';
}

void strbuf_html(struct strbuf *sb, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t skip = 1, w = u[i] < 0x80 ? 1 : utf8_char(u + i, len - i, &skip);
        uint32_t cp = w != 0 ? code_point(u + i, w) : 0;
        if (w == 0 || (is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r')) {
            strbuf_lit(sb, "\xef\xbf\xbd"); /* U+FFFD */
            i += w != 0 ? w : skip;
            continue;
        }
        switch (cp) {
        case '&':
            strbuf_lit(sb, "&amp;");
            break;
        case '<':
            strbuf_lit(sb, "&lt;");
            break;
        case '>':
            strbuf_lit(sb, "&gt;");
            break;
        case '"':
            strbuf_lit(sb, "&quot;");
            break;
        case '\'':
            strbuf_lit(sb, "&#39;");
            break;
        default:
            strbuf_add(sb, s + i, w);
        }
        i += w;
    }
}

char *format_utc_seconds(char *p, int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        memset(&tm, 0, sizeof(tm)); /* out of RFC 3339's range: 1900-01-00, visibly wrong */
    p = format_u64_width(p, (uint64_t)(tm.tm_year + 1900), 4);
    *p++ = '-';
    p = format_u64_width(p, (uint64_t)(tm.tm_mon + 1), 2);
    *p++ = '-';
    p = format_u64_width(p, (uint64_t)tm.tm_mday, 2);
    *p++ = 'T';
    p = format_u64_width(p, (uint64_t)tm.tm_hour, 2);
    *p++ = ':';
    p = format_u64_width(p, (uint64_t)tm.tm_min, 2);
    *p++ = ':';
    p = format_u64_width(p, (uint64_t)tm.tm_sec, 2);
    return p;
}
