/* slotmap.c: sorted slot maps and their merge by maximum. */
#include "slotmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void slotmap_init(struct slotmap *m)
{
    memset(m, 0, sizeof(*m));
}

void slotmap_free(struct slotmap *m)
{
    free(m->s);
    slotmap_init(m);
}

/* Index of id, or of where it would go (with *found 0). */
static size_t search(const struct slotmap *m, const char *id, int *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->s[mid].id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

const struct slot *slotmap_find(const struct slotmap *m, const char *id)
{
    int found;
    size_t i = search(m, id, &found);
    return found ? &m->s[i] : NULL;
}

static int reserve(struct slotmap *m, size_t n)
{
    if (n <= m->cap)
        return 0;
    size_t cap = m->cap != 0 ? m->cap : 8;
    while (cap < n)
        cap *= 2;
    struct slot *s = realloc(m->s, cap * sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    m->s = s;
    m->cap = cap;
    return 0;
}

int slotmap_raise(struct slotmap *m, const char *id, uint64_t value)
{
    int found;
    size_t i = search(m, id, &found);
    if (found) {
        if (m->s[i].value >= value)
            return 0;
        m->s[i].value = value;
        return 1;
    }
    size_t len = strlen(id);
    if (len > SLOT_ID_MAX)
        return -EINVAL;
    if (m->n >= SLOTS_MAX)
        return -ENOSPC;
    if (reserve(m, m->n + 1) != 0)
        return -ENOMEM;
    memmove(&m->s[i + 1], &m->s[i], (m->n - i) * sizeof(*m->s));
    memcpy(m->s[i].id, id, len + 1);
    m->s[i].value = value;
    m->n++;
    return 1;
}

int slotmap_merge(struct slotmap *dst, const struct slotmap *src)
{
    struct slotmap out;
    size_t i = 0, j = 0;
    /* dst never holds more than SLOTS_MAX: this many of src's new slots fit */
    size_t room = dst->n < SLOTS_MAX ? SLOTS_MAX - dst->n : 0;
    int full = 0;
    slotmap_init(&out);
    if (reserve(&out, dst->n + src->n) != 0)
        return -ENOMEM;
    while (i < dst->n || j < src->n) {
        int c = i == dst->n ? 1 : j == src->n ? -1 : strcmp(dst->s[i].id, src->s[j].id);
        if (c < 0) {
            out.s[out.n++] = dst->s[i++];
        } else if (c > 0) {
            if (room > 0) {
                out.s[out.n++] = src->s[j];
                room--;
            } else {
                full = 1;
            }
            j++;
        } else {
            out.s[out.n] = dst->s[i++];
            if (src->s[j].value > out.s[out.n].value)
                out.s[out.n].value = src->s[j].value;
            out.n++;
            j++;
        }
    }
    slotmap_free(dst);
    *dst = out;
    return full ? -ENOSPC : 0;
}

int slotmap_copy(struct slotmap *dst, const struct slotmap *src)
{
    struct slotmap out;
    slotmap_init(&out);
    if (reserve(&out, src->n) != 0)
        return -ENOMEM;
    if (src->n != 0)
        memcpy(out.s, src->s, src->n * sizeof(*src->s));
    out.n = src->n;
    slotmap_free(dst);
    *dst = out;
    return 0;
}

int slotmap_equal(const struct slotmap *a, const struct slotmap *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->s[i].value != b->s[i].value || strcmp(a->s[i].id, b->s[i].id) != 0)
            return 0;
    return 1;
}

uint64_t slotmap_total(const struct slotmap *m, int *saturated)
{
    uint64_t total = 0;
    int sat = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i].value > UINT64_MAX - total) {
            total = UINT64_MAX;
            sat = 1;
        } else {
            total += m->s[i].value;
        }
    }
    if (saturated != NULL)
        *saturated = sat;
    return total;
}
