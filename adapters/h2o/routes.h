/*
 * routes.h: the route table, as data. The router, --print-routes, the usage text, the
 * links of the HTML page and the labels of the metrics all read it.
 */
#ifndef VISITS_ROUTES_H
#define VISITS_ROUTES_H

#include <stddef.h>
#include <stdio.h>

enum route_id {
    ROUTE_ROOT,
    ROUTE_VISITS,
    ROUTE_CLUSTER,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_METRICS,
    ROUTE_COUNT
};
#define ROUTE_NONE ROUTE_COUNT /* unknown path (404), a metrics label too */

enum method_id {
    METHOD_GET,
    METHOD_HEAD,
    METHOD_POST,
    METHOD_PUT,
    METHOD_DELETE,
    METHOD_PATCH,
    METHOD_OPTIONS,
    METHOD_OTHER,
    METHOD_COUNT
};
#define METHOD_BIT(m) (1u << (m))

struct route {
    const char *path;
    unsigned methods;    /* METHOD_BIT()s */
    const char *purpose; /* one word */
};
/* Indexed by enum route_id. */
extern const struct route routes[ROUTE_COUNT];

/* The route of an exact path: enum route_id, or ROUTE_NONE. */
int route_lookup(const char *path, size_t len);
/* "/" style, or "unknown" for ROUTE_NONE (a metrics label). */
const char *route_label(int route);
/* enum method_id of a method name; METHOD_OTHER for any name not in the enum. */
int method_lookup(const char *name, size_t len);
const char *method_name(int method);
/* The route's methods, "GET,HEAD" style, into buf (sep between them: "," or ", "). */
const char *route_methods(const struct route *r, const char *sep, char *buf, size_t size);
/* One line per route: path, methods and purpose, after indent, in columns of width (0:
 * separated by one space). */
void routes_print(FILE *out, const char *indent, int width);

#endif /* VISITS_ROUTES_H */
