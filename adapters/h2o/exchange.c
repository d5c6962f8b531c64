/*
 * exchange.c: the rounds of the exchange, on a thread and an event loop of their own.
 *
 * A round: take the peer list (resolver.c, names resolved by libh2o's getaddrinfo
 * threads), start one GET /slots per peer (peer_call.c), and when all of them have ended
 * or --peer-timeout-ms has passed, merge the answers: the union of every valid answer
 * (slotmap_merge), the own slot raised through the committer when a peer holds it
 * higher, every other slot raised in the replicas. Then the state shown by /cluster and
 * /metrics is updated under a lock that no I/O ever holds. The merges block this thread
 * on the disk, never an event loop that serves requests.
 */
#include "exchange.h"

#include "clock.h"
#include "histogram.h"
#include "log.h"
#include "peer_call.h"
#include "resolver.h"
#include "slotmap.h"

#include <errno.h>
#include <h2o/hostinfo.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECOVER_RETRY_MS 200 /* during the recovery: a new round this soon after one */
#define PODS_MAX 1024        /* pods remembered for their last answer */
#define LABELS_MAX 256       /* peer labels of visits_peer_sync_rounds_total */
#define SELF_MAX 8           /* addresses found to be this server (not by the resolver) */
#define HOLD_REASON "recovering the count from peers"

struct label_counts {
    char peer[PEER_HOST_MAX + 8]; /* pod name when known, else address */
    uint64_t ok, error;
};

struct exchange {
    struct exchange_config cfg; /* strings owned */
    struct peer_source *sources;
    struct resolver_config rcfg;
    pthread_t tid;
    int started;
    uint64_t start_ms;

    /* the exchange's thread */
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t getaddr_receiver;
    h2o_multithread_receiver_t stop_receiver;
    struct resolver *resolver;
    h2o_timeout_t io_timeout; /* --peer-timeout-ms: every wait of a call, and a round */
    h2o_timeout_t period;     /* --sync-peers-ms */
    h2o_timeout_t retry;      /* RECOVER_RETRY_MS */
    h2o_timeout_t recover;    /* --recover-ms */
    h2o_timeout_entry_t deadline_entry, period_entry, retry_entry, recover_entry;
    h2o_http1client_ctx_t client_ctx;
    atomic_int stop_requested; /* exchange_stop(): any thread */
    int stop;
    int in_round;
    int due; /* the period passed during a round */
    int resolving;
    int starting; /* inside start_calls(): a call that fails at once must not finish */
    struct resolve_wait wait;
    struct peer_call *calls;
    size_t ncalls, pending;
    struct peer_problem *problems;
    size_t nproblems;
    char self[SELF_MAX][56]; /* labels of addresses that answered with our own slot */
    size_t nself;
    int recovering;
    int recover_expired;
    char **recovered; /* labels of the peers that answered during the recovery */
    size_t nrecovered;
    uint64_t last_complete_ms; /* the last round with every name resolved */

    /* read by any thread, under mu */
    pthread_mutex_t mu;
    struct exchange_view view;
    struct label_counts *labels;
    size_t nlabels;
    uint64_t other_ok, other_error; /* labels beyond LABELS_MAX */
    atomic_uint_fast64_t outcomes[PEER_OUTCOME_COUNT];
    struct resolver_counts dns;
};

/* A zeroed allocation; aborts when out of memory, as libh2o does. */
static void *zalloc(size_t size)
{
    void *p = h2o_mem_alloc(size);
    memset(p, 0, size);
    return p;
}

static char *dup_str(const char *s)
{
    return h2o_strdup(NULL, s, SIZE_MAX).base;
}

