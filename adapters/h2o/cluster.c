/*
 * cluster.c: GET /cluster, every pod's count and the total.
 *
 * The event loop that takes the request asks every peer (peers.c) for its GET /visits at
 * once, with libh2o's asynchronous HTTP/1 client, and answers when all of them have
 * answered or failed, or when --peer-timeout-ms has passed since the request arrived,
 * whichever comes first; peers that did not answer in time are reported as errors and the
 * answer says "complete":false. This server's own count comes from memory, never over the
 * network, and a peer that turns out to be this server (same pod name) is not counted
 * twice. A peer's answer is read with a size limit and a strict JSON reader (json.c):
 * whatever a peer sends, it can only become an error entry of its own. Nothing here
 * counts a visit or touches the disk.
 */
#include "server.h"

#include "respond.h"

#include <errno.h>
#include <h2o/http1client.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const peer_outcome_names[PEER_OUTCOME_COUNT] = {
    [PEER_OK] = "ok",
    [PEER_TIMEOUT] = "timeout",
    [PEER_CONNECT_ERROR] = "connect_error",
    [PEER_IO_ERROR] = "io_error",
    [PEER_BAD_STATUS] = "bad_status",
    [PEER_BAD_BODY] = "bad_body",
    [PEER_TOO_LARGE] = "too_large",
    [PEER_CANCELLED] = "cancelled",
};

struct cluster_worker {
    struct worker *w;
    struct peer_source *sources; /* --peers entries, then the --peers-dns name */
    struct resolver_config resolver_cfg;
    struct resolver *resolver;
    h2o_timeout_t timeout; /* --peer-timeout-ms: the deadline of a /cluster request */
    h2o_http1client_ctx_t client_ctx;
    h2o_linklist_t requests; /* struct cluster_req in flight */
    size_t in_flight;
};

struct cluster_req;

/* One request to one peer. */
struct peer_call {
    struct cluster_req *cr;
    h2o_http1client_t *client; /* while libh2o's client is alive */
    struct peer_target target;
    char request[256];
    h2o_iovec_t reqvec;
    struct strbuf body;
    int done;
    int outcome;
    uint64_t visits;
    char pod[254];
    char error[256];
};

struct cluster_guard {
    struct cluster_req *cr;
};

struct cluster_req {
    struct cluster_worker *cw;
    h2o_req_t *req; /* NULL once the client went away */
    struct cluster_guard *guard;
    h2o_linklist_t link;
    h2o_timeout_entry_t deadline;
    struct resolve_wait wait;
    int resolving; /* waiting for the peer list */
    int oom;       /* answer 500 */
    int starting;  /* inside start_calls(): a synchronous failure must not finish yet */
    struct peer_call *calls;
    size_t ncalls;
    size_t pending;
    struct peer_problem *problems;
    size_t nproblems;
};

static void finish(struct cluster_req *cr);

static void maybe_finish(struct cluster_req *cr)
{
    if (!cr->starting && !cr->resolving && cr->pending == 0)
        finish(cr);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
call_done(struct peer_call *pc, int outcome, const char *fmt, ...)
{
    struct cluster_req *cr = pc->cr;
    pc->client = NULL; /* libh2o closes (or has closed) it */
    pc->done = 1;
    pc->outcome = outcome;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pc->error, sizeof(pc->error), fmt, ap);
        va_end(ap);
    }
    strbuf_free(&pc->body);
    counter_add(&cr->cw->w->metrics.peer_requests[outcome], 1);
    cr->pending--;
    maybe_finish(cr);
}

/* libh2o's timeouts of its own ("connection timeout", "I/O timeout") are ours too. */
static int is_timeout(const char *errstr)
{
    return errstr != NULL && strstr(errstr, "timeout") != NULL;
}

