/* cycle.h: one write cycle (cycle.c), run by commit.c. Internal. */
#ifndef VISITS_CYCLE_H
#define VISITS_CYCLE_H

#include "visits_int.h"

/* The inputs and outputs of one cycle. The caller owns the files for its duration
 * (c->io_busy), so c->loc and c->dirfd do not change meanwhile. */
struct visits__cycle {
    /* in */
    struct visits__op *batch;   /* always mode: the operations, in order */
    struct visits__xform xform; /* interval mode (batch NULL): what to apply */
    uint64_t known;             /* the handle's known value */
    uint64_t set_token;         /* the operator's set marker the handle last followed */
    /* out */
    uint64_t value;        /* the value written (or kept) on success */
    uint64_t file_value;   /* what the file held (0 when missing) */
    int existed;           /* the file existed */
    int set_followed;      /* the file went below known by an operator's set: followed */
    int wrote;             /* the file was replaced */
    int fatal;             /* an fsync failed: the handle must fail */
    int dir_changed;       /* the path named another directory: new_dirfd is it */
    int new_dirfd;         /* -1, or the directory to hold from now on */
    uint64_t lock_retries; /* locks retaken */
    int stale_fd;          /* -1, or the file the cycle replaced, unlocked but still open:
                              its last close frees it, which may cost the disk a round trip
                              (a discard), so the caller closes it after answering */
};

int visits__write_cycle(visits_counter *c, struct visits__cycle *cy);

#endif
