/*
 * keeper.c: the thread that looks after the counter, never on a visit's path.
 *
 * - After a failed write the counter is not ready (readiness.c); the keeper reopens the
 *   counter on its path (visits_reopen: the directory may be another one now) and probes
 *   it with an increment of 0, with backoff, so readiness comes back by itself when the
 *   disk accepts writes again.
 * - Once a second, when idle, it re-reads the value (other processes write too) and checks
 *   that the data directory at the path is the one the counter holds; when the path names
 *   another directory now, it reopens there.
 * - It tells what the library saw change behind the server (files deleted, rolled back or
 *   set by an operator, directories followed) and a write cycle that stalls, each once.
 */
#include "keeper.h"

#include "clock.h"
#include "histogram.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TICK_MS 100         /* the keeper's period */
#define REFRESH_MS 1000     /* idle re-read of the value and check of the path */
#define BACKOFF_MIN_MS 50   /* first reopen after a failure */
#define BACKOFF_MAX_MS 2000 /* slowest retry */

/* The changes behind the server that the library counts, as metric labels. */
enum { EV_RECREATED, EV_ROLLED_BACK, EV_SET, EV_DIR_CHANGED, EV_REOPENED, EV_COUNT };
static const char *const event_names[EV_COUNT] = {"recreated", "rolled_back", "set_followed",
                                                  "dir_changed", "reopened"};

struct keeper {
    struct committer *c;
    struct readiness *r;
    visits_counter *counter;
    const char *path;
    char *dir; /* the data directory: path's */
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;

    /* the keeper thread only */
    uint64_t backoff_ms;
    uint64_t next_attempt_ms;
    uint64_t next_refresh_ms;
    int stalled; /* a stall told, and its end not yet */
    dev_t dir_dev;
    ino_t dir_ino;
    uint64_t seen[EV_COUNT]; /* the library's counts already told */

    /* metrics, written by the keeper thread */
    atomic_uint_fast64_t probe_failures;
    atomic_uint_fast64_t reopens;
    atomic_uint_fast64_t events[EV_COUNT];
};

static int dir_identity(const char *dir, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

int keeper_create(struct keeper **out, struct committer *c)
{
    *out = NULL;
    struct keeper *k = calloc(1, sizeof(*k));
    char *copy = strdup(committer_path(c));
    if (k == NULL || copy == NULL || (k->dir = strdup(dirname(copy))) == NULL) {
        free(copy);
        free(k);
        return -ENOMEM;
    }
    free(copy);
    k->c = c;
    k->r = committer_readiness(c);
    k->counter = committer_counter(c);
    k->path = committer_path(c);
    k->backoff_ms = BACKOFF_MIN_MS;
    dir_identity(k->dir, &k->dir_dev, &k->dir_ino);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&k->mu, NULL);
    *out = k;
    return 0;
}

/* Logs and counts what the library saw change behind the server since the last look. */
static void report_events(struct keeper *k, const visits_stats *st)
{
    const uint64_t now[EV_COUNT] = {st->recreated, st->rolled_back, st->sets_followed,
                                    st->dir_changed, st->reopens};
    for (int e = 0; e < EV_COUNT; e++) {
        if (now[e] <= k->seen[e])
            continue;
        counter_add(&k->events[e], now[e] - k->seen[e]);
        k->seen[e] = now[e];
        if (e == EV_RECREATED)
            log_error("%s: the counter file was gone (deleted, or its directory replaced); "
                      "created it again from the last known value, %" PRIu64 ": nothing lost",
                      k->path, st->known);
        else if (e == EV_ROLLED_BACK)
            log_error("%s: the counter file held less than this server had counted (replaced "
                      "or restored from an older copy); counting on from %" PRIu64,
                      k->path, st->known);
        else if (e == EV_SET)
            log_info("%s: an operator set the counter (visitsctl set); counting on from %" PRIu64,
                     k->path, st->known);
        else if (e == EV_DIR_CHANGED)
            log_error("%s: the data directory %s is another directory now (replaced or "
                      "swapped); writing there, from %" PRIu64,
                      k->path, k->dir, st->known);
    }
}

/* A stalled write cycle: told once, and its end. */
static void watch_stall(struct keeper *k)
{
    uint64_t ms = readiness_running_ms(k->r), stall = readiness_stall_ms(k->r);
    if (readiness_stall_news(k->r)) {
        k->stalled = 1;
        log_error("%s: counter write stalled for %" PRIu64 " ms or more (the disk does not "
                  "answer); not ready until it completes",
                  k->path, ms > stall ? ms : stall);
    }
    if (k->stalled && ms < stall) {
        k->stalled = 0;
        log_info("%s: the stalled write completed", k->path);
    }
}

/* After a failure: reopen on the path (the directory may be another one now), then probe
 * with an increment of 0, which writes the file in always mode. Backoff between tries. */