static void timeout_done(struct peer_call *pc)
{
    call_done(pc, PEER_TIMEOUT, "timeout (no answer within %u ms)",
              pc->cr->cw->w->srv->cfg.peer_timeout_ms);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    struct peer_call *pc = client->data;
    h2o_buffer_t *in = client->sock->input;
    if (in->size != 0) {
        if (pc->body.len + in->size > PEER_BODY_MAX) {
            call_done(pc, PEER_TOO_LARGE, "response body over %d bytes", PEER_BODY_MAX);
            return -1;
        }
        strbuf_add(&pc->body, in->bytes, in->size);
        h2o_buffer_consume(&client->sock->input, in->size);
        if (pc->body.oom) {
            call_done(pc, PEER_IO_ERROR, "out of memory reading the response");
            return -1;
        }
    }
    if (errstr == NULL)
        return 0;
    if (errstr != h2o_http1client_error_is_eos) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_IO_ERROR, "response cut after %zu body bytes: %s", pc->body.len,
                      errstr);
        return -1;
    }
    char err[200];
    if (peer_answer_parse(pc->body.data != 0 ? pc->body.data : "", pc->body.len, &pc->visits,
                          pc->pod, sizeof(pc->pod), err, sizeof(err)) != 0) {
        call_done(pc, PEER_BAD_BODY, "bad answer to GET /visits: %s", err);
        return -1;
    }
    call_done(pc, PEER_OK, NULL);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr,
                                       int minor_version, int status, h2o_iovec_t msg,
                                       h2o_header_t *headers, size_t num_headers, int rlen)
{
    (void)minor_version;
    (void)rlen;
    struct peer_call *pc = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_IO_ERROR, "no valid response: %s", errstr);
        return NULL;
    }
    if (status != 200) {
        if (status >= 300 && status < 400) {
            h2o_iovec_t location = h2o_iovec_init(H2O_STRLIT("(no Location)"));
            for (size_t i = 0; i < num_headers; i++)
                if (headers[i].name == &H2O_TOKEN_LOCATION->buf)
                    location = headers[i].value;
            call_done(pc, PEER_BAD_STATUS, "redirect (status %d to %.*s) not followed", status,
                      (int)(location.len < 120 ? location.len : 120), location.base);
        } else {
            call_done(pc, PEER_BAD_STATUS, "status %d %.*s", status,
                      (int)(msg.len < 60 ? msg.len : 60), msg.base);
        }
        return NULL;
    }
    if (errstr == h2o_http1client_error_is_eos) {
        call_done(pc, PEER_BAD_BODY, "bad answer to GET /visits: empty response");
        return NULL;
    }
    for (size_t i = 0; i < num_headers; i++) {
        if (headers[i].name != &H2O_TOKEN_CONTENT_LENGTH->buf)
            continue;
        size_t len = h2o_strtosize(headers[i].value.base, headers[i].value.len);
        if (len != SIZE_MAX && len > PEER_BODY_MAX) {
            call_done(pc, PEER_TOO_LARGE, "response body of %zu bytes (limit %d)", len,
                      PEER_BODY_MAX);
            return NULL;
        }
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr,
                                          h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    struct peer_call *pc = client->data;
    if (errstr != NULL) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_CONNECT_ERROR, "cannot connect: %s",
                      strcmp(errstr, "socket create error") == 0 ||
                              strcmp(errstr, "connection failure") == 0
                          ? "connection refused or host unreachable"
                          : errstr);
        return NULL;
    }
    *reqbufs = &pc->reqvec;
    *reqbufcnt = 1;
    *method_is_head = 0;
    return on_head;
}

/* Stops every request still running: each gets outcome and message. */
static void abort_calls(struct cluster_req *cr, int outcome, const char *message)
{
    cr->starting = 1; /* finish() is the caller's */
    for (size_t i = 0; i < cr->ncalls; i++) {
        struct peer_call *pc = &cr->calls[i];
        if (pc->done)
            continue;
        if (pc->client != NULL)
            h2o_http1client_cancel(pc->client);
        if (outcome == PEER_TIMEOUT)
            timeout_done(pc);
        else
            call_done(pc, outcome, "%s", message);
    }
    cr->starting = 0;
}

