/*
 * peer_call.h: one GET /visits to a peer, with libh2o's asynchronous HTTP/1 client, on
 * the calling event loop. The answer is read with a size limit and a strict JSON reader
 * (json.h): whatever the peer sends or does, the call ends with an outcome and, unless it
 * is PEER_OK, a message saying what went wrong.
 */
#ifndef VISITS_PEER_CALL_H
#define VISITS_PEER_CALL_H

#include "resolver.h"
#include "text.h"

#include <h2o.h>
#include <h2o/http1client.h>
#include <stdint.h>

enum peer_outcome {
    PEER_OK,
    PEER_TIMEOUT,
    PEER_CONNECT_ERROR,
    PEER_IO_ERROR,
    PEER_BAD_STATUS,
    PEER_BAD_BODY,
    PEER_TOO_LARGE,
    PEER_CANCELLED,
    PEER_OUTCOME_COUNT
};
/* "ok", "timeout", ...: a metrics label. */
const char *peer_outcome_name(int outcome);

struct peer_call {
    /* the caller's */
    struct peer_target target;
    void (*on_done)(struct peer_call *pc); /* once, on the loop; may free pc */
    void *data;
    /* the result */
    int done;
    int outcome;     /* enum peer_outcome */
    uint64_t visits; /* PEER_OK: the peer's answer */
    char pod[254];
    char error[256]; /* otherwise: what went wrong */
    /* the call's own */
    h2o_http1client_t *client; /* while libh2o's client is alive */
    unsigned timeout_ms;
    char request[256];
    h2o_iovec_t reqvec;
    struct strbuf body;
};

/* Starts the call (pc zeroed but for the caller's fields) with ctx, whose io_timeout
 * bounds every wait; a timeout is reported as "no answer within timeout_ms". on_done may
 * run before this returns (a failure to connect). */
void peer_call_start(struct peer_call *pc, h2o_http1client_ctx_t *ctx, unsigned timeout_ms);
/* Ends a call that is not done: PEER_TIMEOUT, or outcome with message. on_done runs. */
void peer_call_abort(struct peer_call *pc, int outcome, const char *message);

#endif /* VISITS_PEER_CALL_H */