struct exchange *exchange_create(const struct exchange_config *cfg)
{
    struct exchange *x = zalloc(sizeof(*x));
    x->cfg = *cfg;
    x->cfg.pod_name = dup_str(cfg->pod_name);
    x->cfg.bind = dup_str(cfg->bind);
    size_t n = cfg->npeers + (cfg->peers_dns != NULL);
    x->sources = zalloc((n + 1) * sizeof(*x->sources));
    if (cfg->npeers != 0)
        memcpy(x->sources, cfg->peers, cfg->npeers * sizeof(*x->sources));
    if (cfg->peers_dns != NULL)
        x->sources[cfg->npeers] = *cfg->peers_dns;
    x->cfg.peers = x->sources;
    x->cfg.peers_dns = NULL;
    x->rcfg = (struct resolver_config){x->sources, n, x->cfg.bind, cfg->port, cfg->peer_timeout_ms};
    pthread_mutex_init(&x->mu, NULL);
    x->start_ms = clock_mono_ms();
    x->last_complete_ms = x->start_ms;
    x->recovering = n != 0 && cfg->recover_ms != 0;
    x->view.recovering = x->recovering;
    if (x->recovering)
        committer_hold_ready(cfg->committer, HOLD_REASON);
    return x;
}

/* ---- the state others read ------------------------------------------------------------- */

static struct label_counts *label_of(struct exchange *x, const char *peer)
{
    for (size_t i = 0; i < x->nlabels; i++)
        if (strcmp(x->labels[i].peer, peer) == 0)
            return &x->labels[i];
    if (x->nlabels == LABELS_MAX)
        return NULL;
    if (x->nlabels % 16 == 0)
        x->labels = h2o_mem_realloc(x->labels, (x->nlabels + 16) * sizeof(*x->labels));
    struct label_counts *l = &x->labels[x->nlabels++];
    memset(l, 0, sizeof(*l));
    snprintf(l->peer, sizeof(l->peer), "%s", peer);
    return l;
}

static struct exchange_pod *pod_of(struct exchange_view *v, const char *pod)
{
    for (size_t i = 0; i < v->npods; i++)
        if (strcmp(v->pods[i].pod, pod) == 0)
            return &v->pods[i];
    if (v->npods == PODS_MAX) { /* forget the pod not heard from for the longest */
        size_t oldest = 0;
        for (size_t i = 1; i < v->npods; i++)
            if (v->pods[i].last_ok_ms < v->pods[oldest].last_ok_ms)
                oldest = i;
        v->pods[oldest] = v->pods[--v->npods];
    }
    if (v->npods % 16 == 0)
        v->pods = h2o_mem_realloc(v->pods, (v->npods + 16) * sizeof(*v->pods));
    struct exchange_pod *p = &v->pods[v->npods++];
    memset(p, 0, sizeof(*p));
    snprintf(p->pod, sizeof(p->pod), "%s", pod);
    return p;
}

/* The pod last seen at address, "" when none. */
static const char *known_pod(const struct exchange_view *v, const char *address)
{
    for (size_t i = 0; i < v->npeers; i++)
        if (strcmp(v->peers[i].address, address) == 0)
            return v->peers[i].pod;
    return "";
}

static uint64_t last_ok_at(const struct exchange_view *v, const char *address)
{
    for (size_t i = 0; i < v->npeers; i++)
        if (strcmp(v->peers[i].address, address) == 0)
            return v->peers[i].last_ok_ms;
    return 0;
}

int exchange_view(struct exchange *x, struct exchange_view *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&x->mu);
    *out = x->view;
    out->peers = NULL;
    out->pods = NULL;
    if (x->view.npeers != 0)
        out->peers = malloc(x->view.npeers * sizeof(*out->peers));
    if (x->view.npods != 0)
        out->pods = malloc(x->view.npods * sizeof(*out->pods));
    int oom =
        (x->view.npeers != 0 && out->peers == NULL) || (x->view.npods != 0 && out->pods == NULL);
    if (!oom) {
        if (out->peers != NULL)
            memcpy(out->peers, x->view.peers, x->view.npeers * sizeof(*out->peers));
        if (out->pods != NULL)
            memcpy(out->pods, x->view.pods, x->view.npods * sizeof(*out->pods));
    }
    pthread_mutex_unlock(&x->mu);
    if (oom) {
        exchange_view_free(out);
        return -ENOMEM;
    }
    return 0;
}

