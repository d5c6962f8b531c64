/*
 * cluster_view.h: the answer of GET /cluster, from this pod's copy of the count: the
 * total, every pod (its slots grouped by pod name, their sum, whether it answered the
 * last exchange and how old its last answer is) and the peers of the last round, as JSON
 * or as an HTML page with one bar per pod.
 */
#ifndef VISITS_CLUSTER_VIEW_H
#define VISITS_CLUSTER_VIEW_H

#include "exchange.h"
#include "slotmap.h"
#include "text.h"

#include <stddef.h>
#include <stdint.h>

struct cluster_slot {
    char volume[SLOT_VOLUME_LEN + 1];
    uint64_t visits;
};

struct cluster_pod {
    char pod[SLOT_POD_MAX + 1];
    uint64_t visits; /* its slots' sum (saturating) */
    struct cluster_slot *slots;
    size_t nslots;
    int self;       /* the pod that answers (by its slot's name) */
    int answered;   /* it answered the last exchange (self: always) */
    int64_t age_ms; /* since its last answer; -1: none since this pod started */
};

struct cluster_view {
    const char *pod;    /* the pod that answers */
    const char *own_id; /* its slot */
    uint64_t total;     /* every slot's sum, at most UINT64_MAX */
    int saturated;      /* ... it would have been more */
    size_t nslots;
    struct cluster_pod *pods; /* malloc'd, by name */
    size_t npods;
    struct cluster_slot *slot_store; /* malloc'd, the pods' slots */
    const struct exchange_view *ex;  /* peers of the last round (the caller's) */
    int64_t round_age_ms;            /* since the last exchange; -1: none yet */
    uint64_t now_ms;
};

/* Builds the view of pod (own_id, own_value) and its replicas; ex and the strings must
 * outlive it. 0 or -ENOMEM. */
int cluster_view_build(struct cluster_view *v, const char *pod, const char *own_id,
                       uint64_t own_value, const struct slotmap *replicas,
                       const struct exchange_view *ex, uint64_t now_ms);
void cluster_view_json(struct strbuf *sb, const struct cluster_view *v);
void cluster_view_html(struct strbuf *sb, const struct cluster_view *v);
void cluster_view_free(struct cluster_view *v);

#endif /* VISITS_CLUSTER_VIEW_H */