static void start_calls(struct cluster_req *cr, const struct peer_list *list)
{
    struct cluster_worker *cw = cr->cw;
    size_t n = 0;
    for (size_t i = 0; i < list->ntargets; i++)
        n += !list->targets[i].self;
    cr->calls = n != 0 ? calloc(n, sizeof(*cr->calls)) : NULL;
    cr->problems = list->nproblems != 0 ? calloc(list->nproblems, sizeof(*cr->problems)) : NULL;
    if ((n != 0 && cr->calls == NULL) || (list->nproblems != 0 && cr->problems == NULL)) {
        cr->oom = 1;
        return;
    }
    if (list->nproblems != 0)
        memcpy(cr->problems, list->problems, list->nproblems * sizeof(*cr->problems));
    cr->nproblems = list->nproblems;
    cr->starting = 1;
    for (size_t i = 0; i < list->ntargets; i++) {
        if (list->targets[i].self)
            continue;
        struct peer_call *pc = &cr->calls[cr->ncalls++];
        pc->cr = cr;
        pc->target = list->targets[i];
        int len = snprintf(pc->request, sizeof(pc->request),
                           "GET /visits HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                           "User-Agent: " SERVER_NAME "/" VISITS_VERSION_STRING
                           " (cluster view)\r\nConnection: close\r\n\r\n",
                           pc->target.label);
        pc->reqvec = h2o_iovec_init(pc->request, (size_t)len);
        cr->pending++;
        h2o_http1client_connect(&pc->client, pc, &cw->client_ctx,
                                h2o_iovec_init(pc->target.host, strlen(pc->target.host)),
                                pc->target.port, 0, on_connect);
    }
    cr->starting = 0;
}

static void on_resolved(struct resolve_wait *wait, const struct peer_list *list)
{
    struct cluster_req *cr = H2O_STRUCT_FROM_MEMBER(struct cluster_req, wait, wait);
    cr->resolving = 0;
    start_calls(cr, list);
    maybe_finish(cr);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    struct cluster_req *cr = H2O_STRUCT_FROM_MEMBER(struct cluster_req, deadline, entry);
    if (cr->resolving) {
        resolver_cancel(&cr->wait);
        cr->resolving = 0;
        struct peer_problem *p = calloc(1, sizeof(*p));
        if (p != NULL) {
            snprintf(p->label, sizeof(p->label), "(peer names)");
            snprintf(p->error, sizeof(p->error), "peer names not resolved within %u ms",
                     cr->cw->w->srv->cfg.peer_timeout_ms);
            cr->problems = p;
            cr->nproblems = 1;
        }
    }
    abort_calls(cr, PEER_TIMEOUT, NULL);
    finish(cr);
}

static void on_guard_dispose(void *p)
{
    struct cluster_guard *g = p;
    struct cluster_req *cr = g->cr;
    if (cr == NULL)
        return;
    /* The client went away before the answer: stop asking. */
    cr->req = NULL;
    cr->guard = NULL;
    abort_calls(cr, PEER_CANCELLED, "cancelled: the client went away");
    finish(cr);
}

/* ---- the answer ------------------------------------------------------------------------ */

struct entry {
    const char *pod; /* NULL: unknown ("?") */
    uint64_t visits;
    const char *address;
    const char *error; /* NULL: ok */
    char overflow[64];
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if ((x->error == NULL) != (y->error == NULL))
        return x->error == NULL ? -1 : 1; /* pods that answered first */
    if (x->pod != NULL && y->pod != NULL) {
        int c = strcmp(x->pod, y->pod);
        if (c != 0)
            return c;
    } else if ((x->pod == NULL) != (y->pod == NULL)) {
        return x->pod != NULL ? -1 : 1;
    }
    return strcmp(x->address != NULL ? x->address : "", y->address != NULL ? y->address : "");
}

/* Every pod once: this server from memory, peers that answered (one entry per pod name:
 * a pod reachable at two addresses, IPv4 and IPv6, answers twice), then the failures. */
static struct entry *collect(struct cluster_req *cr, size_t *count, uint64_t *total, int *complete)
{
    struct server *srv = cr->cw->w->srv;
    struct entry *e = calloc(1 + cr->ncalls + cr->nproblems, sizeof(*e));
    size_t n = 0;
    if (e == NULL)
        return NULL;
    e[n].pod = srv->cfg.pod_name;
    e[n++].visits = committer_value(srv->committer);
    for (size_t i = 0; i < cr->ncalls; i++) {
        struct peer_call *pc = &cr->calls[i];
        if (pc->outcome != PEER_OK) {
            e[n].address = pc->target.label;
            e[n++].error = pc->error;
            continue;
        }
        size_t j = 0;
        while (j < n && !(e[j].error == NULL && strcmp(e[j].pod, pc->pod) == 0))
            j++;
        if (j == 0)
            continue; /* this server itself, under another address: counted from memory */
        if (j < n) {
            if (pc->visits > e[j].visits)
                e[j].visits = pc->visits;
            continue;
        }
        e[n].pod = pc->pod;
        e[n].address = pc->target.label;
        e[n++].visits = pc->visits;
    }
    for (size_t i = 0; i < cr->nproblems; i++) {
        e[n].address = cr->problems[i].label;
        e[n++].error = cr->problems[i].error;
    }
    qsort(e, n, sizeof(*e), entry_cmp);
    *total = 0;
    *complete = 1;
    for (size_t i = 0; i < n; i++) {
        if (e[i].error == NULL && e[i].visits > UINT64_MAX - *total) {
            snprintf(e[i].overflow, sizeof(e[i].overflow),
                     "its count %llu would overflow the total", (unsigned long long)e[i].visits);
            e[i].error = e[i].overflow;
        }
        if (e[i].error != NULL)
            *complete = 0;
        else
            *total += e[i].visits;
    }
    *count = n;
    return e;
}

