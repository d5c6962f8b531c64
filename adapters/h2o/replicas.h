/*
 * replicas.h: this pod's copy of the cluster's count. DATA_DIR/volume-id names the
 * volume, so the own slot is POD.VOLUMEID (DATA_DIR/slot-id, volume.h), counted in
 * DATA_DIR/visits (the committer's counter). Every other slot this pod has heard of is a replica: a
 * plain counter file DATA_DIR/slots/POD.VOLUMEID (`cat` reads it), written through libvisits and
 * only ever raised (visits_raise), so that what this pod has shown of the cluster never goes back,
 * across restarts too.
 *
 * One thread raises the replicas (the exchange); any thread reads them, never waiting
 * for the disk.
 */
#ifndef VISITS_REPLICAS_H
#define VISITS_REPLICAS_H

#include "slotmap.h"

#include <stddef.h>
#include <stdint.h>

#define REPLICAS_DIR "slots"

struct replicas;

/* Opens the slots of data_dir for pod: reads (or makes) the volume and slot ids, makes
 * DATA_DIR/slots when missing and reads every replica in it. A replica that cannot be read
 * (a corrupt file) refuses the start: 0, or -1 with the file, the reason and the fix in
 * err. Files in DATA_DIR/slots that are no replica are left alone (a line on stderr). */
int replicas_open(struct replicas **out, const char *data_dir, const char *pod, char *err,
                  size_t errsize);
/* 1 when the volume id was made at this start (a new volume: a new slot). */
int replicas_new_volume(const struct replicas *r);
/* The own slot's id, "POD.VOLUMEID", and the volume id. */
const char *replicas_own_id(const struct replicas *r);
const char *replicas_volume(const struct replicas *r);

/* What one merge did. */
struct replicas_merged {
    size_t raised;  /* replicas raised or made durably */
    size_t failed;  /* replicas whose write failed (logged; they keep their value) */
    size_t refused; /* new slots left out: this pod already holds SLOTS_MAX */
};
/* The exchange's thread: raises every replica that m holds higher (making the ones it
 * lacks), durably, before the new values show; m's own slot is not a replica and is
 * skipped. Blocks on the disk. */
void replicas_merge(struct replicas *r, const struct slotmap *m, struct replicas_merged *out);

/* Any thread: a copy of the replicas (the own slot not among them). 0 or -ENOMEM. */
int replicas_copy(struct replicas *r, struct slotmap *out);
/* Any thread: how many replicas, their sum (saturating) and the writes that failed. */
void replicas_counts(struct replicas *r, size_t *n, uint64_t *total, uint64_t *failures);

/* After the exchange stopped: closes the files. */
void replicas_close(struct replicas *r);

#endif /* VISITS_REPLICAS_H */
