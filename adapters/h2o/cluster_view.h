/*
 * cluster_view.h: the answer of GET /cluster: every pod once, with its count or what went
 * wrong, and the total, as JSON or as an HTML page.
 */
#ifndef VISITS_CLUSTER_VIEW_H
#define VISITS_CLUSTER_VIEW_H

#include "text.h"

#include <stddef.h>
#include <stdint.h>

struct cluster_entry {
    const char *pod; /* NULL: unknown */
    uint64_t visits;
    const char *address;
    const char *error; /* NULL: ok */
    char overflow[64];
};

/* The strings it points to are the caller's, and must outlive the view. */
struct cluster_view {
    struct cluster_entry *e; /* malloc'd */
    size_t n;
    uint64_t total;
    int complete; /* every entry ok */
};

/* Room for max entries; the first is this server's own pod and count. 0 or -ENOMEM. */
int cluster_view_init(struct cluster_view *v, size_t max, const char *pod, uint64_t visits);
/* A peer's answer. A pod already in the view (reachable at two addresses, IPv4 and IPv6)
 * stays one entry, with the larger count; this server's own pod keeps its count from
 * memory. */
void cluster_view_answer(struct cluster_view *v, const char *pod, uint64_t visits,
                         const char *address);
/* A peer, or a name, that gave no count. */
void cluster_view_error(struct cluster_view *v, const char *address, const char *error);
/* Orders the entries (pods that answered first, by name) and sums the total; a count that
 * would overflow it becomes an error. */
void cluster_view_finish(struct cluster_view *v);
void cluster_view_json(struct strbuf *sb, const struct cluster_view *v);
/* The page, saying which pod was asked. */
void cluster_view_html(struct strbuf *sb, const struct cluster_view *v, const char *asked);
void cluster_view_free(struct cluster_view *v);

#endif /* VISITS_CLUSTER_VIEW_H */
