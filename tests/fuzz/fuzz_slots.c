/*
 * fuzz_slots.c: libFuzzer target for slotwire_parse(), the reader of a peer's GET /slots
 * answer in visits-server (adapters/h2o/slotwire.c, on json-c).
 *
 * Invariants checked on every input:
 * - the result is 0 or -1; on -1 the answer holds no slot (all or nothing) and the error
 *   message is set;
 * - on 0: the answer's own slot and every slot id are valid ids in their one canonical
 *   form, the pod name is the one the own slot id names, the slots are sorted and unique,
 *   at most SLOTS_MAX of them;
 * - what the server would send back (slotwire_render) reads back to the same slots;
 * - the input is never read past its size (a heap block of exactly that size).
 */
#include "slotid.h"
#include "slotmap.h"
#include "slotwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_slots: invariant failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SLOTS_BODY_MAX + 16)
        return 0;
    char *buf = malloc(size != 0 ? size : 1);
    CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    struct slots_answer a;
    char err[300];
    err[0] = '\0';
    int rc = slotwire_parse(buf, size, &a, err, sizeof(err));
    CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        CHECK(a.slots.n == 0 && err[0] != '\0');
        slotwire_free(&a);
        free(buf);
        return 0;
    }
    char pod[SLOT_POD_MAX + 1], why[200];
    CHECK(slot_id_parse(a.slot, strlen(a.slot), pod, NULL, why, sizeof(why)) == 0);
    CHECK(strcmp(pod, a.pod) == 0);
    CHECK(a.slots.n <= SLOTS_MAX);
    for (size_t i = 0; i < a.slots.n; i++) {
        const char *id = a.slots.s[i].id;
        CHECK(slot_id_parse(id, strlen(id), NULL, NULL, why, sizeof(why)) == 0);
        CHECK(i == 0 || strcmp(a.slots.s[i - 1].id, id) < 0);
    }
    /* the server's own rendering of these slots reads back the same */
    struct slotmap others;
    slotmap_init(&others);
    const struct slot *own = slotmap_find(&a.slots, a.slot);
    for (size_t i = 0; i < a.slots.n; i++)
        if (own == NULL || strcmp(a.slots.s[i].id, a.slot) != 0)
            CHECK(slotmap_raise(&others, a.slots.s[i].id, a.slots.s[i].value) == 1);
    struct strbuf sb;
    strbuf_init(&sb);
    slotwire_render(&sb, a.pod, a.slot, own != NULL ? own->value : 0, &others);
    CHECK(!sb.oom);
    struct slots_answer back;
    CHECK(slotwire_parse(sb.data, sb.len, &back, err, sizeof(err)) == 0);
    CHECK(strcmp(back.slot, a.slot) == 0 && strcmp(back.pod, a.pod) == 0);
    if (own != NULL) {
        CHECK(slotmap_equal(&back.slots, &a.slots));
    } else {
        CHECK(back.slots.n == a.slots.n + 1);
        CHECK(slotmap_find(&back.slots, a.slot)->value == 0);
    }
    slotwire_free(&back);
    strbuf_free(&sb);
    slotmap_free(&others);
    slotwire_free(&a);
    free(buf);
    return 0;
}
