/*
 * crash_writer: the writer side of the power-loss tests (tests/crash/crash_test.py).
 *
 *   crash_writer incr FILE ACKLOG [THREADS]
 *       THREADS (default 4) threads call visits_incr() on one handle in `always` mode
 *       until SIGTERM/SIGINT. After each call returns, the value it acknowledged is
 *       appended to ACKLOG as one line "VALUE\n" (one write(2), O_APPEND). ACKLOG lives
 *       outside the filesystem under test, so a line there means "acknowledged before"
 *       anything the harness does after reading it.
 *   crash_writer nosync FILE ACKLOG
 *       The negative control: write a temp file and rename it over FILE WITHOUT any
 *       fsync, then log the value as acknowledged. The harness must catch it losing
 *       acknowledged values; if it does not, the harness proves nothing.
 *   crash_writer nodirsync FILE ACKLOG
 *       The subtler control: fsync the temp file, rename, but skip the fsync of the
 *       directory (one thread).
 *   crash_writer shell FILE
 *       Reads commands from stdin, one per line, and answers one line each on stdout:
 *         open | close | incr | read | stats
 *       answer "ok [VALUE]" or "err CODE MESSAGE". For the ENOSPC / read-only tests,
 *       where one handle must live across changes made to its filesystem.
 *
 * Exit status: 0 after a clean stop, 1 on an error (printed to stderr with the path and
 * the reason), 2 on a usage error.
 */
#include <visits.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int install_stop_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        fprintf(stderr, "crash_writer: sigaction: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Appends "value\n" to fd in one write; the log is only ever appended whole lines. */
static int log_ack(int fd, const char *logpath, uint64_t value)
{
    char line[32];
    int len = snprintf(line, sizeof(line), "%" PRIu64 "\n", value);

    for (;;) {
        ssize_t n = write(fd, line, (size_t)len);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        fprintf(stderr, "crash_writer: write %s: %s\n", logpath,
                n < 0 ? strerror(errno) : "short write");
        return -1;
    }
}

struct incr_run {
    visits_counter *c;
    const char *path, *logpath;
    int logfd;
    atomic_int failed; /* set by any thread that fails: all stop */
};

static void *incr_thread(void *arg)
{
    struct incr_run *r = arg;

    while (!stop_requested && !r->failed) {
        uint64_t value;
        int err = visits_incr(r->c, &value);
        if (err != 0) {
            fprintf(stderr, "crash_writer: visits_incr %s: %s\n", r->path, visits_strerror(err));
            r->failed = 1;
            break;
        }
        if (log_ack(r->logfd, r->logpath, value) != 0) {
            r->failed = 1;
            break;
        }
    }
    return NULL;
}

static int open_log(const char *logpath)
{
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd < 0)
        fprintf(stderr, "crash_writer: open %s: %s\n", logpath, strerror(errno));
    return fd;
}

