/*
 * resolver.c: the addresses of the peers that GET /cluster asks, per event loop.
 *
 * Names are resolved by libh2o's getaddrinfo threads (h2o/hostinfo.h), never on an event
 * loop; each event loop keeps the resulting list for PEERS_DNS_TTL_MS, and concurrent
 * /cluster requests share one resolution. A resolution that takes more than half of
 * --peer-timeout-ms does not hold the others back: the waiting requests get the list as
 * it is then (the slow name is an error entry, or its previous addresses if it had some),
 * and the late answer updates the list. Addresses that are this server itself (a local
 * address and our port) are marked, so that nobody asks itself over the network.
 */
#include "resolver.h"

#include "clock.h"
#include "histogram.h"

#include <arpa/inet.h>
#include <h2o/hostinfo.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEERS_DNS_TTL_MS 1000 /* how long an event loop reuses resolved names */

/* ---- targets --------------------------------------------------------------------------- */

static void set_target(struct peer_target *t, int family, const void *addr, uint16_t port)
{
    memset(t, 0, sizeof(*t));
    t->family = family;
    memcpy(t->addr, addr, family == AF_INET ? 4 : 16);
    t->port = port;
    inet_ntop(family, addr, t->host, sizeof(t->host));
    snprintf(t->label, sizeof(t->label), family == AF_INET ? "%s:%u" : "[%s]:%u", t->host,
             (unsigned)port);
}

static int same_target(const struct peer_target *a, const struct peer_target *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* The addresses this server answers on: the bound address, or with a wildcard bind every
 * address of the host's interfaces (read once per event loop, at its start). */
struct local_addrs {
    int wildcard;
    size_t n;
    struct {
        int family;
        unsigned char addr[16];
    } a[64];
};

static void local_addrs_init(struct local_addrs *l, const char *bind)
{
    unsigned char addr[16];
    memset(l, 0, sizeof(*l));
    if (inet_pton(AF_INET, bind, addr) == 1) {
        l->wildcard = memcmp(addr, "\0\0\0\0", 4) == 0;
        l->a[0].family = AF_INET;
        memcpy(l->a[0].addr, addr, 4);
    } else if (inet_pton(AF_INET6, bind, addr) == 1) {
        l->wildcard = memcmp(addr, &in6addr_any, 16) == 0;
        l->a[0].family = AF_INET6;
        memcpy(l->a[0].addr, addr, 16);
    }
    l->n = 1;
    if (!l->wildcard)
        return;
    l->n = 0;
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i != NULL && l->n < sizeof(l->a) / sizeof(l->a[0]);
         i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            l->a[l->n].family = AF_INET;
            memcpy(l->a[l->n++].addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            l->a[l->n].family = AF_INET6;
            memcpy(l->a[l->n++].addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        }
    }
    freeifaddrs(ifs);
}

static int is_local(const struct local_addrs *l, const struct peer_target *t, unsigned port)
{
    if (t->port != port)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->a[i].family == t->family &&
            memcmp(l->a[i].addr, t->addr, t->family == AF_INET ? 4 : 16) == 0)
            return 1;
    return 0;
}

/* ---- the resolver of one event loop ----------------------------------------------------- */

struct lookup {
    struct resolver *r;
    size_t source;
    h2o_hostinfo_getaddr_req_t *req; /* in flight */
    struct peer_target *addrs;       /* the last answer */
    size_t naddrs;
    char error[sizeof(((struct peer_problem *)0)->error)]; /* or why there is none */
};

struct resolver {
    const struct resolver_config *cfg;
    h2o_loop_t *loop;
    h2o_multithread_receiver_t *getaddr_receiver;
    struct resolver_counts *counts;
    struct lookup *lookups; /* one per source */
    size_t in_flight;
    int late;                   /* the lookups in flight missed their wait */
    h2o_timeout_t wait_timeout; /* half of --peer-timeout-ms */
    h2o_timeout_entry_t wait_entry;
    int dynamic; /* some source is a name */
    struct local_addrs local;
    struct peer_list list; /* the current list */
    uint64_t list_at_ms;
    int have_list;
    h2o_linklist_t waiters; /* struct resolve_wait */
};

