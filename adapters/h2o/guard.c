/*
 * guard.c: the record of each client connection, the requests in progress, the stall
 * timeout, and the HTTP/2 limits.
 *
 * This is the one file that reads libh2o's HTTP/2 connection and stream
 * (<h2o/http2_internal.h>, installed by Debian's libh2o-evloop-dev 2.2.5, whose khash.h
 * it includes is not: libh2o-2.2.5/khash.h stands in). libh2o 2.2.5 offers no hook to
 * refuse a stream or to send GOAWAY, so this does what libh2o's own connection.c does
 * for its protocol errors: encode the frame into the connection's write buffer, ask for
 * a write and, for GOAWAY, mark the connection half closed, after which libh2o opens no
 * more of its streams and closes it once those in progress end. The build refuses any
 * other libh2o version, whose structures may differ.
 *
 * A request is refused from within its own on_req, as libh2o itself refuses streams from
 * within the parse of their HEADERS frame: after on_req returns, libh2o's callers touch
 * the connection, never the stream.
 */
#include "guard.h"

#include "clock.h"
#include "log.h"

#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <h2o/version.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#if H2O_VERSION_MAJOR != 2 || H2O_VERSION_MINOR != 2 || H2O_VERSION_PATCH != 5
#error "guard.c reads libh2o 2.2.5's HTTP/2 structures: check them against this version"
#endif

#define SWEEP_MS 1000
#define SHUTDOWN_AFTER_GOAWAY_MS 1000 /* then the socket is shut down if still open */
#define TRIM_AFTER_CLOSES 64          /* connections closed before memory is given back */

struct guard_loop {
    h2o_context_t *ctx;
    h2o_timeout_t sweep_timeout;
    h2o_timeout_entry_t sweep;
    h2o_linklist_t requests; /* struct tracked */
    uint64_t logged_at;      /* the last log line, ms */
    unsigned unlogged;       /* events since, not logged */
};

struct guard_conn {
    struct guard_loop *gl;
    h2o_socket_t *sock;
    void (*on_close)(void *data);
    void *data;
    unsigned live; /* requests tracked */
    unsigned slow; /* ... of them on HTTP/2 streams with a small window */
    int budget;    /* HTTP/2 resets and refusals left */
    int goaway;    /* GOAWAY sent by the guard */
    uint64_t goaway_at;
    int shut; /* shutdown(2) done */
};

struct tracked {
    h2o_linklist_t link;
    struct guard_conn *gc; /* NULL if the connection went first (never, in 2.2.5) */
    h2o_req_t *req;
    uint64_t answering_since; /* ms, 0 until the sweep sees the response started */
    int h2, slow;
};

static atomic_uint closes_since_trim;

/* ---- logging ---------------------------------------------------------------------------- */

static void peer_name(h2o_socket_t *sock, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (len != 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof(addr));
        port = ntohs(v4->sin_port);
    } else if (len != 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof(addr));
        port = ntohs(v6->sin6_port);
    }
    snprintf(buf, size, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, port);
}

/* One line per GUARD_LOG_MS per loop: an attack must not flood the log. */
static void log_event(struct guard_conn *gc, const char *what)
{
    struct guard_loop *gl = gc->gl;
    uint64_t now = clock_mono_ms();
    if (gl->logged_at != 0 && now - gl->logged_at < GUARD_LOG_MS) {
        gl->unlogged++;
        return;
    }
    char peer[INET6_ADDRSTRLEN + 8];
    peer_name(gc->sock, peer, sizeof(peer));
    if (gl->unlogged != 0)
        log_info("client %s: %s (%u more such events in the last %d s)", peer, what, gl->unlogged,
                 GUARD_LOG_MS / 1000);
    else
        log_info("client %s: %s", peer, what);
    gl->logged_at = now;
    gl->unlogged = 0;
}

/* ---- closing from outside libh2o -------------------------------------------------------- */

/* What libh2o 2.2.5's enqueue_goaway() does: the frame, a write, and no more streams. */
static void send_goaway(struct guard_conn *gc, h2o_http2_conn_t *conn, int errnum,
                        const char *debug)
{
    if (conn->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED) {
        h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, errnum,
                                      h2o_iovec_init(debug, strlen(debug)));
        h2o_http2_conn_request_write(conn);
        conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
    }
    if (!gc->goaway) {
        gc->goaway = 1;
        gc->goaway_at = clock_mono_ms();
    }
}

/* The end of a connection libh2o would keep: its next read sees the end of the stream and
 * its next write fails, and libh2o closes it as when a client goes away. */
static void shut(struct guard_conn *gc)
{
    if (!gc->shut) {
        gc->shut = 1;
        shutdown(h2o_socket_get_fd(gc->sock), SHUT_RDWR);
    }
}

/* ---- requests ----------------------------------------------------------------------- */

static struct guard_conn *conn_of(h2o_req_t *req);

static void on_dispose(void *p)
{
    struct tracked *t = p;
    struct guard_conn *gc = t->gc;
    h2o_linklist_unlink(&t->link);
    if (gc == NULL)
        return;
    gc->live--;
    if (t->slow)
        gc->slow--;
    if (t->h2) {
        /* No answer begun: the client reset the stream (or the connection ends). */
        if (t->req->res.status == 0)
            gc->budget--;
        else if (gc->budget < GUARD_H2_RESETS)
            gc->budget++;
    }
}

/* RST_STREAM (REFUSED_STREAM), as libh2o refuses a stream beyond its own limit. A refused
 * stream was not answered: it is neither logged nor counted in the request metrics (libh2o
 * calls the loggers of its path when it disposes of it). */