static void render_json(struct strbuf *sb, const struct entry *e, size_t n, uint64_t total,
                        int complete)
{
    strbuf_puts(sb, "{\"total\":");
    strbuf_u64(sb, total);
    strbuf_puts(sb, complete ? ",\"complete\":true,\"pods\":[" : ",\"complete\":false,\"pods\":[");
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(sb, i == 0 ? "{\"pod\":\"" : ",{\"pod\":\"");
        if (e[i].pod != NULL)
            strbuf_json(sb, e[i].pod, strlen(e[i].pod));
        else
            strbuf_puts(sb, "?");
        if (e[i].error == NULL) {
            strbuf_puts(sb, "\",\"visits\":");
            strbuf_u64(sb, e[i].visits);
            strbuf_puts(sb, ",\"ok\":true}");
        } else {
            strbuf_puts(sb, "\",\"address\":\"");
            strbuf_json(sb, e[i].address, strlen(e[i].address));
            strbuf_puts(sb, "\",\"ok\":false,\"error\":\"");
            strbuf_json(sb, e[i].error, strlen(e[i].error));
            strbuf_puts(sb, "\"}");
        }
    }
    strbuf_puts(sb, "]}\n");
}

static void html_text(struct strbuf *sb, const char *s)
{
    strbuf_html(sb, s, strlen(s));
}

static void render_html(struct strbuf *sb, struct server *srv, const struct entry *e, size_t n,
                        uint64_t total, int complete)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += e[i].error != NULL;
    respond_page_head(sb, "Cluster: ", total, " visits");
    strbuf_puts(sb, "<h1>Cluster total: ");
    strbuf_u64(sb, total);
    strbuf_puts(sb, " visits</h1>\n<p>");
    strbuf_u64(sb, n - failed);
    strbuf_puts(sb, n - failed == 1 ? " pod answered" : " pods answered");
    if (complete) {
        strbuf_puts(sb, "; the total is complete.");
    } else {
        strbuf_puts(sb, "; <strong>incomplete</strong>: ");
        strbuf_u64(sb, failed);
        strbuf_puts(sb, failed == 1 ? " peer did not answer." : " peers did not answer.");
    }
    strbuf_puts(sb, " Asked by pod <strong>");
    strbuf_puts(sb, srv->pod_html);
    strbuf_puts(sb, "</strong>.</p>\n<table>\n<thead><tr><th>Pod</th><th>Visits</th>"
                    "<th>Status</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(sb, "<tr><td>");
        if (e[i].error == NULL) {
            html_text(sb, e[i].pod);
            strbuf_puts(sb, "</td><td>");
            strbuf_u64(sb, e[i].visits);
            strbuf_puts(sb, "</td><td>ok</td></tr>\n");
        } else {
            strbuf_puts(sb, "? (");
            html_text(sb, e[i].address);
            strbuf_puts(sb, ")</td><td></td><td>error: ");
            html_text(sb, e[i].error);
            strbuf_puts(sb, "</td></tr>\n");
        }
    }
    strbuf_puts(sb, "</tbody>\n<tfoot><tr><th>Total</th><th>");
    strbuf_u64(sb, total);
    strbuf_puts(sb, complete ? "</th><th>complete</th></tr></tfoot>\n"
                             : "</th><th>incomplete</th></tr></tfoot>\n");
    strbuf_puts(sb, "</table>\n<p><a href=\"/cluster\">Refresh</a> &middot; "
                    "<a href=\"/\">Visit</a> (counts one visit on the pod that serves it)</p>\n"
                    "</body>\n</html>\n");
}

