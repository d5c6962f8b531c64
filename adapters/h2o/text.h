/*
 * text.h: growable strings, decimal numbers, and the escaping of text for JSON, HTML and
 * log lines (one escaper for each).
 */
#ifndef VISITS_TEXT_H
#define VISITS_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
    char *data; /* NUL-terminated once anything was added */
    size_t len;
    size_t cap;
    int oom; /* an allocation failed: contents are truncated */
};
void strbuf_init(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const char *s, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
/* ... a string literal, its length known at compile time (the hot paths' pages). */
#define strbuf_lit(sb, literal) strbuf_add((sb), "" literal, sizeof(literal) - 1)
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void strbuf_printf(struct strbuf *sb, const char *fmt, ...);
void strbuf_u64(struct strbuf *sb, uint64_t v);
/* Appends s as the inside of a JSON string (quotes not included): UTF-8 as it is ("café"
 * stays "café"), control characters (C0, DEL, C1) as \u00NN, and each byte that is not
 * part of valid UTF-8 as \ufffd (the replacement character), so that the result is
 * valid JSON whatever s holds. */
void strbuf_json(struct strbuf *sb, const char *s, size_t len);
/* Appends s escaped for HTML text and attribute values: & < > " ' as entities, UTF-8 as
 * it is, control characters and bytes that are not valid UTF-8 as U+FFFD, so that the
 * page stays valid UTF-8 whatever s holds. */
void strbuf_html(struct strbuf *sb, const char *s, size_t len);

/* The length (1..4) of the valid UTF-8 sequence at the start of s (shortest form, no
 * surrogates, at most U+10FFFF), its code point in *cp; 0 if s starts with a byte that
 * is not valid UTF-8 there (or len is 0). */
size_t utf8_sequence(const char *s, size_t len, uint32_t *cp);
/* 1 if s is valid UTF-8 without control characters (U+0000..U+001F, U+007F..U+009F);
 * otherwise 0 and the offset of the first offending byte in *bad. */
int utf8_printable(const char *s, size_t len, size_t *bad);

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. printf is a
 * tenth of the CPU of a request on the hot paths, this is not. */
char *format_u64(char *p, uint64_t v);
/* ... zero-padded to at least width digits. */
char *format_u64_width(char *p, uint64_t v, int width);
/* Writes s at p for a log field: bytes outside printable ASCII, '"' and '\\' as \xNN.
 * Stops before a byte whose form does not fit before end; returns the end. */
char *format_logsafe(char *p, const char *end, const char *s, size_t len);

#endif /* VISITS_TEXT_H */
