/* router.c: exact paths of the route table to their handlers. */
#include "router.h"

#include "framing.h"
#include "respond.h"
#include "text.h"

#include <stdio.h>

struct router {
    h2o_handler_t super;
    h2o_handler_t *handlers[ROUTE_COUNT];
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

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct router *router = (struct router *)self;
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
    return h->on_req(h, req);
}

struct router *router_register(h2o_pathconf_t *pathconf)
{
    struct router *r = (void *)h2o_create_handler(pathconf, sizeof(*r));
    r->super.on_req = on_req;
    return r;
}

void router_route(struct router *r, int route, h2o_handler_t *handler)
{
    r->handlers[route] = handler;
}
