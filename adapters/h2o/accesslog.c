/*
 * accesslog.c: one line per request on stdout, in a per-thread buffer that the event loop
 * flushes after each iteration (or when it fills): whole lines, handed to the log writer
 * (log.c), which writes each such chunk with one write(2).
 *
 * Line: ADDR - - [TIME] "METHOD TARGET PROTOCOL" STATUS BYTES SECONDS "USER-AGENT"
 * Bytes outside printable ASCII, '"' and '\' in METHOD, TARGET and USER-AGENT are
 * written as \xNN. TARGET and USER-AGENT are cut at 512 bytes ("..." appended).
 */
#include "server.h"

#include <netdb.h>
#include <inttypes.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define FIELD_MAX 512
_Static_assert(ACCESSLOG_LINE_MAX >= 3 * (FIELD_MAX * 4 + 3) + NI_MAXHOST + 128,
               "access log line buffer too small");

struct out {
    char *p;
    char *end;
};

static void put(struct out *o, const char *s, size_t len)
{
    if ((size_t)(o->end - o->p) < len)
        len = (size_t)(o->end - o->p);
    memcpy(o->p, s, len);
    o->p += len;
}

/* A field of the request: \xNN escapes, cut at FIELD_MAX bytes with "..." appended. */
static void put_escaped(struct out *o, const char *s, size_t len)
{
    int cut = len > FIELD_MAX;
    o->p = format_logsafe(o->p, o->end, s, cut ? FIELD_MAX : len);
    if (cut)
        put(o, "...", 3);
}

/* The client's address; IPv4 formatted by hand (getnameinfo costs more than the rest of
 * the line). */
static void put_peer(struct out *o, h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (req->conn->callbacks->get_peername != NULL)
        len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len != 0 && ss.ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        char buf[16], *p = buf;
        for (int i = 0; i < 4; i++) {
            p = format_u64(p, a[i]);
            *p++ = '.';
        }
        put(o, buf, (size_t)(p - buf - 1));
    } else if (len != 0) {
        char addr[NI_MAXHOST];
        size_t n = h2o_socket_getnumerichost((struct sockaddr *)&ss, len, addr);
        put(o, addr, n != SIZE_MAX ? n : 0);
    } else {
        put(o, "-", 1);
    }
}

void accesslog_flush(struct accesslog *log)
{
    log_submit(log->buf, log->len, log->lines);
    log->len = 0;
    log->lines = 0;
}

void accesslog_request(struct accesslog *log, h2o_req_t *req, int status, uint64_t duration_ns)
{
    /* Worst case of one line: three escaped fields of FIELD_MAX * 4 plus the rest. */
    char line[ACCESSLOG_LINE_MAX];
    struct out o = {line, line + sizeof(line) - 1};

    put_peer(&o, req);
    put(&o, " - - [", 6);
    if (req->processed_at.str != NULL)
        put(&o, req->processed_at.str->log, strlen(req->processed_at.str->log));
    else
        put(&o, "-", 1);
    put(&o, "] \"", 3);
    put_escaped(&o, req->input.method.base, req->input.method.len);
    put(&o, " ", 1);
    put_escaped(&o, req->input.path.base, req->input.path.len);
    char proto[sizeof("HTTP/1.1")];
    size_t plen = h2o_stringify_protocol_version(proto, req->version);
    put(&o, " ", 1);
    put(&o, proto, plen);
    char nums[96], *q = nums;
    *q++ = '"';
    *q++ = ' ';
    q = format_u64(q, status > 0 ? (uint64_t)status : 0);
    *q++ = ' ';
    q = format_u64(q, req->bytes_sent);
    *q++ = ' ';
    q = format_u64(q, duration_ns / 1000000000u);
    *q++ = '.';
    q = format_u64_width(q, duration_ns / 1000u % 1000000u, 6);
    *q++ = ' ';
    *q++ = '"';
    put(&o, nums, (size_t)(q - nums));
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (ua != -1)
        put_escaped(&o, req->headers.entries[ua].value.base, req->headers.entries[ua].value.len);
    else
        put(&o, "-", 1);
    put(&o, "\"\n", 2);

    size_t len = (size_t)(o.p - line);
    if (log->len + len > ACCESSLOG_FLUSH_AT)
        accesslog_flush(log); /* keeps each write(2) of normal lines under PIPE_BUF */
    memcpy(log->buf + log->len, line, len);
    log->len += len;
    log->lines++;
    if (log->len >= ACCESSLOG_FLUSH_AT)
        accesslog_flush(log);
}
