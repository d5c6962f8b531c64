/*
 * routes.c: the route table and the handlers. One h2o handler is registered on "/" and
 * routes by exact path through server_routes[], the same table --print-routes prints.
 */
#include "server.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GET_HEAD (METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD))

const struct route server_routes[ROUTE_COUNT] = {
    [ROUTE_ROOT] = {"/", GET_HEAD, "visit"},
    [ROUTE_VISITS] = {"/visits", GET_HEAD, "count"},
    [ROUTE_CLUSTER] = {"/cluster", GET_HEAD, "cluster"},
    [ROUTE_HEALTH] = {"/health", GET_HEAD, "liveness"},
    [ROUTE_READY] = {"/ready", GET_HEAD, "readiness"},
    [ROUTE_METRICS] = {"/metrics", GET_HEAD, "metrics"},
};

static const char *const method_names[METHOD_COUNT] = {
    [METHOD_GET] = "GET",         [METHOD_HEAD] = "HEAD",     [METHOD_POST] = "POST",
    [METHOD_PUT] = "PUT",         [METHOD_DELETE] = "DELETE", [METHOD_PATCH] = "PATCH",
    [METHOD_OPTIONS] = "OPTIONS", [METHOD_OTHER] = "other",
};

int route_lookup(const char *path, size_t len)
{
    for (int i = 0; i < ROUTE_COUNT; i++)
        if (h2o_memis(path, len, server_routes[i].path, strlen(server_routes[i].path)))
            return i;
    return ROUTE_NONE;
}

int method_lookup(const char *name, size_t len)
{
    for (int i = 0; i < METHOD_OTHER; i++)
        if (h2o_memis(name, len, method_names[i], strlen(method_names[i])))
            return i;
    return METHOD_OTHER;
}

const char *method_name(int method)
{
    return method >= 0 && method < METHOD_COUNT ? method_names[method] : "other";
}

const char *route_methods(const struct route *r, const char *sep, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int m = 0; m < METHOD_OTHER; m++) {
        if ((r->methods & METHOD_BIT(m)) == 0)
            continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? sep : "", method_names[m]);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
    return buf;
}

void routes_print(FILE *out)
{
    char methods[64];
    for (int i = 0; i < ROUTE_COUNT; i++)
        fprintf(out, "%s %s %s\n", server_routes[i].path,
                route_methods(&server_routes[i], ",", methods, sizeof(methods)),
                server_routes[i].purpose);
}

/* ---- responses ------------------------------------------------------------------------ */

struct visits_handler {
    h2o_handler_t super;
    struct server *srv;
};

static struct server *server_of(h2o_req_t *req)
{
    return worker_of(req->conn->ctx)->srv;
}

void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

/* Sends body (copied into the request's pool) with a Content-Length; HEAD gets the
 * headers only. */
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
    add_header(req, H2O_TOKEN_CONTENT_TYPE, type);
    add_header(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    h2o_start_response(req, &generator);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

/* The event loop's reusable buffer for building a body (copied into the request's pool
 * when sent), emptied. */
struct strbuf *scratch(h2o_req_t *req)
{
    struct strbuf *sb = &worker_of(req->conn->ctx)->scratch;
    if (sb->oom || sb->cap > SCRATCH_KEEP)
        strbuf_free(sb);
    sb->len = 0;
    return sb;
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
    struct strbuf *sb = scratch(req);
    strbuf_printf(sb, "{\"status\":%d,\"error\":\"", status);
    strbuf_json(sb, message, strlen(message));
    strbuf_puts(sb, "\"}\n");
    respond_sb(req, status, reason, "application/json", sb);
}

static void json_visits(struct strbuf *sb, struct server *srv, uint64_t value)
{
    strbuf_puts(sb, "{\"visits\":");
    strbuf_u64(sb, value);
    strbuf_puts(sb, ",\"pod\":\"");
    strbuf_puts(sb, srv->pod_json);
    strbuf_puts(sb, "\"}\n");
}

/* ---- content negotiation for GET / ------------------------------------------------------ */

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

/* q of the most specific media range in an Accept value matching type/subtype (exact
 * beats type/ * beats * / *); -1 if none matches. */
static double accept_q(h2o_iovec_t accept, const char *type, const char *subtype)
{
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
        h2o_iovec_t range = trim(accept.base + i, k - i);
        double q = k < j ? range_q(accept.base + k + 1, j - k - 1) : 1;
        size_t slash = 0;
        while (slash < range.len && range.base[slash] != '/')
            slash++;
        if (slash < range.len) {
            const char *t = range.base, *st = range.base + slash + 1;
            size_t tlen = slash, stlen = range.len - slash - 1;
            int spec = -1;
            if (h2o_memis(t, tlen, H2O_STRLIT("*")) && h2o_memis(st, stlen, H2O_STRLIT("*")))
                spec = 0;
            else if (h2o_lcstris(t, tlen, type, strlen(type)) &&
                     h2o_memis(st, stlen, H2O_STRLIT("*")))
                spec = 1;
            else if (h2o_lcstris(t, tlen, type, strlen(type)) &&
                     h2o_lcstris(st, stlen, subtype, strlen(subtype)))
                spec = 2;
            if (spec > best_spec) {
                best_spec = spec;
                best_q = q;
            }
        }
        i = j + 1;
    }
    return best_q;
}