static int run_incr(const char *path, const char *logpath, int threads)
{
    struct incr_run r = {NULL, path, logpath, -1, 0};

    pthread_t tids[64];
    int i, started = 0, err, status = 1;

    if (install_stop_handlers() != 0 || (r.logfd = open_log(logpath)) < 0)
        return 1;
    if ((err = visits_open(path, NULL, &r.c)) != 0) {
        fprintf(stderr, "crash_writer: visits_open %s: %s\n", path, visits_strerror(err));
        goto Error;
    }
    for (i = 0; i < threads; i++) {
        if ((err = pthread_create(&tids[i], NULL, incr_thread, &r)) != 0) {
            fprintf(stderr, "crash_writer: pthread_create: %s\n", strerror(err));
            r.failed = 1;
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    status = r.failed ? 1 : 0;
    if ((err = visits_close(r.c)) != 0) {
        fprintf(stderr, "crash_writer: visits_close %s: %s\n", path, visits_strerror(err));
        status = 1;
    }
Error:
    close(r.logfd);
    return status;
}

/* The negative controls: the durable replace with every fsync left out (dirsync 0,
 * filesync 0), or with only the directory fsync left out (filesync 1). */
static int run_unsafe(const char *path, const char *logpath, int filesync)
{
    char tmp[4096], buf[32];
    uint64_t value = 0;
    int logfd;

    if (install_stop_handlers() != 0 || (logfd = open_log(logpath)) < 0)
        return 1;
    /* named like the library's temps, so the checks treat it the same way */
    const char *slash = strrchr(path, '/');
    int dirlen = slash != NULL ? (int)(slash - path + 1) : 0;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp-nosync", dirlen, path, path + dirlen) >=
        sizeof(tmp)) {
        fprintf(stderr, "crash_writer: %s: path too long\n", path);
        close(logfd);
        return 1;
    }
    while (!stop_requested) {
        int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", ++value);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, (size_t)len) != len || (filesync && fsync(fd) != 0) ||
            close(fd) != 0 || rename(tmp, path) != 0) {
            fprintf(stderr, "crash_writer: unsynced replace %s: %s\n", path, strerror(errno));
            close(logfd);
            return 1;
        }
        if (log_ack(logfd, logpath, value) != 0) {
            close(logfd);
            return 1;
        }
    }
    close(logfd);
    return 0;
}

static void answer_err(int err)
{
    printf("err %d %s\n", err, visits_strerror(err));
}

static int run_shell(const char *path)
{
    visits_counter *c = NULL;
    char line[128];
    uint64_t value;
    int err;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "open") == 0) {
            if (c != NULL)
                printf("err 0 already open\n");
            else if ((err = visits_open(path, NULL, &c)) != 0)
                answer_err(err);
            else
                printf("ok\n");
        } else if (strcmp(line, "close") == 0) {
            err = visits_close(c);
            c = NULL;
            if (err != 0)
                answer_err(err);
            else
                printf("ok\n");
        } else if (c == NULL && (strcmp(line, "incr") == 0 || strcmp(line, "read") == 0 ||
                                 strcmp(line, "stats") == 0)) {
            printf("err 0 not open\n");
        } else if (strcmp(line, "incr") == 0) {
            if ((err = visits_incr(c, &value)) != 0)
                answer_err(err);
            else
                printf("ok %" PRIu64 "\n", value);
        } else if (strcmp(line, "read") == 0) {
            if ((err = visits_read(c, &value)) != 0)
                answer_err(err);
            else
                printf("ok %" PRIu64 "\n", value);
        } else if (strcmp(line, "stats") == 0) {
            visits_stats st;
            visits_get_stats(c, &st);
            printf("ok cycles=%" PRIu64 " failed_cycles=%" PRIu64 " failed=%d last_error=%d\n",
                   st.cycles, st.cycles_failed, st.failed, st.last_error);
        } else {
            printf("err 0 unknown command '%s'\n", line);
        }
    }
    err = visits_close(c);
    if (err != 0) {
        fprintf(stderr, "crash_writer: visits_close %s: %s\n", path, visits_strerror(err));
        return 1;
    }
    return 0;
}

static int usage(void)
{
    fputs("usage: crash_writer incr FILE ACKLOG [THREADS]\n"
          "       crash_writer nosync|nodirsync FILE ACKLOG\n"
          "       crash_writer shell FILE\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && argc <= 5 && strcmp(argv[1], "incr") == 0) {
        int threads = argc == 5 ? atoi(argv[4]) : 4;
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "crash_writer: THREADS must be 1..64, got '%s'\n", argv[4]);
            return 2;
        }
        return run_incr(argv[2], argv[3], threads);
    }
    if (argc == 4 && strcmp(argv[1], "nosync") == 0)
        return run_unsafe(argv[2], argv[3], 0);
    if (argc == 4 && strcmp(argv[1], "nodirsync") == 0)
        return run_unsafe(argv[2], argv[3], 1);
    if (argc == 3 && strcmp(argv[1], "shell") == 0)
        return run_shell(argv[2]);
    return usage();
}
