/* readiness.c: whether the counter takes visits now, and why not (see readiness.h). */
#include "readiness.h"

#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct readiness {
    const char *path;
    unsigned stall_ms;
    visits_counter *counter;

    pthread_mutex_t mu;  /* everything below; never held across I/O */
    atomic_int write_ok; /* the last write succeeded (written under mu) */
    int write_err;       /* ... else its error */
    int draining;
    char held[128];         /* readiness held off by another module, with this reason */
    atomic_int holding;     /* held[0] != '\0', read without mu on a visit's path */
    atomic_int overflowing; /* the counter is at its maximum (written under mu) */
    int failed_told;        /* the handle's failure was told in this episode */
    /* a stall: the write cycle that passed --stall-ms, counted once by whoever saw it
     * first (a readiness check, a scrape, the keeper), told once */
    uint64_t stall_cycle; /* 1 + the cycles done before it; 0: none yet */
    int stall_told;
    atomic_uint_fast64_t stalls;
};

struct readiness *readiness_create(const char *path, unsigned stall_ms, visits_counter *counter)
{
    struct readiness *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->path = path;
    r->stall_ms = stall_ms;
    r->counter = counter;
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->write_ok, 1);
    return r;
}

void readiness_note(struct readiness *r, int err, const char *how)
{
    /* the common case, a visit written while all is well, takes no lock */
    if (err == 0 && atomic_load_explicit(&r->write_ok, memory_order_relaxed) &&
        !atomic_load_explicit(&r->overflowing, memory_order_relaxed))
        return;
    pthread_mutex_lock(&r->mu);
    int was_ok = r->write_ok, was_overflowing = r->overflowing;
    if (err == VISITS_EOVERFLOW) {
        r->overflowing = 1; /* lasting until an operator acts: not a readiness matter */
    } else if (err == 0) {
        r->write_ok = 1;
        r->overflowing = 0;
        r->failed_told = 0;
    } else {
        r->write_ok = 0;
        r->write_err = err;
    }
    pthread_mutex_unlock(&r->mu);
    if (err == VISITS_EOVERFLOW && !was_overflowing)
        log_error("%s: the counter is at its maximum (%s); visits are refused until an "
                  "operator lowers it with 'visitsctl set %s N'",
                  r->path, visits_strerror(err), r->path);
    else if (err != 0 && err != VISITS_EOVERFLOW && was_ok)
        log_error("%s: write failed: %s (%s); GET / answers 503 and /ready is not ready until "
                  "a write succeeds again",
                  r->path, visits_strerror(err), visits_err_name(err));
    else if (err == 0 && !was_ok)
        log_info("%s: writes succeed again%s; ready", r->path, how);
}

void readiness_handle_failed(struct readiness *r, int interval)
{
    pthread_mutex_lock(&r->mu);
    int tell = !r->failed_told;
    r->failed_told = 1;
    pthread_mutex_unlock(&r->mu);
    if (tell)
        log_error("%s: the counter handle failed (the outcome of the write is unknown); "
                  "closed it, reopening with backoff%s",
                  r->path, interval ? "; acknowledged visits not yet written are lost" : "");
}

void readiness_still_failing(struct readiness *r, int err)
{
    pthread_mutex_lock(&r->mu);
    if (!r->write_ok)
        r->write_err = err;
    pthread_mutex_unlock(&r->mu);
}

int readiness_write_ok(struct readiness *r)
{
    return atomic_load_explicit(&r->write_ok, memory_order_relaxed);
}

uint64_t readiness_running_ms(struct readiness *r)
{
    visits_stats st;
    if (visits_get_stats(r->counter, &st) != 0)
        return 0;
    uint64_t ms = st.cycle_running_ns / 1000000u;
    if (ms >= r->stall_ms) {
        uint64_t id = st.cycles + st.cycles_failed + 1;
        pthread_mutex_lock(&r->mu);
        if (r->stall_cycle != id) {
            r->stall_cycle = id;
            r->stall_told = 0;
            atomic_fetch_add_explicit(&r->stalls, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&r->mu);
    }
    return ms;
}

int readiness_stall_news(struct readiness *r)
{
    pthread_mutex_lock(&r->mu);
    int news = r->stall_cycle != 0 && !r->stall_told;
    r->stall_told = 1;
    pthread_mutex_unlock(&r->mu);
    return news;
}

unsigned readiness_stall_ms(const struct readiness *r)
{
    return r->stall_ms;
}

void readiness_view(struct readiness *r, struct readiness_view *out)
{
    uint64_t running = readiness_running_ms(r);
    pthread_mutex_lock(&r->mu);
    out->ready = 0;
    if (r->draining)
        snprintf(out->reason, sizeof(out->reason), "shutting down");
    else if (r->held[0] != '\0')
        snprintf(out->reason, sizeof(out->reason), "%s", r->held);
    else if (running >= r->stall_ms)
        snprintf(out->reason, sizeof(out->reason),
                 "counter write stalled for %" PRIu64 ".%" PRIu64 " s: %s", running / 1000,
                 running % 1000 / 100, r->path);
    else if (!r->write_ok)
        snprintf(out->reason, sizeof(out->reason), "counter write failed: %s: %s", r->path,
                 visits_strerror(r->write_err));
    else
        out->ready = 1;
    if (out->ready)
        out->reason[0] = '\0';
    pthread_mutex_unlock(&r->mu);
}

void readiness_set_draining(struct readiness *r)
{
    pthread_mutex_lock(&r->mu);
    r->draining = 1;
    pthread_mutex_unlock(&r->mu);
}

void readiness_hold(struct readiness *r, const char *reason)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->held, sizeof(r->held), "%s", reason[0] != '\0' ? reason : "not ready");
    atomic_store(&r->holding, 1);
    pthread_mutex_unlock(&r->mu);
}

void readiness_release(struct readiness *r)
{
    pthread_mutex_lock(&r->mu);
    r->held[0] = '\0';
    atomic_store(&r->holding, 0);
    pthread_mutex_unlock(&r->mu);
}

int readiness_held(struct readiness *r, char *reason, size_t size)
{
    if (!atomic_load_explicit(&r->holding, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&r->mu);
    int held = r->held[0] != '\0';
    if (held)
        snprintf(reason, size, "%s", r->held);
    pthread_mutex_unlock(&r->mu);
    return held;
}

void readiness_metrics(struct readiness *r, struct strbuf *sb)
{
    struct readiness_view view;
    readiness_view(r, &view);
    visits_stats st;
    memset(&st, 0, sizeof(st));
    visits_get_stats(r->counter, &st);
    strbuf_printf(sb,
                  "# HELP visits_write_stall_seconds How long the write cycle now running has "
                  "run (0: none); past --stall-ms the server is not ready.\n"
                  "# TYPE visits_write_stall_seconds gauge\n"
                  "visits_write_stall_seconds %.3f\n"
                  "# HELP visits_write_stalls_total Write cycles that ran longer than "
                  "--stall-ms.\n"
                  "# TYPE visits_write_stalls_total counter\n"
                  "visits_write_stalls_total %" PRIu64 "\n"
                  "# HELP visits_ready 1 when the counter is writable and the server is not "
                  "stopping.\n"
                  "# TYPE visits_ready gauge\n"
                  "visits_ready %d\n",
                  (double)st.cycle_running_ns / 1e9,
                  (uint64_t)atomic_load_explicit(&r->stalls, memory_order_relaxed), view.ready);
}