void exchange_view_free(struct exchange_view *v)
{
    free(v->peers);
    free(v->pods);
    v->peers = NULL;
    v->pods = NULL;
    v->npeers = v->npods = 0;
}

/* ---- a round ---------------------------------------------------------------------------- */

static void start_round(struct exchange *x);
static void finish_round(struct exchange *x);

static int is_self(const struct exchange *x, const char *label)
{
    for (size_t i = 0; i < x->nself; i++)
        if (strcmp(x->self[i], label) == 0)
            return 1;
    return 0;
}

static void maybe_finish(struct exchange *x)
{
    if (x->in_round && !x->starting && !x->resolving && x->pending == 0)
        finish_round(x);
}

static void on_call_done(struct peer_call *pc)
{
    struct exchange *x = pc->data;
    atomic_fetch_add(&x->outcomes[pc->outcome], 1);
    x->pending--;
    maybe_finish(x);
}

static void abort_calls(struct exchange *x, int outcome, const char *message)
{
    int starting = x->starting;
    x->starting = 1; /* finishing is the caller's */
    for (size_t i = 0; i < x->ncalls; i++)
        if (!x->calls[i].done)
            peer_call_abort(&x->calls[i], outcome, message);
    x->starting = starting;
}

static void start_calls(struct exchange *x, const struct peer_list *list)
{
    size_t n = 0;
    for (size_t i = 0; i < list->ntargets; i++)
        n += !list->targets[i].self && !is_self(x, list->targets[i].label);
    x->calls = n != 0 ? zalloc(n * sizeof(*x->calls)) : NULL;
    x->problems = NULL;
    x->nproblems = list->nproblems;
    if (list->nproblems != 0) {
        x->problems = zalloc(list->nproblems * sizeof(*x->problems));
        memcpy(x->problems, list->problems, list->nproblems * sizeof(*x->problems));
    }
    x->starting = 1;
    for (size_t i = 0; i < list->ntargets; i++) {
        if (list->targets[i].self || is_self(x, list->targets[i].label))
            continue;
        struct peer_call *pc = &x->calls[x->ncalls++];
        pc->target = list->targets[i];
        pc->on_done = on_call_done;
        pc->data = x;
        x->pending++;
        peer_call_start(pc, &x->client_ctx, x->cfg.peer_timeout_ms);
    }
    x->starting = 0;
}

static void on_resolved(struct resolve_wait *wait, const struct peer_list *list)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, wait, wait);
    x->resolving = 0;
    start_calls(x, list);
    maybe_finish(x);
}

/* --peer-timeout-ms after the round began: what has not answered is a timeout. */
static void on_deadline(h2o_timeout_entry_t *entry)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, deadline_entry, entry);
    if (x->resolving) {
        resolver_cancel(&x->wait);
        x->resolving = 0;
        x->problems = zalloc(sizeof(*x->problems));
        x->nproblems = 1;
        snprintf(x->problems->label, sizeof(x->problems->label), "(peer names)");
        snprintf(x->problems->error, sizeof(x->problems->error),
                 "peer names not resolved within %u ms", x->cfg.peer_timeout_ms);
    }
    abort_calls(x, PEER_TIMEOUT, NULL);
    maybe_finish(x);
}

static void start_round(struct exchange *x)
{
    x->in_round = 1;
    x->due = 0;
    x->calls = NULL;
    x->ncalls = x->pending = 0;
    x->problems = NULL;
    x->nproblems = 0;
    if (!h2o_timeout_is_linked(&x->period_entry))
        h2o_timeout_link(x->loop, &x->period, &x->period_entry);
    h2o_timeout_link(x->loop, &x->io_timeout, &x->deadline_entry);
    const struct peer_list *list = resolver_get(x->resolver, &x->wait);
    if (list != NULL)
        start_calls(x, list);
    else
        x->resolving = 1;
    maybe_finish(x);
}

/* The own slot as the peers hold it: raise the counter when it is behind (a volume
 * restored from an older copy, or interval-mode visits lost in a crash). */