static void refuse(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
    stream->req.pathconf = NULL;
    h2o_http2_encode_rst_stream_frame(&conn->_write.buf, stream->stream_id,
                                      -H2O_HTTP2_ERROR_REFUSED_STREAM);
    h2o_http2_conn_request_write(conn);
    h2o_http2_stream_reset(conn, stream);
}

/* 0 to let the HTTP/2 request in; -1 once it is refused. */
static int admit_h2(struct guard_conn *gc, h2o_req_t *req, int *slow)
{
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    h2o_http2_stream_t *stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    *slow = h2o_http2_window_get_window(&stream->output_window) < GUARD_H2_SLOW_WINDOW;
    int refused = gc->budget <= 0 || conn->num_streams.pull.half_closed > GUARD_H2_STREAMS ||
                  (*slow && gc->slow >= GUARD_H2_SLOW);
    if (!refused)
        return 0;
    refuse(conn, stream); /* req is gone */
    if (--gc->budget <= 0 && !gc->goaway) {
        send_goaway(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                    "too many streams reset or refused");
        log_event(gc, "HTTP/2: too many streams reset or refused: GOAWAY (ENHANCE_YOUR_CALM)");
    }
    return -1;
}

int guard_request(h2o_req_t *req)
{
    struct guard_conn *gc = conn_of(req);
    int h2 = req->version >= 0x200, slow = 0;
    if (gc == NULL)
        return 0;
    if (h2 && admit_h2(gc, req, &slow) != 0)
        return -1;
    struct tracked *t = h2o_mem_alloc_shared(&req->pool, sizeof(*t), on_dispose);
    memset(t, 0, sizeof(*t));
    t->gc = gc;
    t->req = req;
    t->h2 = h2;
    t->slow = slow;
    gc->live++;
    gc->slow += slow;
    h2o_linklist_insert(&gc->gl->requests, &t->link);
    return 0;
}

/* ---- the stall check -------------------------------------------------------------------- */

static void on_sweep(h2o_timeout_entry_t *entry)
{
    struct guard_loop *gl = H2O_STRUCT_FROM_MEMBER(struct guard_loop, sweep, entry);
    uint64_t now = clock_mono_ms();
    for (h2o_linklist_t *n = gl->requests.next; n != &gl->requests; n = n->next) {
        struct tracked *t = H2O_STRUCT_FROM_MEMBER(struct tracked, link, n);
        struct guard_conn *gc = t->gc;
        /* Requests not answered yet wait for the server (the disk, the peers), not for
         * the client. */
        if (gc == NULL || t->req->res.status == 0)
            continue;
        if (t->answering_since == 0)
            t->answering_since = now;
        if (gc->goaway && now - gc->goaway_at >= SHUTDOWN_AFTER_GOAWAY_MS) {
            shut(gc); /* it sent no byte of what is in progress since the GOAWAY */
        } else if (!gc->goaway && !gc->shut && now - t->answering_since >= GUARD_STALL_MS) {
            if (t->h2) {
                send_goaway(gc, (h2o_http2_conn_t *)t->req->conn, H2O_HTTP2_ERROR_NONE,
                            "stalled: a response not taken for 10 s");
                log_event(gc, "HTTP/2: a response not taken for 10 s (no flow-control window "
                              "or no reading): GOAWAY, closing");
            } else {
                shut(gc);
                log_event(gc, "HTTP/1: a response not taken for 10 s (no reading): closed");
            }
        }
    }
    /* Closed connections leave free memory inside malloc's arenas: give it back. */
    if (atomic_load(&closes_since_trim) >= TRIM_AFTER_CLOSES &&
        atomic_exchange(&closes_since_trim, 0) >= TRIM_AFTER_CLOSES)
        malloc_trim(0);
    h2o_timeout_link(gl->ctx->loop, &gl->sweep_timeout, &gl->sweep);
}

struct guard_loop *guard_loop_create(h2o_context_t *ctx)
{
    struct guard_loop *gl = h2o_mem_alloc(sizeof(*gl));
    memset(gl, 0, sizeof(*gl));
    gl->ctx = ctx;
    h2o_linklist_init_anchor(&gl->requests);
    h2o_timeout_init(ctx->loop, &gl->sweep_timeout, SWEEP_MS);
    gl->sweep.cb = on_sweep;
    h2o_timeout_link(ctx->loop, &gl->sweep_timeout, &gl->sweep);
    return gl;
}

/* ---- connections ------------------------------------------------------------------------ */

static void on_sock_close(void *p)
{
    struct guard_conn *gc = p;
    void (*cb)(void *) = gc->on_close;
    void *data = gc->data;
    if (gc->live != 0) { /* libh2o 2.2.5 disposes of requests first; in case it did not */
        for (h2o_linklist_t *n = gc->gl->requests.next; n != &gc->gl->requests; n = n->next) {
            struct tracked *t = H2O_STRUCT_FROM_MEMBER(struct tracked, link, n);
            if (t->gc == gc)
                t->gc = NULL;
        }
    }
    free(gc);
    atomic_fetch_add(&closes_since_trim, 1);
    cb(data);
}

static struct guard_conn *conn_of(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL && sock->on_close.cb == on_sock_close ? sock->on_close.data : NULL;
}

void guard_attach(struct guard_loop *gl, h2o_socket_t *sock, void (*on_close)(void *data),
                  void *data)
{
    struct guard_conn *gc = h2o_mem_alloc(sizeof(*gc));
    memset(gc, 0, sizeof(*gc));
    gc->gl = gl;
    gc->sock = sock;
    gc->on_close = on_close;
    gc->data = data;
    gc->budget = GUARD_H2_RESETS;
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = gc;
}
