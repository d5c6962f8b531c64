/*
 * accesslog.c: the end of every request: its line in the access log and its count in the
 * request metrics (reqstats.c).
 *
 * One line per request on stdout, in a per-loop buffer that the event loop flushes after
 * each iteration (or when it fills): whole lines, handed to the log writer (log.c), which
 * writes each such chunk with one write(2).
 *
 * Text line: ADDR - - [TIME] "METHOD TARGET PROTOCOL" STATUS BYTES SECONDS "USER-AGENT"
 * Bytes outside printable ASCII, '"' and '\' in METHOD, TARGET and USER-AGENT are
 * written as \xNN. TARGET and USER-AGENT are cut at 512 bytes ("..." appended).
 *
 * JSON line (log_format() == LOG_JSON), one object:
 * {"time":"2025-11-23T04:30:00.123Z","level":"info","msg":"access","pod":"visits-0",
 *  "method":"GET","path":"/","protocol":"HTTP/1.1","status":200,"bytes":428,
 *  "duration":0.000913,"remote_addr":"10.0.0.7","user_agent":"curl/7.88.1"}
 * METHOD, TARGET and USER-AGENT as format_json_utf8 writes them (valid UTF-8, invalid bytes
 * as U+FFFD), cut at 512 bytes as in text (not inside a character); an absent user agent
 * or an unknown address is null. TIME is the same instant as the text line's.
 */
#include "accesslog.h"

#include "clock.h"
#include "log.h"
#include "routes.h"
#include "text.h"

#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define FLUSH_AT 4000    /* below PIPE_BUF: one write(2) is one atomic chunk */
#define LINE_BYTES 16384 /* one line at most */
#define FIELD_MAX 512    /* a field's bytes, cut beyond */
#define POD_MAX 253      /* a pod name's bytes (config.c) */
/* Worst case of one line: three escaped fields (4 bytes a byte in text, 6 in JSON), the
 * pod name (JSON), the address and the rest. */
_Static_assert(LINE_BYTES >= 3 * (FIELD_MAX * 6 + 3) + POD_MAX * 6 + NI_MAXHOST + 256,
               "access log line buffer too small");

struct accesslog {
    h2o_logger_t super;
    struct reqstats *stats;
};

/* Per event loop. */
struct accesslog_loop {
    struct reqstats_loop *stats;
    int json; /* log_format() == LOG_JSON */
    size_t len;
    size_t lines; /* in buf */
    char buf[FLUSH_AT + LINE_BYTES];
};

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

/* The client's address into addr (numeric, NI_MAXHOST bytes); its length, 0 if unknown.
 * IPv4 formatted by hand (getnameinfo costs more than the rest of the line). */
static size_t peer_address(h2o_req_t *req, char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (req->conn->callbacks->get_peername != NULL)
        len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len != 0 && ss.ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        char *p = addr;
        for (int i = 0; i < 4; i++) {
            p = format_u64(p, a[i]);
            *p++ = '.';
        }
        return (size_t)(p - addr - 1);
    } else if (len != 0) {
        size_t n = h2o_socket_getnumerichost((struct sockaddr *)&ss, len, addr);
        return n != SIZE_MAX ? n : 0;
    }
    return 0;
}

static void put_peer(struct out *o, h2o_req_t *req)
{
    char addr[NI_MAXHOST];
    size_t n = peer_address(req, addr);
    if (n != 0)
        put(o, addr, n);
    else
        put(o, "-", 1);
}

static void flush(struct accesslog_loop *l)
{
    log_submit(l->buf, l->len, l->lines);
    l->len = 0;
    l->lines = 0;
}

void accesslog_flush(h2o_logger_t *logger, h2o_context_t *ctx)
{
    flush(h2o_context_get_logger_context(ctx, logger));
}

/* req's text line into o. */
static void format_text(struct out *o, h2o_req_t *req, int status, uint64_t duration_ns)
{
    put_peer(o, req);
    put(o, " - - [", 6);
    if (req->processed_at.str != NULL)
        put(o, req->processed_at.str->log, strlen(req->processed_at.str->log));
    else
        put(o, "-", 1);
    put(o, "] \"", 3);
    put_escaped(o, req->input.method.base, req->input.method.len);
    put(o, " ", 1);
    put_escaped(o, req->input.path.base, req->input.path.len);
    char proto[sizeof("HTTP/1.1")];
    size_t plen = h2o_stringify_protocol_version(proto, req->version);
    put(o, " ", 1);
    put(o, proto, plen);
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
    put(o, nums, (size_t)(q - nums));
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (ua != -1)
        put_escaped(o, req->headers.entries[ua].value.base, req->headers.entries[ua].value.len);
    else
        put(o, "-", 1);
    put(o, "\"\n", 2);
}

/* A field of the request in a JSON line, the inside of its string: cut at FIELD_MAX bytes
 * (not inside a character) with "..." appended. */
static void put_json_field(struct out *o, const char *s, size_t len)
{
    size_t cut = utf8_cut(s, len, FIELD_MAX);
    o->p = format_json_utf8(o->p, o->end, s, cut, NULL);
    if (cut < len)
        put(o, "...", 3);
}