static void raise_own(struct exchange *x, const struct slotmap *merged)
{
    const char *own = replicas_own_id(x->cfg.replicas);
    const struct slot *s = slotmap_find(merged, own);
    uint64_t mine = committer_value(x->cfg.committer), now = 0;
    if (s == NULL || s->value <= mine)
        return;
    int err = committer_raise(x->cfg.committer, s->value, &now);
    if (err != 0)
        log_error("slot %s: the peers hold %" PRIu64 ", the counter %" PRIu64
                  ": cannot raise the counter: %s",
                  own, s->value, mine, visits_strerror(err));
    else
        log_info("slot %s: the counter was behind the peers' copy (%" PRIu64 " < %" PRIu64
                 "): raised it to %" PRIu64,
                 own, mine, s->value, now);
}

static int recovered_has(const struct exchange *x, const char *label)
{
    for (size_t i = 0; i < x->nrecovered; i++)
        if (strcmp(x->recovered[i], label) == 0)
            return 1;
    return 0;
}

/* During the recovery: whether every peer of this round has answered once. */
static int recovery_complete(struct exchange *x)
{
    for (size_t i = 0; i < x->ncalls; i++) {
        struct peer_call *pc = &x->calls[i];
        if (pc->outcome == PEER_OK && !recovered_has(x, pc->target.label)) {
            x->recovered = h2o_mem_realloc(x->recovered, (x->nrecovered + 1) * sizeof(char *));
            x->recovered[x->nrecovered++] = dup_str(pc->target.label);
        }
    }
    if (x->nproblems != 0)
        return 0;
    for (size_t i = 0; i < x->ncalls; i++)
        if (!is_self(x, x->calls[i].target.label) && !recovered_has(x, x->calls[i].target.label))
            return 0;
    return 1;
}

static void end_recovery(struct exchange *x, int complete)
{
    uint64_t took = clock_mono_ms() - x->start_ms;
    size_t asked = 0, answered = 0, unresolved = 0;
    for (size_t i = 0; i < x->view.npeers; i++) { /* the last round's peers (this thread's) */
        if (x->view.peers[i].unresolved) {
            unresolved++;
            continue;
        }
        asked++;
        answered += recovered_has(x, x->view.peers[i].address);
    }
    if (complete)
        log_info("recovery: every peer answered (%zu) within %" PRIu64 " ms; slot %s = %" PRIu64
                 "; ready",
                 asked, took, replicas_own_id(x->cfg.replicas), committer_value(x->cfg.committer));
    else
        log_error("recovery incomplete after %" PRIu64 " ms (--recover-ms): %zu of %zu peer(s) "
                  "answered%s; ready with slot %s = %" PRIu64
                  " (a peer that answers later still raises it)",
                  took, answered, asked, unresolved != 0 ? ", some names did not resolve" : "",
                  replicas_own_id(x->cfg.replicas), committer_value(x->cfg.committer));
    x->recovering = 0;
    for (size_t i = 0; i < x->nrecovered; i++)
        free(x->recovered[i]);
    free(x->recovered);
    x->recovered = NULL;
    x->nrecovered = 0;
    if (h2o_timeout_is_linked(&x->recover_entry))
        h2o_timeout_unlink(&x->recover_entry);
    pthread_mutex_lock(&x->mu);
    x->view.recovering = 0; /* /cluster answers from now on */
    pthread_mutex_unlock(&x->mu);
    committer_release_ready(x->cfg.committer);
}

static int peer_cmp(const void *a, const void *b)
{
    return strcmp(((const struct exchange_peer *)a)->address,
                  ((const struct exchange_peer *)b)->address);
}

