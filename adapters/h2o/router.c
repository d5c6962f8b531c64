/*
 * router.c: exact paths of the route table to their handlers.
 *
 * An HTTP/2 request is handed to its handler at the end of the event loop's turn, once
 * libh2o has parsed everything the client sent with it: a stream the client resets in the
 * same burst (CVE-2023-44487's rapid reset) is disposed of before it is handled, so it
 * never counts a visit nor calls a peer. HTTP/1 requests are handled at once.
 */
#include "router.h"

#include "framing.h"
#include "guard.h"
#include "respond.h"
#include "text.h"

#include <stdio.h>
#include <string.h>

struct router {
    h2o_handler_t super;
    h2o_handler_t *handlers[ROUTE_COUNT];
};

/* Per event loop: the HTTP/2 requests routed in this turn of the loop. */
struct router_loop {
    h2o_context_t *ctx;
    h2o_linklist_t deferred; /* struct deferred */
    h2o_timeout_entry_t run; /* on the context's zero timeout */
};

struct deferred {
    h2o_linklist_t link; /* unlinked once handed on or disposed of */
    h2o_req_t *req;
    h2o_handler_t *handler;
};

/* The path is the client's bytes, NUL and control characters included: escaped as JSON
 * here, never cut at a NUL. */
static void no_route(h2o_req_t *req, h2o_iovec_t path)
{
    struct strbuf *sb = respond_scratch();
    strbuf_lit(sb, "{\"status\":404,\"error\":\"no route for ");
    strbuf_json(sb, path.base, path.len);
    strbuf_lit(sb, " (see /)\"}\n");
    respond_sb(req, 404, "Not Found", "application/json", sb);
}

static void method_not_allowed(h2o_req_t *req, const struct route *r)
{
    char allow[64], msg[160];
    route_methods(r, ", ", allow, sizeof(allow));
    respond_header(req, H2O_TOKEN_ALLOW, allow);
    snprintf(msg, sizeof(msg), "method not allowed on %s (allowed: %s)", r->path, allow);
    respond_error(req, 405, "Method Not Allowed", msg);
}

/* libh2o disposes of the request (its stream was reset, its connection closed). */
static void on_deferred_dispose(void *p)
{
    struct deferred *d = p;
    if (h2o_linklist_is_linked(&d->link))
        h2o_linklist_unlink(&d->link);
}

static void run_deferred(h2o_timeout_entry_t *entry)
{
    struct router_loop *l = H2O_STRUCT_FROM_MEMBER(struct router_loop, run, entry);
    while (!h2o_linklist_is_empty(&l->deferred)) {
        struct deferred *d = H2O_STRUCT_FROM_MEMBER(struct deferred, link, l->deferred.next);
        h2o_linklist_unlink(&d->link);
        d->handler->on_req(d->handler, d->req);
    }
}

static void defer(struct router *router, h2o_handler_t *h, h2o_req_t *req)
{
    struct router_loop *l = h2o_context_get_handler_context(req->conn->ctx, &router->super);
    struct deferred *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_deferred_dispose);
    memset(d, 0, sizeof(*d));
    d->req = req;
    d->handler = h;
    h2o_linklist_insert(&l->deferred, &d->link);
    if (!h2o_timeout_is_linked(&l->run))
        h2o_timeout_link(l->ctx->loop, &l->ctx->zero_timeout, &l->run);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct router *router = (struct router *)self;
    if (guard_request(req) != 0)
        return 0; /* refused; req is gone */
    const char *bad_framing = framing_check(req);
    if (bad_framing != NULL) {
        /* Whatever follows on the connection cannot be told from this request's body. */
        req->http1_is_persistent = 0;
        respond_error(req, 400, "Bad Request", bad_framing);
        return 0;
    }
    int route = route_lookup(req->path_normalized.base, req->path_normalized.len);
    if (route == ROUTE_NONE) {
        no_route(req, req->path_normalized);
        return 0;
    }
    int method = method_lookup(req->method.base, req->method.len);
    if (method == METHOD_OTHER || (routes[route].methods & METHOD_BIT(method)) == 0) {
        method_not_allowed(req, &routes[route]);
        return 0;
    }
    h2o_handler_t *h = router->handlers[route];
    if (req->version >= 0x200) {
        defer(router, h, req);
        return 0;
    }
    return h->on_req(h, req);
}

static void on_context_init(h2o_handler_t *self, h2o_context_t *ctx)
{
    struct router_loop *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->ctx = ctx;
    h2o_linklist_init_anchor(&l->deferred);
    l->run.cb = run_deferred;
    h2o_context_set_handler_context(ctx, self, l);
}

struct router *router_register(h2o_pathconf_t *pathconf)
{
    struct router *r = (void *)h2o_create_handler(pathconf, sizeof(*r));
    r->super.on_context_init = on_context_init;
    r->super.on_req = on_req;
    return r;
}

void router_route(struct router *r, int route, h2o_handler_t *handler)
{
    r->handlers[route] = handler;
}
