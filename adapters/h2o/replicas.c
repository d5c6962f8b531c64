/*
 * replicas.c: the replica files of DATA_DIR/slots and their table in memory.
 *
 * The table shows a value only once it is on disk: a merge raises the file first
 * (visits_raise, durable) and then the table, under a lock held only for that. The
 * files are written through a few libvisits handles kept open for the slots raised
 * lately (each handle has a thread and a descriptor; a cluster has few slots that move).
 */
#include "replicas.h"

#include "log.h"
#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <visits.h>

#define HANDLES_MAX 16 /* replica files kept open */

struct handle {
    char id[SLOT_ID_MAX + 1];
    visits_counter *c;
    uint64_t used; /* merge count when last raised (least recently used goes first) */
};

struct replicas {
    char *dir;   /* DATA_DIR/slots */
    int created; /* the volume id was made at this start */
    char volume[SLOT_VOLUME_LEN + 1];
    char own[SLOT_ID_MAX + 1];

    pthread_mutex_t mu; /* the table; never held across I/O */
    struct slotmap table;
    atomic_uint_fast64_t failures;

    /* the exchange's thread only */
    struct handle handles[HANDLES_MAX];
    uint64_t merges;
    int failing; /* the last write failed (logged once per episode) */
};

static char *join(const char *dir, const char *name)
{
    size_t dlen = strlen(dir);
    int slash = dlen > 0 && dir[dlen - 1] == '/';
    char *p = malloc(dlen + strlen(name) + 2);
    if (p != NULL)
        sprintf(p, "%s%s%s", dir, slash ? "" : "/", name);
    return p;
}

/* Makes DATA_DIR/slots when missing, durably (the data directory is fsynced after). */
static int make_dir(const char *data_dir, const char *dir, char *err, size_t errsize)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        snprintf(err, errsize,
                 "%s: not a directory: refusing to start (it holds the replicas "
                 "of the other pods' counts)",
                 dir);
        return -1;
    }
    if (errno != ENOENT || mkdir(dir, 0755) != 0) {
        snprintf(err, errsize, "%s: cannot make the directory of the replicas: %s", dir,
                 strerror(errno));
        return -1;
    }
    int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errsize, "%s: cannot fsync the data directory: %s", data_dir,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Reads every replica file of r->dir into the table. */
static int load(struct replicas *r, char *err, size_t errsize)
{
    DIR *d = opendir(r->dir);
    if (d == NULL) {
        snprintf(err, errsize, "%s: cannot read the replicas: %s", r->dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    size_t ignored = 0;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char why[200];
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and libvisits' lock, temp and set-marker files */
        size_t len = strlen(e->d_name);
        if (slot_id_parse(e->d_name, len, NULL, NULL, why, sizeof(why)) != 0) {
            log_error("%s/%s: ignored: not a replica (%s)", r->dir, e->d_name, why);
            continue;
        }
        if (strcmp(e->d_name, r->own) == 0) {
            log_error("%s/%s: ignored: this pod's own slot is counted in its counter file, "
                      "not in a replica",
                      r->dir, e->d_name);
            continue;
        }
        char *path = join(r->dir, e->d_name);
        uint64_t v = 0;
        int exists = 0;
        int verr = path != NULL ? visits_read_file(path, &v, &exists) : -ENOMEM;
        if (verr == VISITS_ECORRUPT) {
            snprintf(err, errsize,
                     "%s: %s: refusing to start; delete it (the other pods hold this slot, and "
                     "the next exchange makes it again) or set it with 'visitsctl set %s N'",
                     path, visits_strerror(verr), path);
            rc = -1;
        } else if (verr != 0) {
            snprintf(err, errsize, "%s: cannot read the replica: %s", path != NULL ? path : "",
                     visits_strerror(verr));
            rc = -1;
        } else if (exists) {
            int added = slotmap_raise(&r->table, e->d_name, v);
            if (added == -ENOSPC)
                ignored++;
            else if (added < 0) {
                snprintf(err, errsize, "out of memory");
                rc = -1;
            }
        }
        free(path);
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        snprintf(err, errsize, "%s: cannot read the replicas: %s", r->dir, strerror(errno));
        rc = -1;
    }
    closedir(d);
    if (ignored != 0)
        log_error("%s: %zu replica(s) ignored: a pod keeps at most %d slots", r->dir, ignored,
                  SLOTS_MAX);
    return rc;
}

int replicas_open(struct replicas **out, const char *data_dir, const char *pod, char *err,
                  size_t errsize)
{
    *out = NULL;
    struct replicas *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->dir = join(data_dir, REPLICAS_DIR)) == NULL) {
        free(r);
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    slotmap_init(&r->table);
    atomic_init(&r->failures, 0);
    if (volume_load(data_dir, pod, r->volume, r->own, &r->created, err, errsize) != 0)
        goto Error;
    if (make_dir(data_dir, r->dir, err, errsize) != 0 || load(r, err, errsize) != 0)
        goto Error;
    *out = r;
    return 0;
Error:
    replicas_close(r);
    return -1;
}