/* The view and the metrics after a round (under mu). */
static void publish(struct exchange *x, uint64_t now)
{
    struct exchange_view *v = &x->view;
    size_t n = x->ncalls + x->nproblems;
    struct exchange_peer *peers = n != 0 ? zalloc(n * sizeof(*peers)) : NULL;
    size_t k = 0;
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < v->npods; i++)
        v->pods[i].answered = 0;
    for (size_t i = 0; i < x->ncalls; i++) {
        struct peer_call *pc = &x->calls[i];
        if (is_self(x, pc->target.label))
            continue;
        struct exchange_peer *p = &peers[k++];
        snprintf(p->address, sizeof(p->address), "%s", pc->target.label);
        p->ok = pc->outcome == PEER_OK;
        if (p->ok) {
            snprintf(p->pod, sizeof(p->pod), "%s", pc->answer.pod);
            p->last_ok_ms = now;
            struct exchange_pod *pod = pod_of(v, p->pod);
            pod->last_ok_ms = now;
            pod->answered = 1;
        } else {
            snprintf(p->pod, sizeof(p->pod), "%s", known_pod(v, p->address));
            snprintf(p->error, sizeof(p->error), "%s", pc->error);
            p->last_ok_ms = last_ok_at(v, p->address);
        }
        struct label_counts *l = label_of(x, p->pod[0] != '\0' ? p->pod : p->address);
        if (l != NULL)
            p->ok ? l->ok++ : l->error++;
        else
            p->ok ? x->other_ok++ : x->other_error++;
    }
    for (size_t i = 0; i < x->nproblems; i++) {
        struct exchange_peer *p = &peers[k++];
        snprintf(p->address, sizeof(p->address), "%s", x->problems[i].label);
        p->unresolved = 1;
        snprintf(p->error, sizeof(p->error), "%s", x->problems[i].error);
        struct label_counts *l = label_of(x, p->address);
        if (l != NULL)
            l->error++;
        else
            x->other_error++;
    }
    if (x->nproblems == 0)
        x->last_complete_ms = now;
    if (k > 1)
        qsort(peers, k, sizeof(*peers), peer_cmp); /* a stable order, whatever DNS says */
    free(v->peers);
    v->peers = peers;
    v->npeers = k;
    v->rounds++;
    v->last_round_ms = now;
    v->recovering = x->recovering;
    pthread_mutex_unlock(&x->mu);
}

static void finish_round(struct exchange *x)
{
    if (h2o_timeout_is_linked(&x->deadline_entry))
        h2o_timeout_unlink(&x->deadline_entry);
    resolver_cancel(&x->wait);
    x->in_round = 0;
    struct slotmap merged;
    slotmap_init(&merged);
    for (size_t i = 0; i < x->ncalls; i++) {
        struct peer_call *pc = &x->calls[i];
        if (pc->outcome != PEER_OK)
            continue;
        if (strcmp(pc->answer.slot, replicas_own_id(x->cfg.replicas)) == 0) {
            /* this server under another address: never asked again */
            if (x->nself < SELF_MAX)
                snprintf(x->self[x->nself++], sizeof(x->self[0]), "%s", pc->target.label);
            continue;
        }
        if (slotmap_merge(&merged, &pc->answer.slots) == -ENOMEM)
            log_error("exchange: out of memory merging the answer of %s", pc->target.label);
    }
    if (!x->stop) {
        struct replicas_merged res;
        raise_own(x, &merged);
        replicas_merge(x->cfg.replicas, &merged, &res);
    }
    slotmap_free(&merged);
    uint64_t now = clock_mono_ms();
    if (now == 0)
        now = 1; /* 0 means "never" in the view */
    publish(x, now);
    if (x->recovering && !x->stop) {
        int complete = recovery_complete(x);
        if (complete || x->recover_expired)
            end_recovery(x, complete);
    }
    for (size_t i = 0; i < x->ncalls; i++)
        slotwire_free(&x->calls[i].answer);
    free(x->calls);
    free(x->problems);
    x->calls = NULL;
    x->problems = NULL;
    x->ncalls = x->nproblems = 0;
    if (x->stop)
        return;
    if (x->recovering) {
        if (!h2o_timeout_is_linked(&x->retry_entry))
            h2o_timeout_link(x->loop, &x->retry, &x->retry_entry);
    } else if (x->due) {
        start_round(x);
    } else if (!h2o_timeout_is_linked(&x->period_entry)) {
        h2o_timeout_link(x->loop, &x->period, &x->period_entry);
    }
}

