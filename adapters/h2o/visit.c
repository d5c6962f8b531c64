/* visit.c: GET and HEAD /, GET /visits. */
#include "visit.h"

#include "respond.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct visit_handler {
    h2o_handler_t super;
    struct committer *committer;
    char *counter_path;
    char *pod_json;  /* the pod name escaped for JSON ... */
    char *pod_html;  /* ... and for HTML */
    char *page_tail; /* the HTML page after the visit line: links to the other routes */
};

/* Per event loop. */
struct visit_loop {
    struct visit_handler *h;
    struct committer_loop *committer;
    time_t page_second; /* the page's time, formatted once a second */
    char page_when[32];
};

/* A GET / waiting for the committer. Lives until the committer's reply comes back to its
 * loop, even when the client went away before. */
struct visit_req {
    struct committer_visit visit;
    h2o_req_t *req; /* NULL once the client went away */
    struct respond_guard *guard;
};

static void json_visits(struct strbuf *sb, const struct visit_handler *h, uint64_t value)
{
    strbuf_lit(sb, "{\"visits\":");
    strbuf_u64(sb, value);
    strbuf_lit(sb, ",\"pod\":\"");
    strbuf_puts(sb, h->pod_json);
    strbuf_lit(sb, "\"}\n");
}

static void respond_visit(h2o_req_t *req, struct visit_loop *l, uint64_t value)
{
    struct visit_handler *h = l->h;
    struct strbuf *sb = respond_scratch();
    if (respond_negotiate(req, RESPOND_HTML) == RESPOND_JSON) {
        json_visits(sb, h, value);
        respond_sb(req, 200, "OK", "application/json", sb);
        return;
    }
    time_t now = time(NULL);
    if (now != l->page_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(l->page_when, sizeof(l->page_when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        l->page_second = now;
    }
    respond_page_head(sb, "Visit ", value, "");
    strbuf_lit(sb, "<h1>Visit number ");
    strbuf_u64(sb, value);
    strbuf_lit(sb, "</h1>\n<p>Served by pod <strong>");
    strbuf_puts(sb, h->pod_html);
    strbuf_lit(sb, "</strong> at <time>");
    strbuf_puts(sb, l->page_when);
    strbuf_lit(sb, "</time>.</p>\n");
    strbuf_puts(sb, h->page_tail);
    respond_sb(req, 200, "OK", "text/html; charset=utf-8", sb);
}

/* The committer's reply, on the loop that submitted the visit. */
static void on_counted(struct committer_visit *v, void *data)
{
    struct visit_loop *l = data;
    struct visit_req *vr = H2O_STRUCT_FROM_MEMBER(struct visit_req, visit, v);
    if (vr->req != NULL) {
        respond_guard_release(vr->guard);
        if (v->err == 0) {
            respond_visit(vr->req, l, v->value);
        } else if (v->err == VISITS_EOVERFLOW) {
            /* Lasting until an operator lowers the counter: no Retry-After, and 507 (the
             * server cannot store a larger value), not 503 (come back soon). */
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "the visit was not counted: %s: %s; an operator must lower it "
                     "('visitsctl set %s N')",
                     l->h->counter_path, visits_strerror(v->err), l->h->counter_path);
            respond_error(vr->req, 507, "Insufficient Storage", msg);
        } else {
            char msg[512];
            snprintf(msg, sizeof(msg), "the visit was not counted: %s: %s", l->h->counter_path,
                     visits_strerror(v->err));
            respond_header(vr->req, H2O_TOKEN_RETRY_AFTER, "1");
            respond_error(vr->req, 503, "Service Unavailable", msg);
        }
    }
    free(vr);
}

static void on_client_gone(void *data)
{
    struct visit_req *vr = data;
    vr->req = NULL;
}

static int on_visit(h2o_handler_t *self, h2o_req_t *req)
{
    struct visit_handler *h = (struct visit_handler *)self;
    struct visit_loop *l = h2o_context_get_handler_context(req->conn->ctx, self);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        respond_visit(req, l, committer_value(h->committer));
        return 0;
    }
    char held[128];
    if (committer_held(h->committer, held, sizeof(held))) {
        /* Restoring the count from the peers (before ready): a visit counted now could be
         * absorbed by the raise that follows. The Service sends none; a direct one waits. */
        char msg[256];
        snprintf(msg, sizeof(msg), "the visit was not counted: %s", held);
        respond_header(req, H2O_TOKEN_RETRY_AFTER, "1");
        respond_error(req, 503, "Service Unavailable", msg);
        return 0;
    }
    struct visit_req *vr = calloc(1, sizeof(*vr));
    if (vr == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return 0;
    }
    vr->req = req;
    vr->guard = respond_guard(req, on_client_gone, vr);
    committer_submit(l->committer, &vr->visit);
    return 0;
}

static int on_count(h2o_handler_t *self, h2o_req_t *req)
{
    struct visit_handler *h = (struct visit_handler *)self;
    struct strbuf *sb = respond_scratch();
    json_visits(sb, h, committer_value(h->committer));
    respond_sb(req, 200, "OK", "application/json", sb);
    return 0;
}

static void on_context_init(h2o_handler_t *self, h2o_context_t *ctx)
{
    struct visit_loop *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->h = (struct visit_handler *)self;
    l->committer = committer_attach(l->h->committer, ctx, on_counted, l);
    h2o_context_set_handler_context(ctx, self, l);
}

size_t visit_pending(h2o_handler_t *visit, h2o_context_t *ctx)
{
    struct visit_loop *l = h2o_context_get_handler_context(ctx, visit);
    return committer_pending(l->committer);
}

/* What sb holds, to keep (an empty string if it ran out of memory). */
static char *kept(struct strbuf *sb)
{
    if (!sb->oom && sb->data != NULL)
        return sb->data;
    strbuf_free(sb);
    return h2o_strdup(NULL, "", 0).base;
}

static char *escaped(const char *s, void (*esc)(struct strbuf *, const char *, size_t))
{
    struct strbuf sb;
    strbuf_init(&sb);
    esc(&sb, s, strlen(s));
    return kept(&sb);
}

static char *page_tail(void)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "<ul>\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        if (r != ROUTE_ROOT)
            strbuf_printf(&sb, "<li><a href=\"%s\">%s</a> (%s)</li>\n", routes[r].path,
                          routes[r].path, routes[r].purpose);
    strbuf_puts(&sb, "</ul>\n</body>\n</html>\n");
    return kept(&sb);
}

static struct visit_handler *create(h2o_pathconf_t *pathconf, const struct visit_config *cfg)
{
    struct visit_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->committer = cfg->committer;
    h->counter_path = h2o_strdup(NULL, cfg->counter_path, SIZE_MAX).base;
    h->pod_json = escaped(cfg->pod_name, strbuf_json);
    h->pod_html = escaped(cfg->pod_name, strbuf_html);
    return h;
}

h2o_handler_t *visit_register(h2o_pathconf_t *pathconf, const struct visit_config *cfg)
{
    struct visit_handler *h = create(pathconf, cfg);
    h->page_tail = page_tail();
    h->super.on_context_init = on_context_init;
    h->super.on_req = on_visit;
    return &h->super;
}

h2o_handler_t *visit_count_register(h2o_pathconf_t *pathconf, const struct visit_config *cfg)
{
    struct visit_handler *h = create(pathconf, cfg);
    h->super.on_req = on_count;
    return &h->super;
}
