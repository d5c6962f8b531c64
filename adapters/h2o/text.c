/* text.c: growable strings, decimal numbers, JSON/HTML/log escaping. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

size_t utf8_sequence(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, v = p[0] & 0x1f, min = 0x80;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, v = p[0] & 0x0f, min = 0x800;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, v = p[0] & 0x07, min = 0x10000;
    else
        return 0; /* a continuation byte, an overlong lead (C0, C1) or F5..FF */
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int utf8_printable(const char *s, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_sequence(s + i, len - i, &cp);
        if (n == 0 || is_control(cp)) {
            *bad = i;
            return 0;
        }
        i += n;
    }
    return 1;
}

void strbuf_json(struct strbuf *sb, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_sequence(s + i, len - i, &cp);
        if (n == 0) {
            strbuf_lit(sb, "\\ufffd");
            i++;
        } else if (cp == '"' || cp == '\\') {
            char esc[2] = {'\\', (char)cp};
            strbuf_add(sb, esc, 2);
            i++;
        } else if (is_control(cp)) {
            char esc[6] = {'\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15]};
            strbuf_add(sb, esc, 6);
            i += n;
        } else {
            strbuf_add(sb, s + i, n);
            i += n;
        }
    }
}

void strbuf_html(struct strbuf *sb, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_sequence(s + i, len - i, &cp);
        if (n == 0 || (is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r')) {
            strbuf_lit(sb, "\xef\xbf\xbd"); /* U+FFFD */
            i += n != 0 ? n : 1;
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
            strbuf_add(sb, s + i, n);
        }
        i += n;
    }
}

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
