/*
 * cycle.c: one write cycle, the read-modify-write of the file under the writers' lock.
 *
 * The cycle follows the path: if the directory at the path is no longer the one the
 * handle holds, it reopens it first. Under the lock it reads the file and takes as its
 * base the larger of the file's value and the handle's known value (the file may have
 * vanished or gone back behind the handle: the count never does), applies the batch's
 * operations in order, and replaces the file with the result.
 */
#include "cycle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

/* x -> max(x + add, floor); VISITS_EOVERFLOW when x + add exceeds UINT64_MAX. */
int visits__xform_apply(const struct visits__xform *x, uint64_t base, uint64_t *out)
{
    if (x->add > UINT64_MAX - base)
        return VISITS_EOVERFLOW;
    *out = base + x->add > x->floor ? base + x->add : x->floor;
    return 0;
}

/* first, then second: x -> max(max(x + a1, f1) + a2, f2) = max(x + a1 + a2, max(f1 + a2, f2)).
 * Callers have checked that no sum overflows (each is at most an acknowledged value). */
void visits__xform_then(struct visits__xform *first, const struct visits__xform *second)
{
    uint64_t f1 = first->floor + second->add;
    first->add += second->add;
    first->floor = f1 > second->floor ? f1 : second->floor;
}

/* Applies the batch's operations in queue order to base. An addition that would overflow
 * is refused for its caller alone (VISITS_EOVERFLOW, nothing added). Returns the final
 * value; *changed_out tells whether any operation was admitted. */
static uint64_t apply_ops(struct visits__op *batch, uint64_t base, int *admitted_out)
{
    uint64_t v = base;
    int admitted = 0;

    for (struct visits__op *op = batch; op != NULL; op = op->next) {
        op->err = 0;
        if (op->kind == VISITS__OP_ADD) {
            if (op->n > UINT64_MAX - v) {
                op->err = VISITS_EOVERFLOW;
                continue;
            }
            v += op->n;
        } else if (op->n > v) {
            v = op->n;
        }
        op->value = v;
        admitted = 1;
    }
    *admitted_out = admitted;
    return v;
}

int visits__follow_set(int dirfd, const char *name, uint64_t file_value, uint64_t *token)
{
    uint64_t value, found;

    if (visits__marker_read(dirfd, name, &value, &found) != 0 || found == *token ||
        value != file_value)
        return 0;
    *token = found;
    return 1;
}

/* Reopens the directory at the path when the path names another one now. */
static int follow_dir(visits_counter *c, struct visits__cycle *cy)
{
    int same = visits__same_dir(&c->loc, c->dirfd), fd, err;

    if (same != 0)
        return 0; /* the same (1), or it cannot be told (< 0): write where we are */
    if ((err = visits__open_dir(&c->loc, &fd)) != 0)
        return err; /* nothing at the path: fail this cycle, try again at the next */
    cy->new_dirfd = fd;
    cy->dir_changed = 1;
    return 0;
}

int visits__write_cycle(visits_counter *c, struct visits__cycle *cy)
{
    struct visits__target t;
    uint64_t file_value = 0, base, value;
    int dirfd, err, admitted = 1;

    cy->fatal = 0;
    if ((err = follow_dir(c, cy)) != 0)
        return err;
    dirfd = cy->new_dirfd >= 0 ? cy->new_dirfd : c->dirfd;
    if ((err = visits__lock_target(dirfd, c->loc.name, &t, &cy->lock_retries)) != 0)
        return err;
    if (t.fd >= 0 && (err = visits__read_fd(t.fd, &file_value, NULL, NULL)) != 0)
        goto Unlock;
    cy->existed = t.fd >= 0;
    cy->file_value = file_value;
    /* Never below what this handle knows: a vanished or older file is not the count,
     * unless the operator set it so. */
    base = file_value > cy->known ? file_value : cy->known;
    if (cy->existed && file_value < cy->known &&
        visits__follow_set(dirfd, c->loc.name, file_value, &cy->set_token)) {
        base = file_value;
        cy->set_followed = 1;
    }
    if (cy->batch != NULL)
        value = apply_ops(cy->batch, base, &admitted);
    else if ((err = visits__xform_apply(&cy->xform, base, &value)) != 0)
        goto Unlock; /* interval mode: the sum is all or nothing */
    if (admitted)
        err = visits__replace(dirfd, c->loc.name, value, c->create_mode,
                              t.fd >= 0 ? (int)(t.st.st_mode & 07777) : -1, &cy->fatal);
    else
        value = base; /* nobody fits: leave the file as it is */
    if (err == 0) {
        cy->value = value;
        cy->wrote = admitted;
    }
Unlock:
    /* The replaced file is no longer at the path: unlock it now, close it later. */
    if (err == 0 && cy->wrote && t.fd >= 0 && visits__flock(t.fd, LOCK_UN) == 0) {
        cy->stale_fd = t.fd;
        t.fd = -1;
    }
    visits__unlock_target(dirfd, &t);
    return err;
}
