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
/* Appends s as the inside of a JSON string (quotes not included); bytes that are not
 * printable ASCII become \u00NN, so the result is valid JSON whatever s holds. */
void strbuf_json(struct strbuf *sb, const char *s, size_t len);
/* Appends s escaped for HTML text and attribute values. */
void strbuf_html(struct strbuf *sb, const char *s, size_t len);

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. printf is a
 * tenth of the CPU of a request on the hot paths, this is not. */
char *format_u64(char *p, uint64_t v);
/* ... zero-padded to at least width digits. */
char *format_u64_width(char *p, uint64_t v, int width);
/* Writes s at p for a log field: bytes outside printable ASCII, '"' and '\\' as \xNN.
 * Stops before a byte whose form does not fit before end; returns the end. */
char *format_logsafe(char *p, const char *end, const char *s, size_t len);

#endif /* VISITS_TEXT_H */
