/*
 * log.c: the server's lines, and the only writer of stdout while the server runs.
 *
 * log_error writes stderr at once (one write(2) per line). log_info's lines and the
 * access log go to stdout through one queue while the writer thread runs. Both write text
 * ("visits-server: " and the message) or one JSON object per line (log_configure; the
 * access log asks log_format()).
 *
 * Event loops hand their access-log buffers (whole lines, normally under PIPE_BUF) to a
 * queue of at most LOG_QUEUE_MAX bytes; one thread writes the chunks to stdout in
 * order, one write(2) per chunk, so that a stuck log collector stalls this thread and
 * never an event loop. When the queue is full a loop drops its chunk and counts its lines
 * (visits_access_log_dropped_lines_total); so does the writer when write(2) fails (stdout
 * closed, EPIPE). The writer waits for stdout with poll(2) next to an eventfd, so that it
 * can tell the news on stderr and give up at shutdown even while stdout is stuck.
 *
 * On stderr, once per episode: when lines start being dropped, and when writing works
 * again (the queue back under half full after a successful write) with how many were
 * dropped. The writer thread prints both, so that no event loop writes to stderr for it.
 */
#include "log.h"

#include "clock.h"
#include "text.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define INFO_RESERVE 65536u /* log_info lines may exceed LOG_QUEUE_MAX by this much */
#define JOIN_GRACE_MS 100   /* after the deadline, for a writer blocked inside write(2) */
#define GATHER_MS 10        /* a woken writer waits this long for more lines (see below) */

struct chunk {
    struct chunk *next;
    size_t len;
    size_t off; /* bytes already written (the writer only) */
    size_t lines;
    char data[];
};

static struct {
    pthread_mutex_t mu;
    /* Under mu. The chunk being written stays at the head until it is done, so that
     * everything queued is reachable from here and counted by log_stop. */
    struct chunk *head, *tail;
    size_t bytes, lines; /* queued */
    int stop;
    int dropping;                     /* an episode of drops is under way */
    int announce;                     /* ... and the writer has not said so yet */
    uint64_t episode_start;           /* dropped when it began */
    char why[128];                    /* why it began */
    atomic_uint_fast64_t dropped;     /* lines, since the start */
    atomic_uint_fast64_t deadline_ms; /* 0, or when the writer gives up (shutdown) */
    int wake_fd;                      /* eventfd: new work, news, stop */
    pthread_t tid;
    int started; /* set and cleared by the main thread while no other thread logs */
} lw = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1};