int replicas_new_volume(const struct replicas *r)
{
    return r->created;
}

const char *replicas_own_id(const struct replicas *r)
{
    return r->own;
}

const char *replicas_volume(const struct replicas *r)
{
    return r->volume;
}

/* The open handle of id, opening one (and closing the least recently used) if needed;
 * NULL with the error in *err. */
static struct handle *handle_of(struct replicas *r, const char *id, int *err)
{
    struct handle *lru = &r->handles[0];
    for (size_t i = 0; i < HANDLES_MAX; i++) {
        struct handle *h = &r->handles[i];
        if (h->c != NULL && strcmp(h->id, id) == 0)
            return h;
        if (h->c == NULL || (lru->c != NULL && h->used < lru->used))
            lru = h;
    }
    visits_close(lru->c); /* a replica's pending writes: none, raises are blocking */
    lru->c = NULL;
    char *path = join(r->dir, id);
    *err = path != NULL ? visits_open(path, NULL, &lru->c) : -ENOMEM;
    free(path);
    if (*err != 0)
        return NULL;
    snprintf(lru->id, sizeof(lru->id), "%s", id);
    return lru;
}

static void drop_handle(struct handle *h)
{
    visits_close(h->c);
    h->c = NULL;
}

/* Raises the replica id to at least value on disk; 0 and the value now, or the error. */
static int raise_file(struct replicas *r, const char *id, uint64_t value, uint64_t *now)
{
    int err = 0;
    struct handle *h = handle_of(r, id, &err);
    if (h == NULL)
        return err;
    h->used = r->merges;
    err = visits_raise(h->c, value, now);
    if (err == VISITS_EFAILED || err == -EIO)
        drop_handle(h); /* the outcome is unknown: reopen next time */
    return err;
}

void replicas_merge(struct replicas *r, const struct slotmap *m, struct replicas_merged *out)
{
    memset(out, 0, sizeof(*out));
    r->merges++;
    for (size_t i = 0; i < m->n; i++) {
        const struct slot *s = &m->s[i];
        if (strcmp(s->id, r->own) == 0)
            continue;
        pthread_mutex_lock(&r->mu);
        const struct slot *have = slotmap_find(&r->table, s->id);
        int want = have == NULL ? (r->table.n < SLOTS_MAX ? 1 : -1) : have->value < s->value;
        pthread_mutex_unlock(&r->mu);
        if (want == 0)
            continue;
        if (want < 0) {
            out->refused++;
            continue;
        }
        uint64_t now = 0;
        int err = raise_file(r, s->id, s->value, &now);
        if (err != 0) {
            out->failed++;
            atomic_fetch_add(&r->failures, 1);
            if (!r->failing)
                log_error("%s/%s: cannot raise the replica to %llu: %s; it keeps its value "
                          "and is tried again at the next exchange",
                          r->dir, s->id, (unsigned long long)s->value, visits_strerror(err));
            r->failing = 1;
            continue;
        }
        if (r->failing)
            log_info("%s: replicas are written again", r->dir);
        r->failing = 0;
        pthread_mutex_lock(&r->mu);
        int rc = slotmap_raise(&r->table, s->id, now);
        pthread_mutex_unlock(&r->mu);
        if (rc >= 0)
            out->raised++;
        else
            out->refused++;
    }
}

int replicas_copy(struct replicas *r, struct slotmap *out)
{
    pthread_mutex_lock(&r->mu);
    int rc = slotmap_copy(out, &r->table);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void replicas_counts(struct replicas *r, size_t *n, uint64_t *total, uint64_t *failures)
{
    pthread_mutex_lock(&r->mu);
    *n = r->table.n;
    *total = slotmap_total(&r->table, NULL);
    pthread_mutex_unlock(&r->mu);
    *failures = atomic_load(&r->failures);
}

void replicas_close(struct replicas *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < HANDLES_MAX; i++)
        drop_handle(&r->handles[i]);
    slotmap_free(&r->table);
    pthread_mutex_destroy(&r->mu);
    free(r->dir);
    free(r);
}
