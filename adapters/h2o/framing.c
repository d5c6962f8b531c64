/*
 * framing.c: the request's framing headers and its target.
 *
 * libh2o 2.2.5 keeps Content-Length and Transfer-Encoding out of req->headers. While an
 * HTTP/1 request is handled, its head is still at the start of the socket's input buffer
 * (libh2o consumes it once the response is done), with the header names lower-cased in
 * place: the framing headers are read from there.
 */
#include "framing.h"

#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static h2o_iovec_t trim(const char *s, size_t len)
{
    while (len > 0 && is_space(*s))
        s++, len--;
    while (len > 0 && is_space(s[len - 1]))
        len--;
    return h2o_iovec_init(s, len);
}

/* One Content-Length field value: a list of decimal numbers (RFC 9110 8.6 lets a list of
 * equal values through). Returns 0 and the value in *seen (if *have, it must equal it);
 * -1 when a value is not a number, -2 when they differ. */
static int content_length(const char *v, size_t len, int *have, unsigned long long *seen)
{
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        h2o_iovec_t item = trim(v + i, j - i);
        unsigned long long n = 0;
        if (item.len == 0 || item.len > 19)
            return -1;
        for (size_t k = 0; k < item.len; k++) {
            if (item.base[k] < '0' || item.base[k] > '9')
                return -1;
            n = n * 10 + (unsigned long long)(item.base[k] - '0');
        }
        if (*have && n != *seen)
            return -2;
        *have = 1;
        *seen = n;
        if (j == len)
            return 0;
        i = j + 1;
    }
}

/* The framing headers of the HTTP/1 request head at the start of buf. */
static const char *check_head(const char *buf, size_t size, int http10)
{
    const char *p = memchr(buf, '\n', size), *end = buf + size;
    int have_length = 0, te = 0, last_was_framing = 0;
    unsigned long long length = 0;
    if (p == NULL)
        return NULL;
    for (p++; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        size_t len = (size_t)(eol - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* the end of the head */
        if (is_space(p[0])) {
            if (last_was_framing)
                return "a framing header (Content-Length, Transfer-Encoding) continued on a "
                       "folded line";
        } else {
            const char *colon = memchr(p, ':', len);
            size_t nlen = colon != NULL ? (size_t)(colon - p) : len;
            h2o_iovec_t value = colon != NULL ? trim(colon + 1, len - nlen - 1) : trim(p, 0);
            last_was_framing = 0;
            if (h2o_lcstris(p, nlen, H2O_STRLIT("content-length"))) {
                last_was_framing = 1;
                int r = content_length(value.base, value.len, &have_length, &length);
                if (r == -1)
                    return "invalid Content-Length value";
                if (r == -2)
                    return "conflicting Content-Length values (RFC 9112 6.3)";
            } else if (h2o_lcstris(p, nlen, H2O_STRLIT("transfer-encoding"))) {
                last_was_framing = 1;
                te++;
            }
        }
        p = eol + 1;
    }
    if (te > 0 && have_length)
        return "Content-Length together with Transfer-Encoding (RFC 9112 6.3)";
    if (te > 1)
        return "more than one Transfer-Encoding header";
    if (te > 0 && http10)
        return "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)";
    return NULL;
}

static const char *check_http1_framing(h2o_req_t *req)
{
    /* libh2o gives a request a body (req->entity) exactly when it had Content-Length or
     * Transfer-Encoding: only those heads need reading. */
    if (req->entity.base == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        return NULL;
    const char *buf = sock->input->bytes;
    size_t size = sock->input->size < H2O_MAX_REQLEN ? sock->input->size : H2O_MAX_REQLEN;
    h2o_iovec_t m = req->input.method;
    /* The head must be where libh2o 2.2.5 leaves it; if not, libh2o's own framing stands. */
    if (size <= m.len || memcmp(buf, m.base, m.len) != 0 || buf[m.len] != ' ')
        return NULL;
    return check_head(buf, size, req->version < 0x101);
}

/* "http://host:port/path?q" -> "/path?q" ("/" when the path is empty); 1 when target is
 * in absolute form with an http(s) scheme, -1 with another scheme, 0 when it is not in
 * absolute form. */
static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_scheme_char(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* "http://host:port/path?q" -> "/path?q" (empty when there is no path); 1 when target is
 * in absolute form with an http(s) scheme, -1 with another scheme, 0 when it is not in
 * absolute form (RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )). */
static int absolute_form(h2o_iovec_t target, h2o_iovec_t *path)
{
    size_t i = 0;
    if (target.len == 0 || !is_alpha(target.base[0]))
        return 0;
    while (i < target.len && is_scheme_char(target.base[i]))
        i++;
    if (target.len - i < 3 || memcmp(target.base + i, "://", 3) != 0)
        return 0;
    if (!h2o_lcstris(target.base, i, H2O_STRLIT("http")) &&
        !h2o_lcstris(target.base, i, H2O_STRLIT("https")))
        return -1;
    size_t start = i + 3;
    while (start < target.len && target.base[start] != '/' && target.base[start] != '?')
        start++;
    *path = h2o_iovec_init(target.base + start, target.len - start);
    return 1;
}

const char *framing_check(h2o_req_t *req)
{
    h2o_iovec_t target = req->input.path;
    if (req->version >= 0x200) {
        if (target.len == 0)
            return "empty :path (RFC 9113 8.3.1)";
        if (target.base[0] != '/' && !h2o_memis(target.base, target.len, H2O_STRLIT("*")))
            return ":path is not an absolute path (RFC 9113 8.3.1)";
        return NULL;
    }
    const char *why = check_http1_framing(req);
    if (why != NULL)
        return why;
    h2o_iovec_t path;
    switch (absolute_form(target, &path)) {
    case -1:
        return "absolute-form target with a scheme other than http or https";
    case 1:
        if (path.len == 0 || path.base[0] == '?') {
            /* "http://host" and "http://host?q" name "/" (RFC 9112 3.2.2) */
            path = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("/")), path);
        }
        req->path = path;
        req->path_normalized = h2o_url_normalize_path(&req->pool, path.base, path.len,
                                                      &req->query_at, &req->norm_indexes);
        break;
    }
    return NULL;
}
