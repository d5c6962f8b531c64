/* counter.c: the handle: open, the public operations, read, reopen, stats, close. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INTERVAL_MAX_MS 3600000u
#define GATHER_MAX_US 100000u
#define OPTIONS_MIN_SIZE (offsetof(visits_options, mode) + sizeof(unsigned))
#define OPTIONS_MAX_SIZE 4096

void visits_options_init_sized(visits_options *opts, size_t size)
{
    visits_options d;

    if (opts == NULL || size < sizeof(size_t))
        return;
    memset(&d, 0, sizeof(d));
    d.sync = VISITS_SYNC_ALWAYS;
    d.interval_ms = 1000;
    d.mode = 0644;
    d.gather_us = 1000;
    /* A caller built against an older header has a smaller struct: fill only that. */
    if (size > sizeof(d)) {
        memset(opts, 0, size);
        size_t known = sizeof(d);
        memcpy(opts, &d, known);
    } else {
        memcpy(opts, &d, size);
    }
    opts->size = size;
}

/* The caller's options over the defaults, or VISITS_EINVAL. */
static int take_options(const visits_options *given, visits_options *out)
{
    visits_options_init(out);
    if (given == NULL)
        return 0;
    if (given->size < OPTIONS_MIN_SIZE || given->size > OPTIONS_MAX_SIZE)
        return VISITS_EINVAL; /* not filled by visits_options_init() */
    memcpy((char *)out + sizeof(size_t), (const char *)given + sizeof(size_t),
           (given->size < sizeof(*out) ? given->size : sizeof(*out)) - sizeof(size_t));
    out->size = sizeof(*out);
    if (out->sync != VISITS_SYNC_ALWAYS && out->sync != VISITS_SYNC_INTERVAL)
        return VISITS_EINVAL;
    if (out->sync == VISITS_SYNC_INTERVAL &&
        (out->interval_ms == 0 || out->interval_ms > INTERVAL_MAX_MS))
        return VISITS_EINVAL;
    if (out->gather_us > GATHER_MAX_US)
        return VISITS_EINVAL;
    return out->mode > 07777 ? VISITS_EINVAL : 0;
}

static int init_sync(visits_counter *c)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_mutex_init(&c->mu, NULL)) != 0)
        return -rc;
    if ((rc = pthread_cond_init(&c->io_cv, NULL)) != 0)
        goto Mutex;
    if ((rc = pthread_condattr_init(&attr)) != 0)
        goto Io;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&c->commit_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc == 0)
        return 0;
Io:
    pthread_cond_destroy(&c->io_cv);
Mutex:
    pthread_mutex_destroy(&c->mu);
    return -rc;
}

static void destroy_sync(visits_counter *c)
{
    pthread_cond_destroy(&c->commit_cv);
    pthread_cond_destroy(&c->io_cv);
    pthread_mutex_destroy(&c->mu);
}

static void free_counter(visits_counter *c)
{
    if (c->dirfd >= 0)
        visits__close(c->dirfd);
    if (c->stale_fd >= 0)
        close(c->stale_fd); /* as in commit.c: not through the seam */
    visits__loc_free(&c->loc);
    free(c->abs_path);
    free(c->path);
    free(c);
}

/* path made absolute against the working directory now (malloc'd). */
static char *absolute(const char *path)
{
    char cwd[PATH_MAX], *out;
    size_t clen, plen = strlen(path);

    if (path[0] == '/' || path[0] == '\0')
        return strdup(path);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    clen = strlen(cwd);
    if ((out = malloc(clen + 1 + plen + 1)) == NULL)
        return NULL;
    memcpy(out, cwd, clen);
    out[clen] = '/';
    memcpy(out + clen + 1, path, plen + 1);
    return out;
}

/* Resolves path, opens its directory (which must be writable) and reads the counter:
 * what visits_open and visits_reopen share. Clears a crash's temps. */
