/*
 * visits-uv: a libuv TCP server that counts one visit for every line a client sends and
 * answers with that visit's number once it is durable. It shows how an event loop uses
 * visits_add_async(): the loop never waits on the disk, yet no answer goes out before
 * its increment is on disk.
 *
 *   visits-uv [-p PORT] [-i INTERVAL_MS] FILE
 *
 * Listens on 127.0.0.1:PORT (default 0: the kernel picks a free port) and prints
 * "listening on 127.0.0.1:PORT" on stdout. Each "\n" a client sends is one visit (the
 * line's text is ignored); the answer is the visit's number and "\n", or
 * "error NAME: reason\n". Answers on one connection come in the order of its lines.
 * -i INTERVAL_MS opens the counter in interval mode: answers come at once and the file
 * is written every INTERVAL_MS and at exit.
 * SIGTERM or SIGINT: stop accepting and reading, send the answers still due, close the
 * counter (writing what is pending), print "closed: FILE holds N" on stderr, exit 0.
 *
 * Build against an installed libvisits:
 *   cc -std=c11 visits-uv.c -o visits-uv $(pkg-config --cflags --libs libvisits libuv)
 *   printf '\n\n\n' | nc -q1 127.0.0.1 PORT        # answers 1, 2, 3
 *
 * The threads, in one place:
 * - libuv: the loop and its handles belong to the thread that runs uv_run(); the one
 *   call other threads may make is uv_async_send().
 * - libvisits: visits_add_async() queues the increment and returns at once; its callback
 *   runs later on the counter's own committer thread, once the increment is durable
 *   (always mode) or accepted (interval mode), one callback at a time, in queue order.
 *   It must return quickly: the next write cycle waits for it.
 * - So the callback (on_counted) touches nothing of the loop: it stores the result in
 *   the request it was given, appends the request to a list under a mutex and wakes the
 *   loop with uv_async_send(). Sends may coalesce, so the loop (on_wakeup) takes the
 *   whole list each time. The list keeps the committer's order, so each connection's
 *   answers stay in the order of its lines.
 * - The send happens under the same mutex: once the loop has taken the last result, no
 *   callback is between its append and its send, and the loop may close the async handle.
 * - A visit holds a reference on its client: a client that hangs up while its visits are
 *   in flight is freed only when the last of them has come back.
 * - visits_close() runs after the loop has ended, when nothing is in flight: it waits for
 *   no callback, and in interval mode it writes the increments still pending.
 * Left out for brevity: a limit on the visits one client may have unanswered (a real
 * server would uv_read_stop() a client above it), and IPv6.
 */
#define _POSIX_C_SOURCE 200809L /* getopt */

#include <uv.h>
#include <visits.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct client {
    uv_tcp_t tcp; /* first: a client is its handle */
    struct client *prev, *next;
    unsigned refs;       /* 1 while the handle is open, plus 1 per visit not yet freed */
    unsigned unanswered; /* visits counted and not yet answered */
    int eof;             /* no more lines will be read (end of input, or stopping) */
    int shutting, closing;
};

struct visit {
    struct visit *next; /* in the list of results */
    struct client *client;
    int err; /* err and value: set by on_counted */
    uint64_t value;
    uv_write_t write;
    char answer[128];
};

static struct {
    uv_loop_t *loop;
    visits_counter *counter;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    uv_async_t wakeup;
    uv_mutex_t mu; /* guards results and results_tail */
    struct visit *results, *results_tail;
    struct client *clients; /* open connections (loop thread) */
    size_t in_flight;       /* visits queued and not yet back (loop thread) */
    int stopping;
} srv;

/* ---- committer thread --------------------------------------------------------------- */

/* The increment is durable (or failed): hand the result to the loop. */
static void on_counted(void *arg, int err, uint64_t value)
{
    struct visit *v = arg;

    v->err = err;
    v->value = value;
    v->next = NULL;
    uv_mutex_lock(&srv.mu);
    if (srv.results_tail != NULL)
        srv.results_tail->next = v;
    else
        srv.results = v;
    srv.results_tail = v;
    uv_async_send(&srv.wakeup); /* under mu: see the top of the file */
    uv_mutex_unlock(&srv.mu);
}

