/*
 * text.h: growable strings, decimal numbers, UTC times, and the escaping of text for JSON
 * responses, JSON log lines, HTML and text log lines (one escaper for each).
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
/* Appends s as the inside of a JSON string (quotes not included), as format_json_utf8
 * writes it: UTF-8 as it is ("café" stays "café"), '"', '\\' and the control characters
 * escaped, each ill-formed subsequence as \ufffd, so that the result is valid JSON and
 * valid UTF-8 whatever s holds (a NUL shows as \u0000 and never cuts it short). */
void strbuf_json(struct strbuf *sb, const char *s, size_t len);
/* Appends s escaped for HTML text and attribute values: & < > " ' as entities, UTF-8 as
 * it is, control characters (but tab and line breaks) and ill-formed subsequences as
 * U+FFFD, so that the page stays valid UTF-8 whatever s holds. */
void strbuf_html(struct strbuf *sb, const char *s, size_t len);
/* 1 if s is well-formed UTF-8 without control characters (U+0000..U+001F,
 * U+007F..U+009F); otherwise 0, the offset of the first offending byte in *bad and, in
 * *control, the control character found there, or -1 when the bytes there are not
 * well-formed UTF-8. */
int utf8_printable(const char *s, size_t len, size_t *bad, int32_t *control);

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. printf is a
 * tenth of the CPU of a request on the hot paths, this is not. */
char *format_u64(char *p, uint64_t v);
/* ... zero-padded to at least width digits. */
char *format_u64_width(char *p, uint64_t v, int width);
/* Writes s at p for a log field: bytes outside printable ASCII, '"' and '\\' as \xNN.
 * Stops before a byte whose form does not fit before end; returns the end. */
char *format_logsafe(char *p, const char *end, const char *s, size_t len);

/* Writes s at p as the inside of a JSON string (quotes not included) for a log line: the
 * result is valid JSON and valid UTF-8 whatever s holds, and never holds a line break.
 * Well-formed UTF-8 is kept as is; '"', '\\', the control characters (U+0000-U+001F,
 * U+007F-U+009F) and the line and paragraph separators (U+2028, U+2029) are escaped; each
 * ill-formed subsequence (a maximal subpart, as WHATWG's decoder and Python's "replace"
 * count them) becomes \ufffd (U+FFFD). At most 6 bytes per byte of s. Stops before a
 * character whose form does not fit before end; returns the end, and the bytes of s it
 * wrote in *used (if not NULL). strbuf_json, for the responses, writes the same. */
char *format_json_utf8(char *p, const char *end, const char *s, size_t len, size_t *used);
/* The length of s cut to at most max bytes, backed off so that the cut does not split a
 * well-formed UTF-8 character. */
size_t utf8_cut(const char *s, size_t len, size_t max);
/* Writes the UTC time `sec` (seconds since the epoch) at p as RFC 3339's
 * "YYYY-MM-DDTHH:MM:SS" (19 bytes, no zone: the caller appends fractions and "Z"); returns
 * the end. */
char *format_utc_seconds(char *p, int64_t sec);

#endif /* VISITS_TEXT_H */
