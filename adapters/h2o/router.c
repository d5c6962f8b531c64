/*
 * router.c: the handlers. One h2o handler is registered on "/" and routes by exact path
 * through the route table (routes.c).
 */
#include "server.h"

#include "respond.h"
#include "routes.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- responses ------------------------------------------------------------------------ */

struct visits_handler {
    h2o_handler_t super;
    struct server *srv;
};

static struct server *server_of(h2o_req_t *req)
{
    return worker_of(req->conn->ctx)->srv;
}

static void json_visits(struct strbuf *sb, struct server *srv, uint64_t value)
{
    strbuf_puts(sb, "{\"visits\":");
    strbuf_u64(sb, value);
    strbuf_puts(sb, ",\"pod\":\"");
    strbuf_puts(sb, srv->pod_json);
    strbuf_puts(sb, "\"}\n");
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
        strbuf_printf(&sb, "<li><a href=\"%s\">%s</a> (%s)</li>\n", routes[r].path, routes[r].path,
                      routes[r].purpose);
    }
    strbuf_puts(&sb, "</ul>\n</body>\n</html>\n");
    return sb.oom ? NULL : sb.data;
}

static void respond_page(h2o_req_t *req, uint64_t value)
{
    struct worker *w = worker_of(req->conn->ctx);
    struct server *srv = w->srv;
    struct strbuf *sb = respond_scratch();
    if (respond_negotiate(req, RESPOND_HTML) == RESPOND_JSON) {
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
    respond_page_head(sb, "Visit ", value, "");
    strbuf_puts(sb, "<h1>Visit number ");
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
    h2o_req_t *req; /* NULL once the client went away */
    struct respond_guard *guard;
};

static void on_client_gone(void *data)
{
    struct visit_req *vr = data;
    vr->req = NULL;
}

static void submit_visit(h2o_req_t *req)
{
    struct worker *w = worker_of(req->conn->ctx);
    struct visit_req *vr = calloc(1, sizeof(*vr));
    if (vr == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    vr->req = req;
    vr->guard = respond_guard(req, on_client_gone, vr);
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
    respond_header(req, H2O_TOKEN_RETRY_AFTER, "1");
    respond_error(req, 503, "Service Unavailable", msg);
}

void routes_on_visit(struct committer_visit *v, void *data)
{
    struct worker *w = data;
    struct visit_req *vr = H2O_STRUCT_FROM_MEMBER(struct visit_req, visit, v);
    if (vr->req != NULL) {
        respond_guard_release(vr->guard);
        answer_visit(vr->req, v, w->srv->cfg.counter_path);
    }
    free(vr);
}

/* ---- the other routes --------------------------------------------------------------- */

static void handle_visits(h2o_req_t *req)
{
    struct server *srv = server_of(req);
    struct strbuf *sb = respond_scratch();
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
    struct strbuf *sb = respond_scratch();
    strbuf_puts(sb, "{\"status\":\"not ready\",\"reason\":\"");
    strbuf_json(sb, view.reason, strlen(view.reason));
    strbuf_puts(sb, "\"}\n");
    respond_sb(req, 503, "Service Unavailable", "application/json", sb);
}

static void handle_metrics(h2o_req_t *req)
{
    struct strbuf *sb = respond_scratch();
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
    const struct route *r = &routes[route];
    if ((r->methods & METHOD_BIT(method)) == 0 || method == METHOD_OTHER) {
        char allow[64], msg[160];
        route_methods(r, ", ", allow, sizeof(allow));
        respond_header(req, H2O_TOKEN_ALLOW, allow);
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