/* ---- loop thread: everything below ------------------------------------------------------ */

static void client_unref(struct client *cl)
{
    if (--cl->refs == 0)
        free(cl);
}

static void on_client_closed(uv_handle_t *h)
{
    client_unref((struct client *)h);
}

static void client_close(struct client *cl)
{
    if (cl->closing)
        return;
    cl->closing = 1;
    if (cl->prev != NULL)
        cl->prev->next = cl->next;
    else
        srv.clients = cl->next;
    if (cl->next != NULL)
        cl->next->prev = cl->prev;
    uv_close((uv_handle_t *)&cl->tcp, on_client_closed); /* cancels pending writes */
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    client_close(req->data);
    free(req);
}

/* A client that sends no more lines is closed once it has all its answers (uv_shutdown
 * lets the pending writes go out first). */
static void client_maybe_done(struct client *cl)
{
    uv_shutdown_t *req;

    if (!cl->eof || cl->unanswered > 0 || cl->shutting || cl->closing)
        return;
    cl->shutting = 1;
    req = malloc(sizeof(*req));
    if (req != NULL)
        req->data = cl;
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&cl->tcp, on_shutdown) != 0) {
        free(req);
        client_close(cl);
    }
}

static void visit_free(struct visit *v)
{
    client_unref(v->client);
    free(v);
}

static void on_written(uv_write_t *req, int status)
{
    struct visit *v = req->data;

    if (status < 0 && status != UV_ECANCELED) /* the client is gone */
        client_close(v->client);
    visit_free(v);
}

