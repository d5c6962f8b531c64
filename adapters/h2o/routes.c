/* routes.c: the route table and its lookups. */
#include "routes.h"

#include <string.h>

#define GET_HEAD (METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD))

const struct route routes[ROUTE_COUNT] = {
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

static int is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(s, name, len) == 0;
}

int route_lookup(const char *path, size_t len)
{
    for (int i = 0; i < ROUTE_COUNT; i++)
        if (is(path, len, routes[i].path))
            return i;
    return ROUTE_NONE;
}

const char *route_label(int route)
{
    return route >= 0 && route < ROUTE_COUNT ? routes[route].path : "unknown";
}

int method_lookup(const char *name, size_t len)
{
    for (int i = 0; i < METHOD_OTHER; i++)
        if (is(name, len, method_names[i]))
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

void routes_print(FILE *out, const char *indent, int width)
{
    char methods[64];
    for (int i = 0; i < ROUTE_COUNT; i++)
        fprintf(out, "%s%-*s %-*s %s\n", indent, width, routes[i].path, width,
                route_methods(&routes[i], ",", methods, sizeof(methods)), routes[i].purpose);
}
