/*
 * listener.h: the listening socket of each event loop, and the limit on the client
 * connections open at once (--max-connections).
 *
 * Every event loop polls its own duplicate of one listening socket. A loop stops polling
 * it (pauses) when the limit is reached, and when accept(2) fails for want of descriptors
 * or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): new connections then wait in the kernel's
 * queue (the backlog) while the connections already open keep being served, instead of
 * the loop spinning on a socket it cannot take from. At the limit a loop resumes as soon
 * as a connection closes (one of its own at once, another loop's within 20 ms); after a
 * failure it retries after 10 ms, doubling up to 1 s while accept keeps failing. Each
 * connection accepted after waiting so is counted (visits_connections_refused_total), and
 * each episode is logged once when it begins and once when it ends (at most one episode
 * per 10 s is logged).
 */
#ifndef VISITS_LISTENER_H
#define VISITS_LISTENER_H

#include "guard.h"
#include "text.h"

#include <h2o.h>

struct listener_shared; /* the limit and the counts, shared by every loop */
struct listener;        /* one loop's duplicate of the listening socket */

/* Aborts when out of memory, as libh2o does. */
struct listener_shared *listener_shared_create(unsigned max_connections);
/* On the loop's thread: polls fd (the loop's own duplicate of the listening socket) and
 * hands each connection, with its guard (guard.h), to accept_ctx. */
struct listener *listener_start(struct listener_shared *sh, h2o_accept_ctx_t *accept_ctx,
                                struct guard_loop *guard, int fd);
/* On the loop's thread, at shutdown: stops accepting and closes the descriptor. */
void listener_stop(struct listener *l);
/* Client connections open now (any thread). */
unsigned listener_open_connections(struct listener_shared *sh);
/* Appends visits_connections_refused_total (Prometheus text). Any thread. */
void listener_metrics(struct listener_shared *sh, struct strbuf *sb);

#endif /* VISITS_LISTENER_H */