/* ---- timers and the thread ------------------------------------------------------------ */

static void on_period(h2o_timeout_entry_t *entry)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, period_entry, entry);
    if (x->stop || x->recovering)
        return; /* the recovery runs its rounds back to back */
    if (x->in_round)
        x->due = 1;
    else
        start_round(x);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, retry_entry, entry);
    if (!x->stop && !x->in_round)
        start_round(x);
}

static void on_recover_timeout(h2o_timeout_entry_t *entry)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, recover_entry, entry);
    if (!x->recovering)
        return;
    x->recover_expired = 1;
    if (x->in_round) {
        abort_calls(x, PEER_TIMEOUT, NULL); /* the round ends now and ends the recovery */
        if (x->resolving)
            on_deadline(&x->deadline_entry);
        maybe_finish(x);
    } else {
        end_recovery(x, 0);
        if (!h2o_timeout_is_linked(&x->retry_entry) && !h2o_timeout_is_linked(&x->period_entry))
            h2o_timeout_link(x->loop, &x->period, &x->period_entry);
    }
}

/* A NULL message wakes the loop without calling a receiver: exchange_main looks at the
 * flag after every turn. */
static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    (void)messages;
}

static void stop_now(struct exchange *x)
{
    x->stop = 1;
    if (x->in_round) {
        if (x->resolving) {
            resolver_cancel(&x->wait);
            x->resolving = 0;
        }
        abort_calls(x, PEER_CANCELLED, "cancelled: the server is stopping");
        maybe_finish(x);
    }
}

static void *exchange_main(void *arg)
{
    struct exchange *x = arg;
    pthread_setname_np(pthread_self(), "visits-exchange");
    while (!x->stop || x->in_round) {
        h2o_evloop_run(x->loop, 100);
        if (!x->stop && atomic_load(&x->stop_requested))
            stop_now(x);
    }
    return NULL;
}

int exchange_start(struct exchange *x)
{
    if (x->rcfg.nsources == 0)
        return 0; /* no peers: nothing to exchange, no thread */
    x->loop = h2o_evloop_create();
    x->queue = h2o_multithread_create_queue(x->loop);
    h2o_multithread_register_receiver(x->queue, &x->getaddr_receiver,
                                      h2o_hostinfo_getaddr_receiver);
    h2o_multithread_register_receiver(x->queue, &x->stop_receiver, on_wakeup);
    h2o_timeout_init(x->loop, &x->io_timeout, x->cfg.peer_timeout_ms);
    h2o_timeout_init(x->loop, &x->period, x->cfg.sync_ms);
    h2o_timeout_init(x->loop, &x->retry, RECOVER_RETRY_MS);
    h2o_timeout_init(x->loop, &x->recover, x->cfg.recover_ms != 0 ? x->cfg.recover_ms : 1);
    x->deadline_entry.cb = on_deadline;
    x->period_entry.cb = on_period;
    x->retry_entry.cb = on_retry;
    x->recover_entry.cb = on_recover_timeout;
    x->wait.cb = on_resolved;
    x->client_ctx.loop = x->loop;
    x->client_ctx.getaddr_receiver = &x->getaddr_receiver;
    x->client_ctx.io_timeout = &x->io_timeout;
    x->resolver = resolver_create(x->loop, &x->getaddr_receiver, &x->rcfg, &x->dns);
    if (x->recovering)
        h2o_timeout_link(x->loop, &x->recover, &x->recover_entry);
    /* The first round is started here, before the thread runs the loop: nothing else
     * touches the loop yet. */
    start_round(x);
    int err = pthread_create(&x->tid, NULL, exchange_main, x);
    if (err != 0)
        return -err;
    x->started = 1;
    return 0;
}

