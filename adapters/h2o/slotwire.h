/*
 * slotwire.h: the answer of GET /slots, written and read.
 *
 *   {"pod":"visits-0","slot":"visits-0.0123456789abcdef",
 *    "slots":[{"slot":"visits-0.0123456789abcdef","visits":103},
 *             {"slot":"visits-1.fedcba9876543210","visits":205}]}
 *
 * "slot" is the answering pod's own slot, "slots" every slot it knows with the value it
 * holds (its own slot with its counter's value). "pod" is for people: the reader takes the
 * pod's name from "slot". Members it does not know are skipped, so that a later version
 * may add some.
 */
#ifndef VISITS_SLOTWIRE_H
#define VISITS_SLOTWIRE_H

#include "slotmap.h"
#include "text.h"

#include <stddef.h>
#include <stdint.h>

#define SLOTS_BODY_MAX (1u << 20) /* bytes of an answer: 4096 slots of ids up to 200 bytes */

/* The answer of this pod: pod, its own slot and value, and the replicas it holds (own_id
 * is not among them). */
void slotwire_render(struct strbuf *sb, const char *pod, const char *own_id, uint64_t own_value,
                     const struct slotmap *replicas);

struct slots_answer {
    char pod[SLOT_POD_MAX + 1]; /* from "slot" */
    char slot[SLOT_ID_MAX + 1]; /* the peer's own slot */
    struct slotmap slots;       /* every slot it sent */
};

/*
 * Reads a peer's answer (len bytes, no NUL needed) with json-c, all or nothing: on error
 * out holds no slot and err says what is wrong ("not JSON: ... at byte N", "wrong shape:
 * ..."). Refused: more than SLOTS_BODY_MAX bytes, anything but one JSON object (and
 * white space), nesting deeper than 4, an integer literal anywhere outside
 * 0..18446744073709551615 (json-c would take it as the nearest limit), a "slot" that is
 * not a slot id, more than SLOTS_MAX slots, a slot given twice, a value that is not an
 * integer in that range. 0 or -1; slotwire_free(out) in either case.
 */
int slotwire_parse(const char *body, size_t len, struct slots_answer *out, char *err,
                   size_t errsize);
void slotwire_free(struct slots_answer *a);

#endif /* VISITS_SLOTWIRE_H */
