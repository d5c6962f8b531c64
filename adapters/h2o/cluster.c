/*
 * cluster.c: GET /cluster: the requests to the peers (peer_call.c) of one /cluster request,
 * its deadline, and its answer (cluster_view.c). A peer that turns out to be this server
 * (same pod name) is not counted twice; whatever a peer sends can only become an error
 * entry of its own.
 */
#include "cluster.h"

#include "cluster_view.h"
#include "histogram.h"
#include "peer_call.h"
#include "resolver.h"
#include "respond.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN_FLIGHT 64 /* /cluster requests one event loop serves at once */

struct cluster_handler {
    h2o_handler_t super;
    struct committer *committer;
    char *pod_name;
    struct resolver_config resolver;      /* its sources: --peers entries, then --peers-dns */
    _Atomic(struct cluster_loop *) loops; /* newest first, for the metrics */
};

/* Per event loop. */
struct cluster_loop {
    struct cluster_handler *h;
    struct resolver *resolver;
    h2o_timeout_t timeout; /* --peer-timeout-ms: the deadline of a /cluster request */
    h2o_http1client_ctx_t client_ctx;
    size_t in_flight;
    /* counted by this loop, read by the metrics */
    atomic_uint_fast64_t outcomes[PEER_OUTCOME_COUNT];
    struct resolver_counts dns;
    struct cluster_loop *next; /* set before it is published, then never changed */
};

struct cluster_req {
    struct cluster_loop *loop;
    h2o_req_t *req; /* NULL once the client went away */
    struct respond_guard *guard;
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

static void on_call_done(struct peer_call *pc)
{
    struct cluster_req *cr = pc->data;
    counter_add(&cr->loop->outcomes[pc->outcome], 1);
    cr->pending--;
    maybe_finish(cr);
}

/* Stops every request still running: each gets outcome and message. */
static void abort_calls(struct cluster_req *cr, int outcome, const char *message)
{
    cr->starting = 1; /* finish() is the caller's */
    for (size_t i = 0; i < cr->ncalls; i++)
        if (!cr->calls[i].done)
            peer_call_abort(&cr->calls[i], outcome, message);
    cr->starting = 0;
}

static void start_calls(struct cluster_req *cr, const struct peer_list *list)
{
    struct cluster_loop *l = cr->loop;
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
        pc->target = list->targets[i];
        pc->on_done = on_call_done;
        pc->data = cr;
        cr->pending++;
        peer_call_start(pc, &l->client_ctx, l->h->resolver.peer_timeout_ms);
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
                     cr->loop->h->resolver.peer_timeout_ms);
            cr->problems = p;
            cr->nproblems = 1;
        }
    }
    abort_calls(cr, PEER_TIMEOUT, NULL);
    finish(cr);
}

/* The client went away before the answer: stop asking. */
static void on_client_gone(void *data)
{
    struct cluster_req *cr = data;
    cr->req = NULL;
    cr->guard = NULL;
    abort_calls(cr, PEER_CANCELLED, "cancelled: the client went away");
    finish(cr);
}

static void answer(struct cluster_req *cr)
{
    h2o_req_t *req = cr->req;
    struct cluster_handler *h = cr->loop->h;
    struct cluster_view v;
    if (cr->oom || cluster_view_init(&v, cr->ncalls + cr->nproblems, h->pod_name,
                                     committer_value(h->committer)) != 0) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    for (size_t i = 0; i < cr->ncalls; i++) {
        struct peer_call *pc = &cr->calls[i];
        if (pc->outcome == PEER_OK)
            cluster_view_answer(&v, pc->pod, pc->visits, pc->target.label);
        else
            cluster_view_error(&v, pc->target.label, pc->error);
    }
    for (size_t i = 0; i < cr->nproblems; i++)
        cluster_view_error(&v, cr->problems[i].label, cr->problems[i].error);
    cluster_view_finish(&v);
    struct strbuf *sb = respond_scratch();
    if (respond_negotiate(req, RESPOND_JSON) == RESPOND_HTML) {
        cluster_view_html(sb, &v, h->pod_name);
        respond_sb(req, 200, "OK", "text/html; charset=utf-8", sb);
    } else {
        cluster_view_json(sb, &v);
        respond_sb(req, 200, "OK", "application/json", sb);
    }
    cluster_view_free(&v);
}