void exchange_stop(struct exchange *x, uint64_t deadline_ms)
{
    if (!x->started)
        return;
    atomic_store(&x->stop_requested, 1);
    h2o_multithread_send_message(&x->stop_receiver, NULL);
    struct timespec ts = clock_real_deadline(deadline_ms, 0);
    if (pthread_timedjoin_np(x->tid, NULL, &ts) != 0)
        log_error("exchange: the thread did not stop in time (a write of a replica hangs?)");
    else
        x->started = 0;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static void label_value(struct strbuf *sb, const char *s)
{
    /* Prometheus label values escape backslash, double quote and newline */
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            strbuf_add(sb, "\\", 1);
        if (*s == '\n')
            strbuf_lit(sb, "\\n");
        else
            strbuf_add(sb, s, 1);
    }
}

void exchange_metrics(struct exchange *x, struct strbuf *sb)
{
    uint64_t now = clock_mono_ms();
    strbuf_lit(sb, "# HELP visits_peer_sync_rounds_total Peers asked for their slots (GET "
                   "/slots), by peer (its pod name when known, else its address) and result.\n"
                   "# TYPE visits_peer_sync_rounds_total counter\n");
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->nlabels; i++) {
        for (int r = 0; r < 2; r++) {
            strbuf_lit(sb, "visits_peer_sync_rounds_total{peer=\"");
            label_value(sb, x->labels[i].peer);
            strbuf_puts(sb, r == 0 ? "\",result=\"ok\"} " : "\",result=\"error\"} ");
            strbuf_u64(sb, r == 0 ? x->labels[i].ok : x->labels[i].error);
            strbuf_lit(sb, "\n");
        }
    }
    if (x->other_ok + x->other_error != 0)
        strbuf_printf(sb,
                      "visits_peer_sync_rounds_total{peer=\"(other)\",result=\"ok\"} %" PRIu64
                      "\nvisits_peer_sync_rounds_total{peer=\"(other)\",result=\"error\"} %" PRIu64
                      "\n",
                      x->other_ok, x->other_error);
    /* the stalest peer of the current list: scaled-away pods are no longer in it; a name
     * that does not resolve is as old as the last round that resolved every name */
    uint64_t stalest = 0;
    for (size_t i = 0; i < x->view.npeers; i++) {
        const struct exchange_peer *p = &x->view.peers[i];
        uint64_t since = p->unresolved   ? x->last_complete_ms
                         : p->last_ok_ms ? p->last_ok_ms
                                         : x->start_ms;
        if (now > since && now - since > stalest)
            stalest = now - since;
    }
    if (x->view.rounds == 0 && x->rcfg.nsources != 0)
        stalest = now - x->start_ms;
    pthread_mutex_unlock(&x->mu);
    strbuf_printf(sb,
                  "# HELP visits_cluster_stalest_slot_age_seconds Age of the oldest last answer "
                  "among the peers now listed (a pod that left the peer list no longer counts).\n"
                  "# TYPE visits_cluster_stalest_slot_age_seconds gauge\n"
                  "visits_cluster_stalest_slot_age_seconds %.3f\n",
                  (double)stalest / 1e3);
    strbuf_lit(sb, "# HELP visits_peer_requests_total Requests of the exchange to the peers' "
                   "/slots, by outcome.\n"
                   "# TYPE visits_peer_requests_total counter\n");
    for (int o = 0; o < PEER_OUTCOME_COUNT; o++)
        strbuf_printf(sb, "visits_peer_requests_total{outcome=\"%s\"} %" PRIu64 "\n",
                      peer_outcome_name(o), (uint64_t)atomic_load(&x->outcomes[o]));
    strbuf_printf(sb,
                  "# HELP visits_peer_dns_lookups_total Resolutions of peer names (--peers, "
                  "--peers-dns), by result.\n"
                  "# TYPE visits_peer_dns_lookups_total counter\n"
                  "visits_peer_dns_lookups_total{result=\"ok\"} %" PRIu64 "\n"
                  "visits_peer_dns_lookups_total{result=\"error\"} %" PRIu64 "\n",
                  (uint64_t)counter_get(&x->dns.ok), (uint64_t)counter_get(&x->dns.failed));
}