static void wake(void)
{
    uint64_t one = 1;
    while (write(lw.wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Under mu: n lines are lost for the given reason. */
static int drop_locked(size_t n, const char *why)
{
    uint64_t before = atomic_load_explicit(&lw.dropped, memory_order_relaxed);
    atomic_store_explicit(&lw.dropped, before + n, memory_order_relaxed);
    if (lw.dropping)
        return 0;
    lw.dropping = 1;
    lw.announce = 1;
    lw.episode_start = before;
    snprintf(lw.why, sizeof(lw.why), "%s", why);
    return 1;
}

/* Adds a copy of data (whole lines) to the queue, or drops it when that would take the
 * queue over limit bytes. */
static void enqueue(const char *data, size_t len, size_t lines, size_t limit)
{
    struct chunk *c = malloc(sizeof(*c) + len);
    int was_empty = 0, news = 0;
    pthread_mutex_lock(&lw.mu);
    if (c == NULL) {
        news = drop_locked(lines, "out of memory");
    } else if (lw.bytes + len > limit) {
        char why[sizeof(lw.why)];
        snprintf(why, sizeof(why),
                 "the queue is full (%zu bytes: stdout is not being read fast enough)", lw.bytes);
        news = drop_locked(lines, why);
    } else {
        c->next = NULL;
        c->len = len;
        c->off = 0;
        c->lines = lines;
        memcpy(c->data, data, len);
        was_empty = lw.head == NULL;
        if (lw.tail != NULL)
            lw.tail->next = c;
        else
            lw.head = c;
        lw.tail = c;
        lw.bytes += len;
        lw.lines += lines;
        c = NULL;
    }
    pthread_mutex_unlock(&lw.mu);
    free(c); /* dropped */
    if (was_empty || news)
        wake();
}

void log_submit(const char *data, size_t len, size_t lines)
{
    if (len != 0)
        enqueue(data, len, lines, LOG_QUEUE_MAX);
}

uint64_t log_dropped_lines(void)
{
    return atomic_load_explicit(&lw.dropped, memory_order_relaxed);
}

/* ---- the format ---------------------------------------------------------------------- */

#define POD_MAX 253 /* bytes of a pod name (config.c allows no more) */

static struct {
    enum log_format format;
    size_t pod_len;
    char pod[POD_MAX * 6 + 1]; /* escaped: format_json_utf8 writes at most 6 bytes a byte */
} lf;

void log_configure(enum log_format format, const char *pod)
{
    size_t len = strlen(pod);
    lf.format = format;
    len = utf8_cut(pod, len, POD_MAX);
    lf.pod_len =
        (size_t)(format_json_utf8(lf.pod, lf.pod + sizeof(lf.pod) - 1, pod, len, NULL) - lf.pod);
    lf.pod[lf.pod_len] = '\0';
}

enum log_format log_format(void)
{
    return lf.format;
}

const char *log_pod_json(size_t *len)
{
    *len = lf.pod_len;
    return lf.pod;
}

char *log_time(char *p, uint64_t ns)
{
    static _Thread_local struct {
        int64_t sec;
        char text[19]; /* "YYYY-MM-DDTHH:MM:SS" */
    } cache = {-1, ""};
    int64_t sec = (int64_t)(ns / 1000000000u);
    if (sec != cache.sec) {
        format_utc_seconds(cache.text, sec);
        cache.sec = sec;
    }
    memcpy(p, cache.text, sizeof(cache.text));
    p += sizeof(cache.text);
    *p++ = '.';
    p = format_u64_width(p, ns / 1000000u % 1000u, 3);
    *p++ = 'Z';
    return p;
}

/* ---- log_info and log_error ---------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
/* "visits-server: " + the message + "\n" into line (cut to fit); its length, 0 on error. */
static size_t
format_line(char *line, size_t size, const char *fmt, va_list ap)
{
    size_t prefix = sizeof(SERVER_NAME ": ") - 1, room = size - prefix - 1;
    memcpy(line, SERVER_NAME ": ", prefix);
    int n = vsnprintf(line + prefix, room, fmt, ap);
    if (n < 0)
        return 0;
    size_t len = prefix + ((size_t)n < room ? (size_t)n : room - 1);
    line[len++] = '\n';
    return len;
}

static void write_line(int fd, const char *line, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

#define TEXT_LINE_MAX 1024 /* bytes of a text line, its message cut to fit */
#define MSG_MAX 1024       /* bytes of a JSON line's message before escaping, cut beyond */
/* A JSON line, its message cut to fit: one write(2) of it to a pipe is atomic, so lines that
 * threads write to stderr at the same time never mix. */
#define JSON_LINE_MAX PIPE_BUF
_Static_assert(JSON_LINE_MAX >= POD_MAX * 6 + 256, "no room for a JSON line's message");

#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
/* {"time":...,"level":...,"msg":...,"pod":...} and "\n" into line (JSON_LINE_MAX bytes);
 * its length, 0 on error. A message too long for the line is cut, "..." appended. */
static size_t
format_json_line(char *line, const char *level, const char *fmt, va_list ap)
{
    static const char tail[] = "\",\"pod\":\"";
    char msg[MSG_MAX];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return 0;
    /* n may exceed the buffer: utf8_cut looks at most at msg[MSG_MAX - 1], the NUL. */
    size_t mlen = utf8_cut(msg, (size_t)n, sizeof(msg) - 1), used;
    char *p = line;
    /* Room for the message: what the rest of the line leaves, "..." included. */
    const char *end = line + JSON_LINE_MAX - (sizeof(tail) - 1) - lf.pod_len - 3 - 3;
#define LIT(s) (memcpy(p, "" s, sizeof(s) - 1), p += sizeof(s) - 1)
    LIT("{\"time\":\"");
    p = log_time(p, clock_real_ns());
    LIT("\",\"level\":\"");
    memcpy(p, level, strlen(level));
    p += strlen(level);
    LIT("\",\"msg\":\"");
    p = format_json_utf8(p, end, msg, mlen, &used);
    if (used < mlen || mlen < (size_t)n)
        LIT("...");
    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;
    memcpy(p, lf.pod, lf.pod_len);
    p += lf.pod_len;
    LIT("\"}\n");
#undef LIT
    return (size_t)(p - line);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
log_line(int fd, const char *fmt, va_list ap)
{
    char line[JSON_LINE_MAX];
    size_t len = lf.format == LOG_JSON
                     ? format_json_line(line, fd == STDERR_FILENO ? "error" : "info", fmt, ap)
                     : format_line(line, TEXT_LINE_MAX, fmt, ap);
    if (len == 0)
        return;
    /* While the writer runs, its queue keeps stdout's lines in order with the access log. */
    if (fd == STDOUT_FILENO && lw.started)
        enqueue(line, len, 1, LOG_QUEUE_MAX + INFO_RESERVE);
    else
        write_line(fd, line, len);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(STDOUT_FILENO, fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(STDERR_FILENO, fmt, ap);
    va_end(ap);
}

/* ---- the writer thread --------------------------------------------------------------- */

/* The writer thread: says on stderr that an episode of drops began, if it did. */
static void tell_news(void)
{
    char why[sizeof(lw.why)];
    pthread_mutex_lock(&lw.mu);
    int news = lw.announce;
    lw.announce = 0;
    memcpy(why, lw.why, sizeof(why));
    pthread_mutex_unlock(&lw.mu);
    if (news)
        log_error("access log: dropping lines: %s; counted in "
                  "visits_access_log_dropped_lines_total",
                  why);
}

static void drain_wake_fd(void)
{
    uint64_t n;
    while (read(lw.wake_fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
}

enum { WRITE_OK = 0, WRITE_GAVE_UP = 1 };

/* Writes what is left of c when stdout takes it. Returns WRITE_OK, WRITE_GAVE_UP (the
 * shutdown deadline passed) or -errno (the chunk is lost). */
static int write_chunk(struct chunk *c)
{
    while (c->off < c->len) {
        int timeout = -1;
        uint64_t deadline = atomic_load(&lw.deadline_ms);
        if (deadline != 0) {
            uint64_t now = clock_mono_ms();
            if (now >= deadline)
                return WRITE_GAVE_UP;
            timeout = (int)(deadline - now);
        }
        struct pollfd p[2] = {{.fd = STDOUT_FILENO, .events = POLLOUT},
                              {.fd = lw.wake_fd, .events = POLLIN}};
        if (poll(p, 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            p[0].revents = POLLOUT; /* cannot wait: let write(2) decide */
            p[1].revents = 0;
        }
        if (p[1].revents & POLLIN) {
            drain_wake_fd();
            tell_news();
        }
        if (p[0].revents == 0)
            continue; /* POLLNVAL, POLLERR and POLLHUP go on to write(2) and its error */
        ssize_t n = write(STDOUT_FILENO, c->data + c->off, c->len - c->off);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        c->off += (size_t)n;
    }
    return WRITE_OK;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "visits-log");
    for (;;) {
        tell_news();
        pthread_mutex_lock(&lw.mu);
        struct chunk *c = lw.head;
        int stop = lw.stop;
        pthread_mutex_unlock(&lw.mu);
        if (c == NULL) {
            if (stop)
                break;
            struct pollfd p = {.fd = lw.wake_fd, .events = POLLIN};
            if (poll(&p, 1, -1) > 0)
                drain_wake_fd();
            /* Let more lines gather before writing: the loops wake this thread only for
             * the first chunk into an empty queue, so under load it wakes about
             * 1000 / GATHER_MS times a second instead of once per loop iteration. */
            pthread_mutex_lock(&lw.mu);
            stop = lw.stop;
            pthread_mutex_unlock(&lw.mu);
            if (!stop && poll(&p, 1, GATHER_MS) > 0)
                drain_wake_fd();
            continue;
        }
        int err = write_chunk(c);
        if (err == WRITE_GAVE_UP)
            break; /* log_stop counts what is left */

        uint64_t recovered = 0;
        int said_recovered = 0;
        char why[64] = "";
        pthread_mutex_lock(&lw.mu);
        lw.head = c->next;
        if (lw.head == NULL)
            lw.tail = NULL;
        lw.bytes -= c->len;
        lw.lines -= c->lines;
        if (err != WRITE_OK) {
            snprintf(why, sizeof(why), "cannot write to stdout: %s", strerror(-err));
            drop_locked(c->lines, why);
        } else if (lw.dropping && !lw.announce && lw.bytes <= LOG_QUEUE_MAX / 2) {
            lw.dropping = 0;
            recovered = atomic_load_explicit(&lw.dropped, memory_order_relaxed) - lw.episode_start;
            said_recovered = 1;
        }
        pthread_mutex_unlock(&lw.mu);
        free(c);
        if (said_recovered)
            log_error("access log: writing to stdout again; %" PRIu64 " lines were dropped",
                      recovered);
    }
    return NULL;
}

int log_start(void)
{
    lw.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (lw.wake_fd < 0)
        return -errno;
    int err = pthread_create(&lw.tid, NULL, writer_main, NULL);
    if (err != 0) {
        close(lw.wake_fd);
        lw.wake_fd = -1;
        return -err;
    }
    lw.started = 1;
    return 0;
}

void log_stop(uint64_t deadline_ms)
{
    if (!lw.started)
        return;
    uint64_t t0 = clock_mono_ms();
    pthread_mutex_lock(&lw.mu);
    lw.stop = 1;
    atomic_store(&lw.deadline_ms, deadline_ms > 0 ? deadline_ms : 1);
    pthread_mutex_unlock(&lw.mu);
    wake();

    struct timespec ts = clock_real_deadline(deadline_ms, JOIN_GRACE_MS);
    int joined = pthread_timedjoin_np(lw.tid, NULL, &ts) == 0;

    pthread_mutex_lock(&lw.mu);
    size_t lost = lw.lines;
    uint64_t dropped = atomic_load_explicit(&lw.dropped, memory_order_relaxed);
    if (joined) {
        while (lw.head != NULL) {
            struct chunk *c = lw.head;
            lw.head = c->next;
            free(c);
        }
        lw.tail = NULL;
        lw.bytes = lw.lines = 0;
    }
    /* else the writer is blocked inside write(2) on the head chunk: it keeps the queue,
     * which stays reachable from here, and dies with the process. */
    pthread_mutex_unlock(&lw.mu);
    if (joined) {
        close(lw.wake_fd);
        lw.wake_fd = -1;
        lw.started = 0;
    }
    if (lost != 0)
        log_error("access log: stdout not drained within %" PRIu64 " ms of the shutdown; "
                  "%zu lines not written (%" PRIu64 " dropped before)",
                  (deadline_ms > t0 ? deadline_ms - t0 : 0), lost, dropped);
    else if (dropped != 0)
        log_error("access log: %" PRIu64 " lines were dropped while running", dropped);
}