double accept_quality(h2o_req_t *req, const char *type, const char *subtype)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    return i == -1 ? -1 : accept_q(req->headers.entries[i].value, type, subtype);
}

/* JSON when the client prefers application/json to text/html; HTML otherwise. */
static int wants_json(h2o_req_t *req)
{
    double qj = accept_quality(req, "application", "json");
    return qj > 0 && qj > accept_quality(req, "text", "html");
}

/* The part of the HTML page after the visit line: links to the other routes. */
static char *page_tail(void)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "<ul>\n");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        if (r == ROUTE_ROOT)
            continue;
        strbuf_printf(&sb, "<li><a href=\"%s\">%s</a> (%s)</li>\n", server_routes[r].path,
                      server_routes[r].path, server_routes[r].purpose);
    }
    strbuf_puts(&sb, "</ul>\n</body>\n</html>\n");
    return sb.oom ? NULL : sb.data;
}

static void respond_page(h2o_req_t *req, uint64_t value)
{
    struct worker *w = worker_of(req->conn->ctx);
    struct server *srv = w->srv;
    struct strbuf *sb = scratch(req);
    add_header(req, H2O_TOKEN_VARY, "Accept");
    if (wants_json(req)) {
        json_visits(sb, srv, value);
        respond_sb(req, 200, "OK", "application/json", sb);
        return;
    }
    time_t now = time(NULL);
    if (now != w->page_second) { /* formatted once a second per thread */
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->page_when, sizeof(w->page_when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        w->page_second = now;
    }
    strbuf_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">" PAGE_ICON
                    "<title>Visit ");
    strbuf_u64(sb, value);
    strbuf_puts(sb, "</title></head>\n<body>\n<h1>Visit number ");
    strbuf_u64(sb, value);
    strbuf_puts(sb, "</h1>\n<p>Served by pod <strong>");
    strbuf_puts(sb, srv->pod_html);
    strbuf_puts(sb, "</strong> at <time>");
    strbuf_puts(sb, w->page_when);
    strbuf_puts(sb, "</time>.</p>\n");
    strbuf_puts(sb, srv->page_tail);
    respond_sb(req, 200, "OK", "text/html; charset=utf-8", sb);
}

/* ---- GET /: one visit through the committer ----------------------------------------- */

/* Lives in malloc'd memory until the committer's reply comes back to this loop; req is
 * cleared if h2o disposes the request first (client gone). */
struct visit_req {
    struct committer_visit visit;
    h2o_req_t *req;
    struct visit_guard *guard;
};
struct visit_guard {
    struct visit_req *vr;
};

static void on_guard_dispose(void *p)
{
    struct visit_guard *g = p;
    if (g->vr != NULL)
        g->vr->req = NULL;
}

static void submit_visit(h2o_req_t *req)
{
    struct worker *w = worker_of(req->conn->ctx);
    struct visit_req *vr = calloc(1, sizeof(*vr));
    if (vr == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    vr->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*vr->guard), on_guard_dispose);
    vr->guard->vr = vr;
    vr->req = req;
    committer_submit(w->visits, &vr->visit);
}

static void answer_visit(h2o_req_t *req, const struct committer_visit *v, const char *path)
{
    if (v->err == 0) {
        respond_page(req, v->value);
        return;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "the visit was not counted: %s: %s", path, visits_strerror(v->err));
    add_header(req, H2O_TOKEN_RETRY_AFTER, "1");
    respond_error(req, 503, "Service Unavailable", msg);
}