static void recover(struct keeper *k, const visits_stats *st, uint64_t now)
{
    int interval = committer_sync(k->c) == VISITS_SYNC_INTERVAL;
    if (st->failed) /* interval mode: a background write failed it, no visit saw it */
        readiness_handle_failed(k->r, interval);
    if (now < k->next_attempt_ms)
        return;
    int had_failed = st->failed;
    int err = visits_reopen(k->counter);
    if (err == 0)
        counter_add(&k->reopens, 1);
    uint64_t v = 0;
    if (err == 0)
        err = visits_add(k->counter, 0, &v);
    if (err == 0 && interval) {
        /* an interval-mode increment is not written yet: ask the library how the
         * background writes fare */
        visits_stats now_st;
        if (visits_get_stats(k->counter, &now_st) == 0)
            err = now_st.last_error;
    }
    if (err == 0) {
        committer_saw_value(k->c, v, 0);
        k->backoff_ms = BACKOFF_MIN_MS;
        dir_identity(k->dir, &k->dir_dev, &k->dir_ino);
        readiness_note(k->r, 0, had_failed ? " (counter reopened)" : "");
        return;
    }
    counter_add(&k->probe_failures, 1);
    readiness_still_failing(k->r, err);
    k->next_attempt_ms = now + k->backoff_ms;
    k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff_ms * 2;
}

/* Idle: re-read the value (other processes write too) and check the path still names the
 * directory the counter holds; in interval mode, see how the background writes fare. */
static void refresh(struct keeper *k, const visits_stats *st, int sets_followed)
{
    dev_t dev = 0;
    ino_t ino = 0;
    int err = dir_identity(k->dir, &dev, &ino);
    if (err == 0 && (dev != k->dir_dev || ino != k->dir_ino)) {
        log_error("%s: the data directory %s is another directory now; reopening the counter "
                  "there",
                  k->path, k->dir);
        if ((err = visits_reopen(k->counter)) == 0) {
            counter_add(&k->reopens, 1);
            k->dir_dev = dev;
            k->dir_ino = ino;
        }
    }
    uint64_t v;
    if (visits_read(k->counter, &v) == 0)
        committer_saw_value(k->c, v, sets_followed); /* an operator's set may lower it */
    if (committer_sync(k->c) == VISITS_SYNC_INTERVAL && st->last_error != 0)
        readiness_note(k->r, st->last_error, "");
    else if (err != 0 && err != -ENOENT)
        readiness_note(k->r, err, "");
}

static void tick(struct keeper *k)
{
    visits_stats st;
    uint64_t now = clock_mono_ms();
    if (visits_get_stats(k->counter, &st) != 0)
        return;
    int sets_followed = st.sets_followed > k->seen[EV_SET];
    watch_stall(k);
    report_events(k, &st);
    if (!readiness_write_ok(k->r)) {
        recover(k, &st, now);
    } else if (now >= k->next_refresh_ms && st.cycle_running_ns == 0) {
        refresh(k, &st, sets_followed);
        k->next_refresh_ms = now + REFRESH_MS;
    }
}

static void *keeper_main(void *arg)
{
    struct keeper *k = arg;
    pthread_setname_np(pthread_self(), "visits-keeper"); /* as top -H and ps -L show it */
    k->next_refresh_ms = clock_mono_ms() + REFRESH_MS;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        uint64_t wake = clock_mono_ns() + (uint64_t)TICK_MS * 1000000u;
        struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->mu);
        tick(k);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int keeper_start(struct keeper *k)
{
    int err = pthread_create(&k->tid, NULL, keeper_main, k);
    if (err != 0)
        return -err;
    k->started = 1;
    return 0;
}

int keeper_stop(struct keeper *k, uint64_t deadline_ms)
{
    if (!k->started)
        return 0;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    /* A probe in flight waits for the disk: a disk that hangs must not hold the exit. */
    struct timespec ts = clock_real_deadline(deadline_ms, 0);
    if (pthread_timedjoin_np(k->tid, NULL, &ts) != 0)
        return -ETIMEDOUT; /* left to end with the process */
    k->started = 0;
    return 0;
}

void keeper_metrics(struct keeper *k, struct strbuf *sb)
{
    strbuf_printf(
        sb,
        "# HELP visits_commit_failures_total Write cycles and recovery probes that failed.\n"
        "# TYPE visits_commit_failures_total counter\n"
        "visits_commit_failures_total %" PRIu64 "\n"
        "# HELP visits_reopens_total Reopens of the counter on its path (after a failure, or "
        "when the data directory was replaced).\n"
        "# TYPE visits_reopens_total counter\n"
        "visits_reopens_total %" PRIu64 "\n",
        committer_cycle_failures(k->c) + counter_get(&k->probe_failures), counter_get(&k->reopens));
    strbuf_puts(sb, "# HELP visits_file_events_total Changes found behind the server: the "
                    "counter file recreated, rolled back or set by an operator, the data "
                    "directory replaced, the counter reopened.\n"
                    "# TYPE visits_file_events_total counter\n");
    for (int e = 0; e < EV_COUNT; e++)
        strbuf_printf(sb, "visits_file_events_total{event=\"%s\"} %" PRIu64 "\n", event_names[e],
                      counter_get(&k->events[e]));
}