static void answer(struct visit *v)
{
    struct client *cl = v->client;
    uv_buf_t buf;
    int len;

    cl->unanswered--;
    if (cl->closing) { /* hung up meanwhile: the visit counted, nobody to tell */
        visit_free(v);
        return;
    }
    if (v->err == 0)
        len = snprintf(v->answer, sizeof(v->answer), "%" PRIu64 "\n", v->value);
    else
        len = snprintf(v->answer, sizeof(v->answer), "error %s: %s\n", visits_err_name(v->err),
                       visits_strerror(v->err));
    buf = uv_buf_init(v->answer, (unsigned)len);
    v->write.data = v;
    if (uv_write(&v->write, (uv_stream_t *)&cl->tcp, &buf, 1, on_written) != 0) {
        client_close(cl);
        visit_free(v);
        return;
    }
    client_maybe_done(cl);
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

/* Stopping, and the last result is in (no callback will send again): close the last
 * handles, so that uv_run() returns. */
static void stop_loop(void)
{
    uv_close((uv_handle_t *)&srv.wakeup, on_closed_nothing);
    uv_close((uv_handle_t *)&srv.sigterm, on_closed_nothing);
    uv_close((uv_handle_t *)&srv.sigint, on_closed_nothing);
}

/* Woken by on_counted: answer every visit that came back. */
static void on_wakeup(uv_async_t *h)
{
    struct visit *v;
    (void)h;

    uv_mutex_lock(&srv.mu);
    v = srv.results;
    srv.results = srv.results_tail = NULL;
    uv_mutex_unlock(&srv.mu);
    while (v != NULL) {
        struct visit *next = v->next;
        srv.in_flight--;
        answer(v);
        v = next;
    }
    if (srv.stopping && srv.in_flight == 0)
        stop_loop();
}

static void count_visit(struct client *cl)
{
    struct visit *v = calloc(1, sizeof(*v));
    int err;

    if (v == NULL) {
        client_close(cl);
        return;
    }
    v->client = cl;
    cl->refs++;
    cl->unanswered++;
    err = visits_add_async(srv.counter, 1, on_counted, v);
    if (err == 0) {
        srv.in_flight++;
    } else { /* not queued: on_counted will not run; answer the error now */
        v->err = err;
        answer(v);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[4096]; /* the loop reads one connection at a time */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = (struct client *)stream;

    if (nread == UV_EOF) { /* the client sends no more: answer what it sent, then close */
        cl->eof = 1;
        client_maybe_done(cl);
        return;
    }
    if (nread < 0) {
        client_close(cl);
        return;
    }
    for (ssize_t i = 0; i < nread; i++)
        if (buf->base[i] == '\n')
            count_visit(cl);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct client *cl;

    if (status < 0 || (cl = calloc(1, sizeof(*cl))) == NULL)
        return;
    cl->refs = 1;
    uv_tcp_init(srv.loop, &cl->tcp);
    cl->next = srv.clients;
    if (cl->next != NULL)
        cl->next->prev = cl;
    srv.clients = cl;
    if (uv_accept(listener, (uv_stream_t *)&cl->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) != 0)
        client_close(cl);
}

/* SIGTERM, SIGINT: stop taking visits; the loop ends once every answer is out. */
static void on_signal(uv_signal_t *h, int signum)
{
    struct client *cl, *next;
    (void)h;
    (void)signum;

    if (srv.stopping)
        return;
    srv.stopping = 1;
    uv_close((uv_handle_t *)&srv.listener, on_closed_nothing);
    for (cl = srv.clients; cl != NULL; cl = next) {
        next = cl->next;
        uv_read_stop((uv_stream_t *)&cl->tcp);
        cl->eof = 1;
        client_maybe_done(cl);
    }
    if (srv.in_flight == 0)
        stop_loop();
}

static int usage(void)
{
    fputs("usage: visits-uv [-p PORT] [-i INTERVAL_MS] FILE\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    visits_options opts;
    struct sockaddr_in addr;
    int len = sizeof(addr), port = 0, opt, err;
    const char *path;
    uint64_t value = 0;

    visits_options_init(&opts);
    while ((opt = getopt(argc, argv, "p:i:")) != -1) {
        if (opt == 'p') {
            port = atoi(optarg);
        } else if (opt == 'i') {
            opts.sync = VISITS_SYNC_INTERVAL;
            opts.interval_ms = (unsigned)atoi(optarg);
        } else {
            return usage();
        }
    }
    if (optind != argc - 1)
        return usage();
    path = argv[optind];
    signal(SIGPIPE, SIG_IGN); /* a client that hung up is an error from uv_write, not a kill */

    if ((err = visits_open(path, &opts, &srv.counter)) != 0) {
        fprintf(stderr, "visits-uv: %s: %s\n", path, visits_strerror(err));
        return 1;
    }
    srv.loop = uv_default_loop();
    uv_mutex_init(&srv.mu);
    uv_async_init(srv.loop, &srv.wakeup, on_wakeup);
    uv_signal_init(srv.loop, &srv.sigterm);
    uv_signal_init(srv.loop, &srv.sigint);
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);
    uv_tcp_init(srv.loop, &srv.listener);
    uv_ip4_addr("127.0.0.1", port, &addr);
    if ((err = uv_tcp_bind(&srv.listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (err = uv_listen((uv_stream_t *)&srv.listener, 128, on_connection)) != 0 ||
        (err = uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&addr, &len)) != 0) {
        fprintf(stderr, "visits-uv: 127.0.0.1:%d: %s\n", port, uv_strerror(err));
        visits_close(srv.counter);
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    uv_run(srv.loop, UV_RUN_DEFAULT); /* until on_wakeup closes the last handles */

    /* Nothing is in flight: close writes what interval mode holds, then frees the handle. */
    uv_loop_close(srv.loop);
    uv_mutex_destroy(&srv.mu);
    if ((err = visits_close(srv.counter)) != 0 ||
        (err = visits_read_file(path, &value, NULL)) != 0) {
        fprintf(stderr, "visits-uv: %s: closing: %s\n", path, visits_strerror(err));
        return 1;
    }
    fprintf(stderr, "visits-uv: closed: %s holds %" PRIu64 "\n", path, value);
    return 0;
}
