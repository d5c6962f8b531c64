/*
 * histogram.h: the counters of the metrics. Each is written by one thread only (an event
 * loop, the committer) and read by any, with relaxed atomics: a scrape may see one
 * counter a little ahead of another, never a torn value.
 */
#ifndef VISITS_HISTOGRAM_H
#define VISITS_HISTOGRAM_H

#include "text.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Single-writer increment (a plain load and store, no read-modify-write). */
static inline void counter_add(atomic_uint_fast64_t *x, uint64_t d)
{
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static inline uint64_t counter_get(atomic_uint_fast64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

#define HISTOGRAM_BOUNDS_MAX 12

/* The buckets of a histogram: upper bounds in the unit observed, ascending; one more
 * bucket (+Inf) takes what is above the last. */
struct histogram_bounds {
    size_t n;
    uint64_t le[HISTOGRAM_BOUNDS_MAX];
    /* Observed units per exported unit: 1000000000 for nanoseconds exported as seconds,
     * 1 for plain counts. */
    uint64_t unit;
};

struct histogram {
    atomic_uint_fast64_t bucket[HISTOGRAM_BOUNDS_MAX + 1]; /* not cumulative */
    atomic_uint_fast64_t sum;
};

/* The writing thread: counts one observation of v. */
void histogram_observe(struct histogram *h, const struct histogram_bounds *b, uint64_t v);

/* A reading of histograms with the same bounds, summed (zero it before the first). */
struct histogram_total {
    uint64_t bucket[HISTOGRAM_BOUNDS_MAX + 1];
    uint64_t sum;
};
void histogram_read(struct histogram_total *t, struct histogram *h);
uint64_t histogram_count(const struct histogram_total *t);

/* The series NAME_bucket (cumulative), NAME_sum and NAME_count of the Prometheus text
 * format; labels (e.g. "route=\"/\"") go into each, or NULL. The count is the +Inf
 * bucket, so that the series agree even when read while observations go on. */
void histogram_render(struct strbuf *sb, const char *name, const char *labels,
                      const struct histogram_bounds *b, const struct histogram_total *t);

#endif /* VISITS_HISTOGRAM_H */