static void answer(struct cluster_req *cr)
{
    h2o_req_t *req = cr->req;
    size_t n;
    uint64_t total;
    int complete;
    struct entry *e = cr->oom ? NULL : collect(cr, &n, &total, &complete);
    if (e == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    struct strbuf *sb = respond_scratch();
    if (respond_negotiate(req, RESPOND_JSON) == RESPOND_HTML) {
        render_html(sb, cr->cw->w->srv, e, n, total, complete);
        respond_sb(req, 200, "OK", "text/html; charset=utf-8", sb);
    } else {
        render_json(sb, e, n, total, complete);
        respond_sb(req, 200, "OK", "application/json", sb);
    }
    free(e);
}

static void finish(struct cluster_req *cr)
{
    if (h2o_timeout_is_linked(&cr->deadline))
        h2o_timeout_unlink(&cr->deadline);
    resolver_cancel(&cr->wait);
    h2o_linklist_unlink(&cr->link);
    cr->cw->in_flight--;
    if (cr->guard != NULL)
        cr->guard->cr = NULL;
    if (cr->req != NULL)
        answer(cr);
    for (size_t i = 0; i < cr->ncalls; i++)
        strbuf_free(&cr->calls[i].body);
    free(cr->calls);
    free(cr->problems);
    free(cr);
}

void cluster_handle(h2o_req_t *req)
{
    struct worker *w = worker_of(req->conn->ctx);
    struct cluster_worker *cw = w->cluster;
    if (cw->in_flight >= CLUSTER_MAX_IN_FLIGHT) {
        char msg[128];
        snprintf(msg, sizeof(msg), "too many /cluster requests in flight on this thread (%d)",
                 CLUSTER_MAX_IN_FLIGHT);
        respond_header(req, H2O_TOKEN_RETRY_AFTER, "1");
        respond_error(req, 503, "Service Unavailable", msg);
        return;
    }
    struct cluster_req *cr = calloc(1, sizeof(*cr));
    if (cr == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    cr->cw = cw;
    cr->req = req;
    cr->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*cr->guard), on_guard_dispose);
    cr->guard->cr = cr;
    cr->deadline.cb = on_deadline;
    cr->wait.cb = on_resolved;
    h2o_linklist_insert(&cw->requests, &cr->link);
    cw->in_flight++;
    h2o_timeout_link(w->ctx.loop, &cw->timeout, &cr->deadline);
    const struct peer_list *list = resolver_get(cw->resolver, &cr->wait);
    if (list != NULL)
        start_calls(cr, list);
    else
        cr->resolving = 1;
    maybe_finish(cr);
}

int cluster_worker_init(struct worker *w)
{
    struct cluster_worker *cw = calloc(1, sizeof(*cw));
    if (cw == NULL)
        return -ENOMEM;
    cw->w = w;
    h2o_linklist_init_anchor(&cw->requests);
    h2o_timeout_init(w->ctx.loop, &cw->timeout, w->srv->cfg.peer_timeout_ms);
    cw->client_ctx.loop = w->ctx.loop;
    cw->client_ctx.getaddr_receiver = &w->ctx.receivers.hostinfo_getaddr;
    cw->client_ctx.io_timeout = &cw->timeout;
    const struct server_config *cfg = &w->srv->cfg;
    size_t n = cfg->npeers + (cfg->peers_dns.host[0] != '\0');
    cw->sources = calloc(n + 1, sizeof(*cw->sources));
    if (cw->sources == NULL) {
        free(cw);
        return -ENOMEM;
    }
    if (cfg->npeers != 0)
        memcpy(cw->sources, cfg->peers, cfg->npeers * sizeof(*cw->sources));
    if (cfg->peers_dns.host[0] != '\0')
        cw->sources[cfg->npeers] = cfg->peers_dns;
    cw->resolver_cfg =
        (struct resolver_config){cw->sources, n, cfg->bind, w->srv->port, cfg->peer_timeout_ms};
    int err = resolver_create(&cw->resolver, w->ctx.loop, &w->ctx.receivers.hostinfo_getaddr,
                              &cw->resolver_cfg, &w->metrics.dns);
    if (err != 0) {
        free(cw->sources);
        free(cw);
        return err;
    }
    w->cluster = cw;
    return 0;
}