static void finish(struct cluster_req *cr)
{
    if (h2o_timeout_is_linked(&cr->deadline))
        h2o_timeout_unlink(&cr->deadline);
    resolver_cancel(&cr->wait);
    cr->loop->in_flight--;
    if (cr->guard != NULL)
        respond_guard_release(cr->guard);
    if (cr->req != NULL)
        answer(cr);
    free(cr->calls);
    free(cr->problems);
    free(cr);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct cluster_loop *l = h2o_context_get_handler_context(req->conn->ctx, self);
    if (l->in_flight >= MAX_IN_FLIGHT) {
        char msg[128];
        snprintf(msg, sizeof(msg), "too many /cluster requests in flight on this thread (%d)",
                 MAX_IN_FLIGHT);
        respond_header(req, H2O_TOKEN_RETRY_AFTER, "1");
        respond_error(req, 503, "Service Unavailable", msg);
        return 0;
    }
    struct cluster_req *cr = calloc(1, sizeof(*cr));
    if (cr == NULL) {
        respond_error(req, 500, "Internal Server Error", "out of memory");
        return 0;
    }
    cr->loop = l;
    cr->req = req;
    cr->guard = respond_guard(req, on_client_gone, cr);
    cr->deadline.cb = on_deadline;
    cr->wait.cb = on_resolved;
    l->in_flight++;
    h2o_timeout_link(req->conn->ctx->loop, &l->timeout, &cr->deadline);
    const struct peer_list *list = resolver_get(l->resolver, &cr->wait);
    if (list != NULL)
        start_calls(cr, list);
    else
        cr->resolving = 1;
    maybe_finish(cr);
    return 0;
}

static void on_context_init(h2o_handler_t *self, h2o_context_t *ctx)
{
    struct cluster_handler *h = (struct cluster_handler *)self;
    struct cluster_loop *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->h = h;
    h2o_timeout_init(ctx->loop, &l->timeout, h->resolver.peer_timeout_ms);
    l->client_ctx.loop = ctx->loop;
    l->client_ctx.getaddr_receiver = &ctx->receivers.hostinfo_getaddr;
    l->client_ctx.io_timeout = &l->timeout;
    l->resolver =
        resolver_create(ctx->loop, &ctx->receivers.hostinfo_getaddr, &h->resolver, &l->dns);
    h2o_context_set_handler_context(ctx, self, l);
    l->next = atomic_load(&h->loops);
    while (!atomic_compare_exchange_weak(&h->loops, &l->next, l))
        ;
}

h2o_handler_t *cluster_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg)
{
    struct cluster_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    size_t n = cfg->npeers + (cfg->peers_dns != NULL);
    struct peer_source *sources = h2o_mem_alloc((n + 1) * sizeof(*sources));
    if (cfg->npeers != 0)
        memcpy(sources, cfg->peers, cfg->npeers * sizeof(*sources));
    if (cfg->peers_dns != NULL)
        sources[cfg->npeers] = *cfg->peers_dns;
    h->committer = cfg->committer;
    h->pod_name = h2o_strdup(NULL, cfg->pod_name, SIZE_MAX).base;
    h->resolver = (struct resolver_config){sources, n, h2o_strdup(NULL, cfg->bind, SIZE_MAX).base,
                                           cfg->port, cfg->peer_timeout_ms};
    atomic_init(&h->loops, NULL);
    h->super.on_context_init = on_context_init;
    h->super.on_req = on_req;
    return &h->super;
}

void cluster_metrics(h2o_handler_t *cluster, struct strbuf *sb)
{
    struct cluster_handler *h = (struct cluster_handler *)cluster;
    strbuf_puts(sb, "# HELP visits_peer_requests_total Requests of GET /cluster to the peers' "
                    "/visits, by outcome.\n"
                    "# TYPE visits_peer_requests_total counter\n");
    for (int o = 0; o < PEER_OUTCOME_COUNT; o++) {
        uint64_t n = 0;
        for (struct cluster_loop *l = atomic_load(&h->loops); l != NULL; l = l->next)
            n += counter_get(&l->outcomes[o]);
        strbuf_printf(sb, "visits_peer_requests_total{outcome=\"%s\"} %" PRIu64 "\n",
                      peer_outcome_name(o), n);
    }
    uint64_t ok = 0, failed = 0;
    for (struct cluster_loop *l = atomic_load(&h->loops); l != NULL; l = l->next) {
        ok += counter_get(&l->dns.ok);
        failed += counter_get(&l->dns.failed);
    }
    strbuf_printf(sb,
                  "# HELP visits_peer_dns_lookups_total Resolutions of peer names (--peers, "
                  "--peers-dns), by result.\n"
                  "# TYPE visits_peer_dns_lookups_total counter\n"
                  "visits_peer_dns_lookups_total{result=\"ok\"} %" PRIu64 "\n"
                  "visits_peer_dns_lookups_total{result=\"error\"} %" PRIu64 "\n",
                  ok, failed);
}
