/*
 * router.h: the first handler of "/". It answers what no route takes (404 for an unknown
 * path, 405 for a method the route does not allow) and passes every other request to the
 * handler of its route. Those handlers are created on the same path, after the router, so
 * that libh2o gives each its per-loop context (on_context_init); libh2o never calls their
 * on_req itself, as the router takes every request and its handlers never decline one.
 *
 * Before routing, each request passes the connection's guard (guard.h: HTTP/2 limits) and
 * the framing checks (framing.h: 400 and close). An HTTP/2 request reaches its handler at
 * the end of the event loop's turn, so that a stream reset in the same burst never does.
 */
#ifndef VISITS_ROUTER_H
#define VISITS_ROUTER_H

#include "routes.h"

#include <h2o.h>

struct router;
/* Create it before any route's handler on pathconf. */
struct router *router_register(h2o_pathconf_t *pathconf);
/* route (enum route_id) is answered by handler. Every route needs one. */
void router_route(struct router *r, int route, h2o_handler_t *handler);

#endif /* VISITS_ROUTER_H */