static int add_problem(struct peer_list *l, const char *label, const char *error)
{
    struct peer_problem *grown = realloc(l->problems, (l->nproblems + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    l->problems = grown;
    snprintf(grown[l->nproblems].label, sizeof(grown->label), "%s", label);
    snprintf(grown[l->nproblems].error, sizeof(grown->error), "%s", error);
    l->nproblems++;
    return 0;
}

static void add_target(struct resolver *r, const struct peer_target *t, size_t *dropped)
{
    struct peer_list *l = &r->list;
    for (size_t i = 0; i < l->ntargets; i++)
        if (same_target(&l->targets[i], t))
            return;
    if (l->ntargets == PEERS_MAX) {
        (*dropped)++;
        return;
    }
    l->targets[l->ntargets] = *t;
    l->targets[l->ntargets].self = is_local(&r->local, t, r->cfg->port);
    l->ntargets++;
}

/* Rebuilds the list from the sources and the latest answers. */
static void rebuild(struct resolver *r)
{
    size_t dropped = 0;
    free(r->list.problems);
    r->list.problems = NULL;
    r->list.nproblems = 0;
    r->list.ntargets = 0;
    for (size_t i = 0; i < r->cfg->nsources; i++) {
        const struct peer_source *s = &r->cfg->sources[i];
        struct lookup *lk = &r->lookups[i];
        if (s->numeric) {
            struct peer_target t;
            unsigned char addr[16];
            int family = inet_pton(AF_INET, s->host, addr) == 1 ? AF_INET : AF_INET6;
            inet_pton(family, s->host, addr);
            set_target(&t, family, addr, s->port);
            add_target(r, &t, &dropped);
        } else if (lk->naddrs == 0) {
            char label[PEER_HOST_MAX + 8];
            snprintf(label, sizeof(label), "%s:%u", s->host, (unsigned)s->port);
            if (lk->req != NULL && lk->error[0] == '\0')
                snprintf(lk->error, sizeof(lk->error), "cannot resolve %s: no answer within %u ms",
                         s->host, (unsigned)r->wait_timeout.timeout);
            add_problem(&r->list, label, lk->error);
        } else {
            for (size_t j = 0; j < (s->every_address ? lk->naddrs : 1); j++)
                add_target(r, &lk->addrs[j], &dropped);
        }
    }
    if (dropped != 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%zu more peer address(es) not queried (at most %d)", dropped,
                 PEERS_MAX);
        add_problem(&r->list, "...", msg);
    }
    r->list_at_ms = clock_mono_ms();
    r->have_list = 1;
}

static void notify_waiters(struct resolver *r)
{
    while (!h2o_linklist_is_empty(&r->waiters)) {
        struct resolve_wait *wait =
            H2O_STRUCT_FROM_MEMBER(struct resolve_wait, link, r->waiters.next);
        h2o_linklist_unlink(&wait->link);
        wait->cb(wait, &r->list);
    }
}

static void on_getaddr(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res,
                       void *data)
{
    (void)req;
    struct lookup *lk = data;
    struct resolver *r = lk->r;
    const struct peer_source *s = &r->cfg->sources[lk->source];
    lk->req = NULL;
    lk->error[0] = '\0';
    free(lk->addrs);
    lk->addrs = NULL;
    lk->naddrs = 0;
    size_t n = 0;
    for (struct addrinfo *ai = errstr == NULL ? res : NULL; ai != NULL; ai = ai->ai_next)
        n++;
    if (n != 0 && (lk->addrs = calloc(n, sizeof(*lk->addrs))) == NULL) {
        errstr = "out of memory";
        n = 0;
    }
    for (struct addrinfo *ai = errstr == NULL ? res : NULL; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            set_target(&lk->addrs[lk->naddrs++], AF_INET,
                       &((struct sockaddr_in *)ai->ai_addr)->sin_addr, s->port);
        else if (ai->ai_family == AF_INET6)
            set_target(&lk->addrs[lk->naddrs++], AF_INET6,
                       &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, s->port);
    }
    if (lk->naddrs == 0)
        snprintf(lk->error, sizeof(lk->error), "cannot resolve %s: %s", s->host,
                 errstr != NULL ? errstr : "no IPv4 or IPv6 address");
    counter_add(lk->naddrs != 0 ? &r->counts->ok : &r->counts->failed, 1);
    if (--r->in_flight == 0) {
        if (h2o_timeout_is_linked(&r->wait_entry))
            h2o_timeout_unlink(&r->wait_entry);
        r->late = 0;
        rebuild(r);
        notify_waiters(r);
    } else if (r->late) {
        rebuild(r); /* a late answer: the list gets it at once */
    }
}

/* Half the peer timeout has passed with names still unresolved: the waiting requests go
 * on with the list as it is. */
static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    struct resolver *r = H2O_STRUCT_FROM_MEMBER(struct resolver, wait_entry, entry);
    r->late = 1;
    rebuild(r);
    notify_waiters(r);
}