#define PUT_LIT(o, s) put((o), "" s, sizeof(s) - 1)
/* Copies a string literal to q; the end. */
#define LIT_AT(q, s) ((char *)memcpy((q), "" s, sizeof(s) - 1) + sizeof(s) - 1)

/* req's JSON line into o. */
static void format_json(struct out *o, h2o_req_t *req, int status, uint64_t duration_ns)
{
    struct timeval at = req->processed_at.at;
    uint64_t ns = at.tv_sec != 0 ? (uint64_t)at.tv_sec * 1000000000u + (uint64_t)at.tv_usec * 1000u
                                 : clock_real_ns();
    size_t podlen;
    const char *pod = log_pod_json(&podlen);
#define HEAD1 "{\"time\":\""
#define HEAD2 "\",\"level\":\"info\",\"msg\":\"access\",\"pod\":\""
    char head[sizeof(HEAD1) - 1 + LOG_TIME_LEN + sizeof(HEAD2) - 1], *q = head;
    q = LIT_AT(log_time(LIT_AT(q, HEAD1), ns), HEAD2);
#undef HEAD1
#undef HEAD2
    put(o, head, (size_t)(q - head));
    put(o, pod, podlen);
    PUT_LIT(o, "\",\"method\":\"");
    put_json_field(o, req->input.method.base, req->input.method.len);
    PUT_LIT(o, "\",\"path\":\"");
    put_json_field(o, req->input.path.base, req->input.path.len);

    char nums[256 + NI_MAXHOST];
    q = LIT_AT(nums, "\",\"protocol\":\"");
    q += h2o_stringify_protocol_version(q, req->version);
    q = format_u64(LIT_AT(q, "\",\"status\":"), status > 0 ? (uint64_t)status : 0);
    q = format_u64(LIT_AT(q, ",\"bytes\":"), req->bytes_sent);
    q = format_u64(LIT_AT(q, ",\"duration\":"), duration_ns / 1000000000u);
    *q++ = '.';
    q = format_u64_width(q, duration_ns / 1000u % 1000000u, 6);
    q = LIT_AT(q, ",\"remote_addr\":\"");
    size_t alen = peer_address(req, q); /* numeric: nothing to escape */
    q = alen != 0 ? LIT_AT(q + alen, "\"") : LIT_AT(q - 1, "null");
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (ua != -1) {
        q = LIT_AT(q, ",\"user_agent\":\"");
        put(o, nums, (size_t)(q - nums));
        put_json_field(o, req->headers.entries[ua].value.base, req->headers.entries[ua].value.len);
        PUT_LIT(o, "\"}\n");
    } else {
        q = LIT_AT(q, ",\"user_agent\":null}\n");
        put(o, nums, (size_t)(q - nums));
    }
}

/* Formats req's line into the loop's buffer (flushing when full). */
static void write_line(struct accesslog_loop *l, h2o_req_t *req, int status, uint64_t duration_ns)
{
    char line[LINE_BYTES];
    struct out o = {line, line + sizeof(line) - 1};
    if (l->json)
        format_json(&o, req, status, duration_ns);
    else
        format_text(&o, req, status, duration_ns);

    size_t len = (size_t)(o.p - line);
    if (l->len + len > FLUSH_AT)
        flush(l); /* keeps each write(2) of normal lines under PIPE_BUF */
    memcpy(l->buf + l->len, line, len);
    l->len += len;
    l->lines++;
    if (l->len >= FLUSH_AT)
        flush(l);
}

/* The time from the request's start to now. HTTP/1 stamps the first byte of the request;
 * HTTP/2 only the start of its processing. */
static uint64_t duration_ns(h2o_req_t *req)
{
    struct timeval tv = req->timestamps.request_begin_at;
    if (tv.tv_sec == 0)
        tv = req->processed_at.at;
    uint64_t begin = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
    uint64_t end = clock_real_ns();
    return end > begin ? end - begin : 0;
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct accesslog_loop *l = h2o_context_get_logger_context(req->conn->ctx, self);
    uint64_t duration = duration_ns(req);
    int status = req->res.status;
    write_line(l, req, status, duration);
    if (status != 0)
        reqstats_observe(l->stats,
                         route_lookup(req->path_normalized.base, req->path_normalized.len),
                         method_lookup(req->method.base, req->method.len), status, duration);
}

static void on_context_init(h2o_logger_t *self, h2o_context_t *ctx)
{
    struct accesslog_loop *l = h2o_mem_alloc(sizeof(*l));
    l->stats = reqstats_loop(((struct accesslog *)self)->stats);
    l->json = log_format() == LOG_JSON;
    l->len = 0;
    l->lines = 0;
    h2o_context_set_logger_context(ctx, self, l);
}

h2o_logger_t *accesslog_register(h2o_pathconf_t *pathconf, struct reqstats *stats)
{
    struct accesslog *a = (void *)h2o_create_logger(pathconf, sizeof(*a));
    a->stats = stats;
    a->super.on_context_init = on_context_init;
    a->super.log_access = on_log_access;
    return &a->super;
}
