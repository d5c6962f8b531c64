/*
 * slotmap.h: a set of slots and their values, the state of the replicated count (a
 * grow-only counter: one slot per volume, merged by taking each slot's maximum).
 *
 * The entries are kept sorted by id, so that two maps merge in one pass and compare
 * entry by entry. Nothing here does I/O or takes a lock: the caller owns the map.
 */
#ifndef VISITS_SLOTMAP_H
#define VISITS_SLOTMAP_H

#include "slotid.h"

#include <stddef.h>
#include <stdint.h>

#define SLOTS_MAX 4096 /* slots one map holds at most (a peer's answer, this pod's table) */

struct slot {
    char id[SLOT_ID_MAX + 1]; /* a valid slot id (slotid.h) */
    uint64_t value;
};

struct slotmap {
    struct slot *s; /* malloc'd, sorted by id, ids unique */
    size_t n, cap;
};

void slotmap_init(struct slotmap *m);
void slotmap_free(struct slotmap *m);
/* The entry of id, or NULL. */
const struct slot *slotmap_find(const struct slotmap *m, const char *id);
/* Raises id to at least value, adding it when missing. Returns 1 when the map changed, 0
 * when it already held that much, -ENOMEM, or -ENOSPC when id is new and the map holds
 * SLOTS_MAX slots. */
int slotmap_raise(struct slotmap *m, const char *id, uint64_t value);
/* dst becomes the union of dst and src, each slot at the larger of its two values (the
 * merge of the grow-only counter: commutative, associative, idempotent, never lowers a
 * slot). 0, or -ENOMEM (dst unchanged), or -ENOSPC when the union would hold more than
 * SLOTS_MAX slots: then every slot of dst is merged and src's new slots are added in id
 * order while there is room. */
int slotmap_merge(struct slotmap *dst, const struct slotmap *src);
/* dst becomes a copy of src. 0 or -ENOMEM. */
int slotmap_copy(struct slotmap *dst, const struct slotmap *src);
/* 1 when both hold the same slots with the same values. */
int slotmap_equal(const struct slotmap *a, const struct slotmap *b);
/* The sum of the values; *saturated (nullable) says whether it stopped at UINT64_MAX. */
uint64_t slotmap_total(const struct slotmap *m, int *saturated);

#endif /* VISITS_SLOTMAP_H */