static int locate(const char *path, struct visits__loc *loc, int *dirfd_out, uint64_t *value,
                  int *exists)
{
    int dirfd = -1, err;

    if ((err = visits__resolve(path, loc)) != 0)
        return err;
    if ((err = visits__check_name(loc->name)) != 0 || (err = visits__open_dir(loc, &dirfd)) != 0)
        goto Error;
    /* Refuse at open what every write would refuse: no handle that can never write. */
    if (visits__sys.faccessat(dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        err = -errno;
        goto Error;
    }
    visits__remove_stale_temps(dirfd, loc->name);
    if ((err = visits__read_at(dirfd, loc->name, value, exists, NULL, NULL)) != 0)
        goto Error;
    *dirfd_out = dirfd;
    return 0;
Error:
    if (dirfd >= 0)
        visits__close(dirfd);
    visits__loc_free(loc);
    return err;
}

int visits_open(const char *path, const visits_options *opts, visits_counter **out)
{
    visits_counter *c;
    int exists = 0, err;

    if (out == NULL)
        return VISITS_EINVAL;
    *out = NULL;
    if (path == NULL)
        return VISITS_EINVAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    c->dirfd = -1;
    c->stale_fd = -1;
    if ((err = take_options(opts, &c->opts)) != 0)
        goto Error;
    c->create_mode = (mode_t)c->opts.mode;
    if ((c->path = strdup(path)) == NULL) {
        err = -ENOMEM;
        goto Error;
    }
    if ((c->abs_path = absolute(path)) == NULL) {
        err = errno == ERANGE || errno == ENOENT ? -errno : -ENOMEM;
        goto Error;
    }
    if ((err = locate(c->abs_path, &c->loc, &c->dirfd, &c->known, &exists)) != 0)
        goto Error;
    c->had_file = exists;
    {
        uint64_t ignored;
        if (visits__marker_read(c->dirfd, c->loc.name, &ignored, &c->set_token) != 0)
            c->set_token = 0; /* sets made before this handle are not news to it */
    }
    c->stats.known = c->known;
    if ((err = init_sync(c)) != 0)
        goto Error;
    if ((err = visits__committer_start(c)) != 0) {
        destroy_sync(c);
        goto Error;
    }
    *out = c;
    return 0;

Error:
    free_counter(c);
    return err;
}

static int submit_blocking(visits_counter *c, int kind, uint64_t n, uint64_t *value_out)
{
    struct visits__op op;
    int err;

    if (c == NULL)
        return VISITS_EINVAL;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.n = n;
    if (sem_init(&op.done, 0, 0) != 0)
        return -errno;
    err = visits__submit(c, &op);
    sem_destroy(&op.done);
    if (err == 0 && value_out != NULL)
        *value_out = op.value;
    return err;
}

static int submit_async(visits_counter *c, int kind, uint64_t n, visits_done_cb cb, void *arg)
{
    struct visits__op *op;
    int err;

    if (c == NULL || cb == NULL)
        return VISITS_EINVAL;
    if ((op = calloc(1, sizeof(*op))) == NULL)
        return -ENOMEM;
    op->kind = kind;
    op->n = n;
    op->cb = cb;
    op->arg = arg;
    if ((err = visits__submit(c, op)) != 0)
        free(op); /* not queued: no callback */
    return err;
}

int visits_incr(visits_counter *c, uint64_t *value_out)
{
    return submit_blocking(c, VISITS__OP_ADD, 1, value_out);
}

int visits_add(visits_counter *c, uint64_t n, uint64_t *value_out)
{
    return submit_blocking(c, VISITS__OP_ADD, n, value_out);
}

int visits_raise(visits_counter *c, uint64_t floor, uint64_t *value_out)
{
    return submit_blocking(c, VISITS__OP_RAISE, floor, value_out);
}

int visits_add_async(visits_counter *c, uint64_t n, visits_done_cb cb, void *arg)
{
    return submit_async(c, VISITS__OP_ADD, n, cb, arg);
}

int visits_raise_async(visits_counter *c, uint64_t floor, visits_done_cb cb, void *arg)
{
    return submit_async(c, VISITS__OP_RAISE, floor, cb, arg);
}

/* What this handle would answer now without the disk: the known value, plus in interval
 * mode what it acknowledged and has not written yet (mu held). */
static uint64_t answer_value(const visits_counter *c)
{
    uint64_t v = c->known;

    if (c->opts.sync == VISITS_SYNC_INTERVAL && (visits__xform_apply(&c->inflight, v, &v) != 0 ||
                                                 visits__xform_apply(&c->pending, v, &v) != 0))
        v = UINT64_MAX;
    return v;
}

int visits_read(visits_counter *c, uint64_t *value_out)
{
    char name[NAME_MAX + 1];
    uint64_t value = 0, known = 0, token = 0;
    int dirfd = -1, exists = 0, followed = 0, err = 0;

    if (c == NULL || value_out == NULL)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    known = c->known;
    token = c->set_token;
    /* During a cycle the file is being replaced: its result is known when it ends. A
     * private descriptor of the directory keeps the read safe from a concurrent reopen. */
    if (!c->io_busy && (dirfd = visits__dupfd(c->dirfd)) < 0)
        err = -errno;
    if (dirfd >= 0)
        snprintf(name, sizeof(name), "%s", c->loc.name);
    pthread_mutex_unlock(&c->mu);
    if (dirfd >= 0) {
        err = visits__read_at(dirfd, name, &value, &exists, NULL, NULL);
        if (err == 0 && exists && value < known)
            followed = visits__follow_set(dirfd, name, value, &token);
        visits__close(dirfd);
    }
    pthread_mutex_lock(&c->mu);
    if (err == 0 && exists) {
        c->had_file = 1;
        if (value > c->known)
            c->known = value; /* another process wrote more */
        else if (followed && c->set_token != token && !c->io_busy) {
            c->known = value; /* the operator set it lower */
            c->set_token = token;
            c->stats.sets_followed++;
        }
    }
    value = answer_value(c);
    pthread_mutex_unlock(&c->mu);
    if (err == 0)
        *value_out = value;
    return err;
}

int visits_reopen(visits_counter *c)
{
    struct visits__loc loc, old_loc;
    uint64_t value = 0;
    int dirfd = -1, old_dirfd, exists = 0, err;

    if (c == NULL)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    if (c->committer_started && pthread_equal(pthread_self(), c->committer)) {
        pthread_mutex_unlock(&c->mu);
        return VISITS_EDEADLK;
    }
    visits__io_claim(c); /* no cycle runs until we are done */
    pthread_mutex_unlock(&c->mu);

    err = locate(c->abs_path, &loc, &dirfd, &value, &exists);

    pthread_mutex_lock(&c->mu);
    if (err == 0) {
        old_loc = c->loc;
        old_dirfd = c->dirfd;
        c->loc = loc;
        c->dirfd = dirfd;
        if (value > c->known)
            c->known = value;
        c->had_file = c->had_file || exists;
        c->failed = 0;
        c->failed_error = 0;
        c->last_error = 0;
        c->stats.reopens++;
    }
    visits__io_release(c);
    pthread_mutex_unlock(&c->mu);
    if (err == 0) {
        visits__close(old_dirfd);
        visits__loc_free(&old_loc);
    }
    return err;
}

const char *visits_path(const visits_counter *c)
{
    return c != NULL ? c->path : NULL;
}

int visits_get_stats_sized(visits_counter *c, visits_stats *out, size_t size)
{
    visits_stats st;

    if (c == NULL || out == NULL || size == 0)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    st = c->stats;
    st.failed = c->failed;
    st.failed_error = c->failed_error;
    st.last_error = c->last_error;
    st.known = c->known;
    st.queued = c->queue_len;
    st.cycle_running_ns = c->io_busy ? visits__now_ns() - c->io_started : 0;
    pthread_mutex_unlock(&c->mu);
    /* A caller built against an older header has a smaller struct: fill only that. */
    memcpy(out, &st, size < sizeof(st) ? size : sizeof(st));
    return 0;
}

int visits_close(visits_counter *c)
{
    int err;

    if (c == NULL)
        return 0;
    err = visits__committer_stop(c);
    destroy_sync(c);
    free_counter(c);
    return err;
}