/* A zeroed array; aborts when out of memory, as libh2o does. */
static void *zalloc(size_t n, size_t size)
{
    void *p = h2o_mem_alloc(n * size);
    memset(p, 0, n * size);
    return p;
}

struct resolver *resolver_create(h2o_loop_t *loop, h2o_multithread_receiver_t *getaddr_receiver,
                                 const struct resolver_config *cfg, struct resolver_counts *counts)
{
    struct resolver *r = zalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->loop = loop;
    r->getaddr_receiver = getaddr_receiver;
    r->counts = counts;
    h2o_linklist_init_anchor(&r->waiters);
    r->lookups = zalloc(cfg->nsources + 1, sizeof(*r->lookups));
    r->list.targets = zalloc(PEERS_MAX, sizeof(*r->list.targets));
    for (size_t i = 0; i < cfg->nsources; i++) {
        r->lookups[i].r = r;
        r->lookups[i].source = i;
        if (!cfg->sources[i].numeric)
            r->dynamic = 1;
    }
    local_addrs_init(&r->local, cfg->bind);
    unsigned half = cfg->peer_timeout_ms / 2;
    h2o_timeout_init(loop, &r->wait_timeout, half != 0 ? half : 1);
    r->wait_entry.cb = on_wait_timeout;
    if (!r->dynamic)
        rebuild(r); /* addresses only: the list never changes */
    return r;
}

const struct peer_list *resolver_get(struct resolver *r, struct resolve_wait *wait)
{
    if (r->have_list &&
        (!r->dynamic || clock_mono_ms() - r->list_at_ms < PEERS_DNS_TTL_MS || r->late))
        return &r->list; /* fresh, or the best there is while a slow name resolves */
    h2o_linklist_insert(&r->waiters, &wait->link);
    if (r->in_flight != 0)
        return NULL; /* a resolution is under way: share it */
    h2o_timeout_link(r->loop, &r->wait_timeout, &r->wait_entry);
    for (size_t i = 0; i < r->cfg->nsources; i++) {
        const struct peer_source *s = &r->cfg->sources[i];
        if (s->numeric)
            continue;
        char serv[8];
        int slen = snprintf(serv, sizeof(serv), "%u", (unsigned)s->port);
        r->in_flight++;
        /* h2o_hostinfo_getaddr() never calls back before it returns: the answer comes
         * through the loop's receiver. */
        r->lookups[i].req = h2o_hostinfo_getaddr(
            r->getaddr_receiver, h2o_iovec_init(s->host, strlen(s->host)),
            h2o_iovec_init(serv, (size_t)slen), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
            AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, &r->lookups[i]);
    }
    return NULL;
}

void resolver_cancel(struct resolve_wait *wait)
{
    if (h2o_linklist_is_linked(&wait->link))
        h2o_linklist_unlink(&wait->link);
}
