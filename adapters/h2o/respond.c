/* respond.c: the response helpers shared by the handlers. */
#include "respond.h"

#include <stdlib.h>
#include <string.h>

#define SCRATCH_KEEP 65536 /* a larger body buffer is freed after use */

void respond_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

void respond(h2o_req_t *req, int status, const char *reason, const char *type, const char *body,
             size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    /* libh2o decides keep-alive when the request arrives; a request that was in flight
     * at the signal must still end its connection. */
    if (req->conn->ctx->shutdown_requested)
        req->http1_is_persistent = 0;
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    respond_header(req, H2O_TOKEN_CONTENT_TYPE, type);
    respond_header(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    h2o_start_response(req, &generator);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

void respond_sb(h2o_req_t *req, int status, const char *reason, const char *type, struct strbuf *sb)
{
    if (sb->oom) {
        static const char oom[] = "{\"status\":500,\"error\":\"out of memory\"}\n";
        respond(req, 500, "Internal Server Error", "application/json", oom, sizeof(oom) - 1);
    } else {
        respond(req, status, reason, type, sb->data != NULL ? sb->data : "", sb->len);
    }
    sb->len = 0;
}

void respond_error(h2o_req_t *req, int status, const char *reason, const char *message)
{
    struct strbuf *sb = respond_scratch();
    strbuf_printf(sb, "{\"status\":%d,\"error\":\"", status);
    strbuf_json(sb, message, strlen(message));
    strbuf_puts(sb, "\"}\n");
    respond_sb(req, status, reason, "application/json", sb);
}

/* ---- the body buffer ------------------------------------------------------------------ */

/* Each event loop runs in a thread of its own: the thread's buffer is the loop's. */
static _Thread_local struct strbuf scratch;

struct strbuf *respond_scratch(void)
{
    if (scratch.oom || scratch.cap > SCRATCH_KEEP)
        strbuf_free(&scratch);
    scratch.len = 0;
    return &scratch;
}

void respond_thread_exit(void)
{
    strbuf_free(&scratch);
}

/* ---- content negotiation -------------------------------------------------------------- */

static h2o_iovec_t trim(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return h2o_iovec_init(s, len);
}

/* The q parameter of one media range's parameters ("; q=0.5; level=1"), 1 by default. */
static double range_q(const char *params, size_t len)
{
    double q = 1;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && params[j] != ';')
            j++;
        h2o_iovec_t p = trim(params + i, j - i);
        if (p.len >= 2 && (p.base[0] == 'q' || p.base[0] == 'Q') && p.base[1] == '=') {
            char num[8] = {0};
            for (size_t k = 2, n = 0; k < p.len && n < sizeof(num) - 1; k++, n++)
                num[n] = p.base[k];
            q = strtod(num, NULL);
        }
        i = j + 1;
    }
    return q;
}

/* How specifically a media range ("text/html", "text/ *", "* / *") matches type/subtype:
 * 2, 1, 0, or -1 when it does not. */
static int range_match(h2o_iovec_t range, const char *type, const char *subtype)
{
    size_t slash = 0;
    while (slash < range.len && range.base[slash] != '/')
        slash++;
    if (slash == range.len)
        return -1;
    const char *t = range.base, *st = range.base + slash + 1;
    size_t tlen = slash, stlen = range.len - slash - 1;
    int any_subtype = h2o_memis(st, stlen, H2O_STRLIT("*"));
    if (h2o_memis(t, tlen, H2O_STRLIT("*")) && any_subtype)
        return 0;
    if (!h2o_lcstris(t, tlen, type, strlen(type)))
        return -1;
    if (any_subtype)
        return 1;
    return h2o_lcstris(st, stlen, subtype, strlen(subtype)) ? 2 : -1;
}

/* q of the most specific media range of the request's Accept that matches type/subtype;
 * -1 when none does or there is no Accept header. */
static double accept_quality(h2o_req_t *req, const char *type, const char *subtype)
{
    ssize_t h = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    if (h == -1)
        return -1;
    h2o_iovec_t accept = req->headers.entries[h].value;
    double best_q = -1;
    int best_spec = -1;
    size_t i = 0;
    while (i < accept.len) {
        size_t j = i;
        while (j < accept.len && accept.base[j] != ',')
            j++;
        size_t k = i;
        while (k < j && accept.base[k] != ';')
            k++;
        int spec = range_match(trim(accept.base + i, k - i), type, subtype);
        if (spec > best_spec) {
            best_spec = spec;
            best_q = k < j ? range_q(accept.base + k + 1, j - k - 1) : 1;
        }
        i = j + 1;
    }
    return best_q;
}

enum respond_format respond_negotiate(h2o_req_t *req, enum respond_format fallback)
{
    respond_header(req, H2O_TOKEN_VARY, "Accept");
    double json = accept_quality(req, "application", "json");
    double html = accept_quality(req, "text", "html");
    if (fallback == RESPOND_HTML)
        return json > 0 && json > html ? RESPOND_JSON : RESPOND_HTML;
    return html > 0 && html > json ? RESPOND_HTML : RESPOND_JSON;
}

/* ---- pages ---------------------------------------------------------------------------- */

void respond_page_head(struct strbuf *sb, const char *before, uint64_t n, const char *after)
{
    /* The empty icon saves the browser's request for /favicon.ico. */
    strbuf_lit(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
                   "<link rel=\"icon\" href=\"data:,\"><title>");
    strbuf_puts(sb, before);
    strbuf_u64(sb, n);
    strbuf_puts(sb, after);
    strbuf_lit(sb, "</title></head>\n<body>\n");
}

/* ---- the client-gone guard ------------------------------------------------------------ */

struct respond_guard {
    void (*on_gone)(void *data); /* NULL once released */
    void *data;
};

/* The request's pool is being cleared: the request is done or its client is gone. */
static void on_dispose(void *p)
{
    struct respond_guard *g = p;
    void (*on_gone)(void *) = g->on_gone;
    g->on_gone = NULL;
    if (on_gone != NULL)
        on_gone(g->data);
}

struct respond_guard *respond_guard(h2o_req_t *req, void (*on_gone)(void *data), void *data)
{
    struct respond_guard *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_dispose);
    g->on_gone = on_gone;
    g->data = data;
    return g;
}

void respond_guard_release(struct respond_guard *g)
{
    g->on_gone = NULL;
}
