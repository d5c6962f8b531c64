/* peer_call.c: GET /visits of one peer, with libh2o's HTTP/1 client. */
#include "peer_call.h"

#include "json.h"
#include "log.h" /* SERVER_NAME */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <visits.h>

#define PEER_BODY_MAX 4096 /* a /visits answer is under 300 bytes */

static const char *const outcome_names[PEER_OUTCOME_COUNT] = {
    [PEER_OK] = "ok",
    [PEER_TIMEOUT] = "timeout",
    [PEER_CONNECT_ERROR] = "connect_error",
    [PEER_IO_ERROR] = "io_error",
    [PEER_BAD_STATUS] = "bad_status",
    [PEER_BAD_BODY] = "bad_body",
    [PEER_TOO_LARGE] = "too_large",
    [PEER_CANCELLED] = "cancelled",
};

const char *peer_outcome_name(int outcome)
{
    return outcome >= 0 && outcome < PEER_OUTCOME_COUNT ? outcome_names[outcome] : "unknown";
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
call_done(struct peer_call *pc, int outcome, const char *fmt, ...)
{
    pc->client = NULL; /* libh2o closes (or has closed) it */
    pc->done = 1;
    pc->outcome = outcome;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pc->error, sizeof(pc->error), fmt, ap);
        va_end(ap);
    }
    strbuf_free(&pc->body);
    pc->on_done(pc);
}

/* libh2o's timeouts of its own ("connection timeout", "I/O timeout") are ours too. */
static int is_timeout(const char *errstr)
{
    return errstr != NULL && strstr(errstr, "timeout") != NULL;
}

static void timeout_done(struct peer_call *pc)
{
    call_done(pc, PEER_TIMEOUT, "timeout (no answer within %u ms)", pc->timeout_ms);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    struct peer_call *pc = client->data;
    h2o_buffer_t *in = client->sock->input;
    if (in->size != 0) {
        if (pc->body.len + in->size > PEER_BODY_MAX) {
            call_done(pc, PEER_TOO_LARGE, "response body over %d bytes", PEER_BODY_MAX);
            return -1;
        }
        strbuf_add(&pc->body, in->bytes, in->size);
        h2o_buffer_consume(&client->sock->input, in->size);
        if (pc->body.oom) {
            call_done(pc, PEER_IO_ERROR, "out of memory reading the response");
            return -1;
        }
    }
    if (errstr == NULL)
        return 0;
    if (errstr != h2o_http1client_error_is_eos) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_IO_ERROR, "response cut after %zu body bytes: %s", pc->body.len,
                      errstr);
        return -1;
    }
    char err[200];
    if (peer_answer_parse(pc->body.data != 0 ? pc->body.data : "", pc->body.len, &pc->visits,
                          pc->pod, sizeof(pc->pod), err, sizeof(err)) != 0) {
        call_done(pc, PEER_BAD_BODY, "bad answer to GET /visits: %s", err);
        return -1;
    }
    call_done(pc, PEER_OK, NULL);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr,
                                       int minor_version, int status, h2o_iovec_t msg,
                                       h2o_header_t *headers, size_t num_headers, int rlen)
{
    (void)minor_version;
    (void)rlen;
    struct peer_call *pc = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_IO_ERROR, "no valid response: %s", errstr);
        return NULL;
    }
    if (status != 200) {
        if (status >= 300 && status < 400) {
            h2o_iovec_t location = h2o_iovec_init(H2O_STRLIT("(no Location)"));
            for (size_t i = 0; i < num_headers; i++)
                if (headers[i].name == &H2O_TOKEN_LOCATION->buf)
                    location = headers[i].value;
            call_done(pc, PEER_BAD_STATUS, "redirect (status %d to %.*s) not followed", status,
                      (int)(location.len < 120 ? location.len : 120), location.base);
        } else {
            call_done(pc, PEER_BAD_STATUS, "status %d %.*s", status,
                      (int)(msg.len < 60 ? msg.len : 60), msg.base);
        }
        return NULL;
    }
    if (errstr == h2o_http1client_error_is_eos) {
        call_done(pc, PEER_BAD_BODY, "bad answer to GET /visits: empty response");
        return NULL;
    }
    for (size_t i = 0; i < num_headers; i++) {
        if (headers[i].name != &H2O_TOKEN_CONTENT_LENGTH->buf)
            continue;
        size_t len = h2o_strtosize(headers[i].value.base, headers[i].value.len);
        if (len != SIZE_MAX && len > PEER_BODY_MAX) {
            call_done(pc, PEER_TOO_LARGE, "response body of %zu bytes (limit %d)", len,
                      PEER_BODY_MAX);
            return NULL;
        }
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr,
                                          h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    struct peer_call *pc = client->data;
    if (errstr != NULL) {
        if (is_timeout(errstr))
            timeout_done(pc);
        else
            call_done(pc, PEER_CONNECT_ERROR, "cannot connect: %s",
                      strcmp(errstr, "socket create error") == 0 ||
                              strcmp(errstr, "connection failure") == 0
                          ? "connection refused or host unreachable"
                          : errstr);
        return NULL;
    }
    *reqbufs = &pc->reqvec;
    *reqbufcnt = 1;
    *method_is_head = 0;
    return on_head;
}

void peer_call_start(struct peer_call *pc, h2o_http1client_ctx_t *ctx, unsigned timeout_ms)
{
    pc->timeout_ms = timeout_ms;
    int len = snprintf(pc->request, sizeof(pc->request),
                       "GET /visits HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                       "User-Agent: " SERVER_NAME "/" VISITS_VERSION_STRING
                       " (cluster view)\r\nConnection: close\r\n\r\n",
                       pc->target.label);
    pc->reqvec = h2o_iovec_init(pc->request, (size_t)len);
    h2o_http1client_connect(&pc->client, pc, ctx,
                            h2o_iovec_init(pc->target.host, strlen(pc->target.host)),
                            pc->target.port, 0, on_connect);
}

void peer_call_abort(struct peer_call *pc, int outcome, const char *message)
{
    if (pc->client != NULL)
        h2o_http1client_cancel(pc->client);
    if (outcome == PEER_TIMEOUT)
        timeout_done(pc);
    else
        call_done(pc, outcome, "%s", message);
}
