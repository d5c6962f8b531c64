/*
 * guard.h: what bounds one client connection once it is accepted.
 *
 *  - Every accepted connection has a record, attached to its socket (guard_attach) and
 *    freed when libh2o closes the socket.
 *  - Every request is tracked from routing (guard_request) until libh2o disposes of it. A
 *    connection with a response started GUARD_STALL_MS ago and still not written (its
 *    client reads nothing, or, on HTTP/2, grants no flow-control window) is closed; on
 *    HTTP/2 with a GOAWAY first.
 *  - HTTP/2, which libh2o 2.2.5 bounds only at 100 streams per connection and not at all
 *    against resets (CVE-2023-44487): at most GUARD_H2_STREAMS requests in progress per
 *    connection, at most GUARD_H2_SLOW of them on streams whose flow-control window is
 *    under GUARD_H2_SLOW_WINDOW bytes when they arrive; a request beyond is refused with
 *    RST_STREAM (REFUSED_STREAM: it was not processed, the client may retry it). Each
 *    connection has a budget of GUARD_H2_RESETS: every stream that the client resets
 *    before it is answered, and every refused stream, costs one; every answer gives one
 *    back. When it runs out the connection gets GOAWAY (ENHANCE_YOUR_CALM), libh2o opens
 *    no more of its streams, and it closes once those in progress are done.
 * Closes and GOAWAYs are logged, at most one line per GUARD_LOG_MS per event loop (with
 * how many were not logged).
 */
#ifndef VISITS_GUARD_H
#define VISITS_GUARD_H

#include <h2o.h>

#define GUARD_STALL_MS 10000
#define GUARD_H2_STREAMS 16
#define GUARD_H2_SLOW 4
#define GUARD_H2_SLOW_WINDOW 16384
#define GUARD_H2_RESETS 100
#define GUARD_LOG_MS 10000

struct guard_loop; /* one event loop's connections */

/* On the loop's thread, once: starts the loop's check for stalled connections (every
 * second). Aborts when out of memory, as libh2o does. */
struct guard_loop *guard_loop_create(h2o_context_t *ctx);
/* At accept, before h2o_accept: sock gets its record; on_close(data) runs when libh2o
 * closes it. */
void guard_attach(struct guard_loop *gl, h2o_socket_t *sock, void (*on_close)(void *data),
                  void *data);
/* The router, first thing for each request: 0 to go on; -1 when the request was refused
 * (an HTTP/2 stream reset): libh2o has disposed of it, do not touch req. */
int guard_request(h2o_req_t *req);

#endif /* VISITS_GUARD_H */