void routes_on_visit(struct committer_visit *v, void *data)
{
    struct worker *w = data;
    struct visit_req *vr = H2O_STRUCT_FROM_MEMBER(struct visit_req, visit, v);
    if (vr->req != NULL) {
        vr->guard->vr = NULL;
        answer_visit(vr->req, v, w->srv->cfg.counter_path);
    }
    free(vr);
}

/* ---- the other routes --------------------------------------------------------------- */

static void handle_visits(h2o_req_t *req)
{
    struct server *srv = server_of(req);
    struct strbuf *sb = scratch(req);
    json_visits(sb, srv, committer_value(srv->committer));
    respond_sb(req, 200, "OK", "application/json", sb);
}

static void handle_health(h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
}

static void handle_ready(h2o_req_t *req)
{
    struct server *srv = server_of(req);
    struct committer_view view;
    committer_view(srv->committer, &view);
    if (view.ready) {
        static const char body[] = "{\"status\":\"ready\"}\n";
        respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
        return;
    }
    struct strbuf *sb = scratch(req);
    strbuf_puts(sb, "{\"status\":\"not ready\",\"reason\":\"");
    strbuf_json(sb, view.reason, strlen(view.reason));
    strbuf_puts(sb, "\"}\n");
    respond_sb(req, 503, "Service Unavailable", "application/json", sb);
}

static void handle_metrics(h2o_req_t *req)
{
    struct strbuf *sb = scratch(req);
    metrics_render(server_of(req), sb);
    respond_sb(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", sb);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    int route = route_lookup(req->path_normalized.base, req->path_normalized.len);
    if (route == ROUTE_NONE) {
        struct strbuf msg;
        strbuf_init(&msg);
        strbuf_puts(&msg, "no route for ");
        strbuf_add(&msg, req->path_normalized.base, req->path_normalized.len);
        strbuf_puts(&msg, " (see /)");
        respond_error(req, 404, "Not Found", msg.oom ? "no route" : msg.data);
        strbuf_free(&msg);
        return 0;
    }
    int method = method_lookup(req->method.base, req->method.len);
    const struct route *r = &server_routes[route];
    if ((r->methods & METHOD_BIT(method)) == 0 || method == METHOD_OTHER) {
        char allow[64], msg[160];
        route_methods(r, ", ", allow, sizeof(allow));
        add_header(req, H2O_TOKEN_ALLOW, allow);
        snprintf(msg, sizeof(msg), "method not allowed on %s (allowed: %s)", r->path, allow);
        respond_error(req, 405, "Method Not Allowed", msg);
        return 0;
    }
    switch (route) {
    case ROUTE_ROOT:
        if (method == METHOD_HEAD)
            respond_page(req, committer_value(server_of(req)->committer));
        else
            submit_visit(req);
        break;
    case ROUTE_VISITS:
        handle_visits(req);
        break;
    case ROUTE_CLUSTER:
        cluster_handle(req);
        break;
    case ROUTE_HEALTH:
        handle_health(req);
        break;
    case ROUTE_READY:
        handle_ready(req);
        break;
    case ROUTE_METRICS:
        handle_metrics(req);
        break;
    }
    return 0;
}

/* ---- access log and metrics, at the end of every request ------------------------------ */

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    struct worker *w = worker_of(req->conn->ctx);
    /* HTTP/1 stamps the first byte of the request; HTTP/2 only the processing start. */
    struct timeval tv = req->timestamps.request_begin_at;
    if (tv.tv_sec == 0)
        tv = req->processed_at.at;
    uint64_t begin = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
    uint64_t end = clock_real_ns();
    uint64_t duration = end > begin ? end - begin : 0;
    int status = req->res.status;
    accesslog_request(&w->log, req, status, duration);
    if (status != 0)
        metrics_observe(&w->metrics,
                        route_lookup(req->path_normalized.base, req->path_normalized.len),
                        method_lookup(req->method.base, req->method.len), status, duration);
}

void routes_register(struct server *srv, h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    struct visits_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    srv->page_tail = page_tail();
    if (srv->page_tail == NULL)
        srv->page_tail = "";
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = on_log_access;
}
