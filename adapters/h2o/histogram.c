/* histogram.c: histograms of the metrics and their Prometheus text form. */
#include "histogram.h"

#include <inttypes.h>
#include <stdio.h>

void histogram_observe(struct histogram *h, const struct histogram_bounds *b, uint64_t v)
{
    size_t i = 0;
    while (i < b->n && v > b->le[i])
        i++;
    counter_add(&h->bucket[i], 1);
    counter_add(&h->sum, v);
}

void histogram_read(struct histogram_total *t, struct histogram *h)
{
    for (size_t i = 0; i <= HISTOGRAM_BOUNDS_MAX; i++)
        t->bucket[i] += counter_get(&h->bucket[i]);
    t->sum += counter_get(&h->sum);
}

uint64_t histogram_count(const struct histogram_total *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= HISTOGRAM_BOUNDS_MAX; i++)
        n += t->bucket[i];
    return n;
}

void histogram_render(struct strbuf *sb, const char *name, const char *labels,
                      const struct histogram_bounds *b, const struct histogram_total *t)
{
    const char *sep = labels != NULL ? "," : "";
    uint64_t cum = 0;
    if (labels == NULL)
        labels = "";
    for (size_t i = 0; i <= b->n; i++) {
        cum += t->bucket[i];
        char le[24];
        if (i == b->n)
            snprintf(le, sizeof(le), "+Inf");
        else if (b->unit == 1)
            snprintf(le, sizeof(le), "%" PRIu64, b->le[i]);
        else
            snprintf(le, sizeof(le), "%g", (double)b->le[i] / (double)b->unit);
        strbuf_printf(sb, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep, le, cum);
    }
    const char *open = *labels != '\0' ? "{" : "", *close = *labels != '\0' ? "}" : "";
    if (b->unit == 1)
        strbuf_printf(sb, "%s_sum%s%s%s %" PRIu64 "\n", name, open, labels, close, t->sum);
    else
        strbuf_printf(sb, "%s_sum%s%s%s %.9f\n", name, open, labels, close,
                      (double)t->sum / (double)b->unit);
    strbuf_printf(sb, "%s_count%s%s%s %" PRIu64 "\n", name, open, labels, close, cum);
}
