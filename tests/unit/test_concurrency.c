/*
 * test_concurrency.c: one handle shared by threads, and handles in several processes
 * on one file (counter.c + lock.c). No increment is lost, no value is returned twice,
 * the file ends with the exact total, and group commit batches concurrent callers.
 * visits_raise from threads and processes on one file ends at the largest floor asked,
 * never lower, and the file never goes back meanwhile (the replicas of visits-server).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every loop also stops at this deadline, so a stuck library fails instead of hanging. */
#define DEADLINE_MS (240u * 1000u)

struct worker {
    visits_counter *c;
    uint64_t *values; /* what each call returned */
    size_t n;         /* calls to make */
    size_t done;      /* calls that succeeded */
    int rc;           /* first error */
    int backwards;    /* a visits_read() lower than a value this thread got */
    uint64_t deadline_ms;
    int start_fd;       /* read end of a pipe closed by the main thread: a start line */
    size_t pause_every; /* sleep 1 ms after this many calls (0: never) */
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    char b;
    if (w->start_fd >= 0)
        (void)!read(w->start_fd, &b, 1);
    for (size_t i = 0; i < w->n; i++) {
        if (tu_now_ms() > w->deadline_ms) {
            w->rc = -ETIMEDOUT;
            break;
        }
        uint64_t v = 0;
        int rc = visits_incr(w->c, &v);
        if (rc != 0) {
            w->rc = rc;
            break;
        }
        w->values[i] = v;
        w->done++;
        if (w->pause_every != 0 && i % w->pause_every == w->pause_every - 1)
            tu_sleep_ms(1);
        if (i % 97 == 0) {
            uint64_t r = 0;
            if (visits_read(w->c, &r) != 0 || r < v)
                w->backwards++;
        }
    }
    return NULL;
}

/* Each of 1..total appears exactly once among the n values; fails the test otherwise. */
static void assert_exactly_once(const uint64_t *values, size_t n, uint64_t total)
{
    assert_int_equal(n, total);
    unsigned char *seen = calloc(total + 1, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < n; i++) {
        if (values[i] < 1 || values[i] > total)
            fail_msg("returned value %" PRIu64 " outside 1..%" PRIu64, values[i], total);
        if (seen[values[i]])
            fail_msg("value %" PRIu64 " returned twice", values[i]);
        seen[values[i]] = 1;
    }
    free(seen);
}

/* nthreads threads x per increments on one handle opened with opts. */
static void run_threads(struct tu_fixture *fx, const visits_options *opts, size_t nthreads,
                        size_t per, size_t pause_every)
{
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, opts, &c), 0);
    struct worker *w = calloc(nthreads, sizeof *w);
    pthread_t *th = calloc(nthreads, sizeof *th);
    uint64_t *values = calloc(nthreads * per, sizeof *values);
    assert_non_null(w);
    assert_non_null(th);
    assert_non_null(values);
    int start[2];
    assert_int_equal(pipe(start), 0);
    uint64_t t0 = tu_now_ns();
    for (size_t i = 0; i < nthreads; i++) {
        w[i] = (struct worker){.c = c,
                               .values = values + i * per,
                               .n = per,
                               .deadline_ms = tu_now_ms() + DEADLINE_MS,
                               .start_fd = start[0],
                               .pause_every = pause_every};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    close(start[1]); /* go */
    /* a deadlocked library fails the test instead of hanging it until ctest's timeout */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DEADLINE_MS / 1000 + 10;
    for (size_t i = 0; i < nthreads; i++) {
        int rc = pthread_timedjoin_np(th[i], NULL, &until);
        if (rc != 0)
            fail_msg("thread %zu still inside the library after %u s (%zu increments done): "
                     "deadlock?",
                     i, DEADLINE_MS / 1000 + 10, w[i].done);
    }
    close(start[0]);
    double secs = (double)(tu_now_ns() - t0) / 1e9;
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    uint64_t t1 = tu_now_ns();
    int close_rc = visits_close(c);
    double close_secs = (double)(tu_now_ns() - t1) / 1e9;
    uint64_t total = (uint64_t)nthreads * per;
    print_message("%zu threads x %zu (%s): %.2f s, %.0f increments/s, %" PRIu64
                  " cycles, batch max %" PRIu64 ", close %.3f s\n",
                  nthreads, per, opts && opts->sync == VISITS_SYNC_INTERVAL ? "interval" : "always",
                  secs, (double)total / secs, st.cycles, st.batch_max, close_secs);
    for (size_t i = 0; i < nthreads; i++) {
        if (w[i].rc != 0)
            fail_msg("thread %zu stopped after %zu increments: %d (%s)", i, w[i].done, w[i].rc,
                     visits_strerror(w[i].rc));
        assert_int_equal(w[i].backwards, 0);
        /* one thread's own values increase */
        for (size_t k = 1; k < per; k++)
            assert_true(w[i].values[k] > w[i].values[k - 1]);
    }
    assert_int_equal(close_rc, 0);
    assert_exactly_once(values, nthreads * per, total);
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRIu64 "\n", total);
    tu_assert_file_str(fx->path, expect);
    tu_assert_no_temps(fx->dir);
    if (opts == NULL || opts->sync == VISITS_SYNC_ALWAYS) {
        assert_int_equal(st.increments, total);
        assert_int_equal(st.cycles_failed, 0);
        /* group commit: concurrent callers shared cycles */
        assert_true(st.batch_max > 1);
        assert_true(st.cycles < total);
    } else {
        /* the flusher wrote while the threads were still incrementing */
        assert_true(st.cycles >= 2);
    }
    free(values);
    free(th);
    free(w);
}

static void test_threads_always(void **state)
{
    run_threads(*state, NULL, 8, 10000, 0);
}

static void test_threads_interval(void **state)
{
    visits_options o;
    visits_options_init(&o);
    o.sync = VISITS_SYNC_INTERVAL;
    o.interval_ms = 5;
    /* paced (1 ms pause every 50 calls, ~100 ms a thread) so that the flusher runs
     * many cycles while the threads increment */
    run_threads(*state, &o, 4, 5000, 50);
}

/* ---- processes ------------------------------------------------------------------------ */

#define NPROC 4
#define NTHREAD 2
#define PER_THREAD 2000

struct proc_arg {
    const char *path;
    const char *out; /* the child writes its returned values here, raw uint64_t */
    int start_fd;
};

/* Child: one handle, NTHREAD threads, no cmocka. Exit code 0 on success. */
static int proc_main(const struct proc_arg *a)
{
    visits_counter *c = NULL;
    if (visits_open(a->path, NULL, &c) != 0)
        return 10;
    static uint64_t values[NTHREAD * PER_THREAD];
    struct worker w[NTHREAD];
    pthread_t th[NTHREAD];
    for (int i = 0; i < NTHREAD; i++) {
        w[i] = (struct worker){.c = c,
                               .values = values + i * PER_THREAD,
                               .n = PER_THREAD,
                               .deadline_ms = tu_now_ms() + DEADLINE_MS,
                               .start_fd = a->start_fd};
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
            return 11;
    }
    int bad = 0;
    for (int i = 0; i < NTHREAD; i++) {
        pthread_join(th[i], NULL);
        if (w[i].rc != 0 || w[i].done != PER_THREAD || w[i].backwards != 0) {
            fprintf(stderr, "child %d thread %d: %zu done, rc %d, backwards %d\n", (int)getpid(), i,
                    w[i].done, w[i].rc, w[i].backwards);
            bad = 1;
        }
    }
    if (visits_close(c) != 0)
        return 12;
    if (bad)
        return 13;
    int fd = open(a->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, values, sizeof values) != (ssize_t)sizeof values || close(fd) != 0)
        return 14;
    return 0;
}

static void test_processes(void **state)
{
    struct tu_fixture *fx = *state;
    char out[NPROC][TU_PATH_MAX];
    pid_t pids[NPROC];
    int start[2];
    assert_int_equal(pipe(start), 0);
    uint64_t t0 = tu_now_ns();
    for (int p = 0; p < NPROC; p++) {
        char name[32];
        snprintf(name, sizeof name, "values-%d", p);
        tu_join(out[p], fx->dir, name);
        fflush(NULL);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(start[1]);
            struct proc_arg a = {fx->path, out[p], start[0]};
            _exit(proc_main(&a));
        }
    }
    close(start[1]); /* go */
    close(start[0]);
    int failed = 0;
    uint64_t deadline = tu_now_ms() + DEADLINE_MS + 10000;
    for (int p = 0; p < NPROC; p++) {
        int status = 0;
        pid_t r;
        while ((r = waitpid(pids[p], &status, WNOHANG)) == 0 && tu_now_ms() < deadline)
            tu_sleep_ms(10);
        if (r == 0) {
            kill(pids[p], 9);
            waitpid(pids[p], &status, 0);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: status 0x%x\n", p, status);
            failed = 1;
        }
    }
    double secs = (double)(tu_now_ns() - t0) / 1e9;
    print_message("%d processes x %d threads x %d: %.2f s, %.0f increments/s\n", NPROC, NTHREAD,
                  PER_THREAD, secs, NPROC * NTHREAD * PER_THREAD / secs);
    assert_int_equal(failed, 0);
    tu_assert_file_str(fx->path, "16000\n");
    /* across processes too, each value was returned exactly once */
    static uint64_t all[NPROC * NTHREAD * PER_THREAD];
    for (int p = 0; p < NPROC; p++) {
        long n = tu_read_file(out[p], (char *)(all + p * NTHREAD * PER_THREAD), sizeof all / NPROC);
        assert_int_equal(n, (long)(sizeof all / NPROC));
        assert_int_equal(unlink(out[p]), 0);
    }
    assert_exactly_once(all, NPROC * NTHREAD * PER_THREAD, NPROC * NTHREAD * PER_THREAD);
    tu_assert_no_temps(fx->dir);
}

/* ---- raise to at least, from threads and processes ------------------------------------- */

#define RAISE_PROCS 4
#define RAISE_THREADS 2
#define RAISE_CALLS 300

struct raiser {
    visits_counter *c;
    unsigned seed;
    uint64_t max_floor; /* the largest floor this thread asked for */
    int rc;
    int bad; /* a returned value below its floor, or below one returned before */
    int start_fd;
};

/* Floors that mostly climb but often fall back below what the file holds already, with
 * the top of the range (UINT64_MAX - small) now and then. */
static uint64_t next_floor(unsigned *seed, size_t i)
{
    uint64_t r = (uint64_t)rand_r(seed);
    switch (r % 8) {
    case 0:
        return r % 50; /* far below */
    case 1:
        return i < RAISE_CALLS - 10 ? (uint64_t)i * 1000 : UINT64_MAX - (r % 1000);
    default:
        return (uint64_t)i * 1000 + r % 5000;
    }
}

static void *raiser_main(void *p)
{
    struct raiser *w = p;
    char b;
    uint64_t last = 0, deadline = tu_now_ms() + DEADLINE_MS;
    if (w->start_fd >= 0)
        (void)!read(w->start_fd, &b, 1);
    for (size_t i = 0; i < RAISE_CALLS && tu_now_ms() < deadline; i++) {
        uint64_t floor = next_floor(&w->seed, i), v = 0;
        int rc = visits_raise(w->c, floor, &v);
        if (rc != 0) {
            w->rc = rc;
            return NULL;
        }
        if (floor > w->max_floor)
            w->max_floor = floor;
        if (v < floor || v < last)
            w->bad++;
        last = v;
    }
    return NULL;
}

/* Child of test_raise_processes: RAISE_THREADS raisers on one handle; writes the largest
 * floor it asked for to out. Exit code 0 on success. */
static int raise_proc_main(const char *path, const char *out, unsigned seed, int start_fd)
{
    visits_counter *c = NULL;
    if (visits_open(path, NULL, &c) != 0)
        return 10;
    struct raiser w[RAISE_THREADS];
    pthread_t th[RAISE_THREADS];
    for (int i = 0; i < RAISE_THREADS; i++) {
        w[i] = (struct raiser){.c = c, .seed = seed * 31 + (unsigned)i, .start_fd = start_fd};
        if (pthread_create(&th[i], NULL, raiser_main, &w[i]) != 0)
            return 11;
    }
    uint64_t max = 0;
    int bad = 0;
    for (int i = 0; i < RAISE_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].rc != 0 || w[i].bad != 0) {
            fprintf(stderr,
                    "child %d thread %d: rc %d, %d values below their floor or going "
                    "back\n",
                    (int)getpid(), i, w[i].rc, w[i].bad);
            bad = 1;
        }
        if (w[i].max_floor > max)
            max = w[i].max_floor;
    }
    if (visits_close(c) != 0)
        return 12;
    if (bad)
        return 13;
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, &max, sizeof max) != (ssize_t)sizeof max || close(fd) != 0)
        return 14;
    return 0;
}

/* A reader of the file while the raisers run: it must never see a value go back. */
static int watch_file(const char *path, int stop_fd)
{
    uint64_t last = 0, v = 0;
    for (uint64_t deadline = tu_now_ms() + DEADLINE_MS; tu_now_ms() < deadline;) {
        int exists = 0;
        if (visits_read_file(path, &v, &exists) != 0)
            return 20;
        if (v < last) {
            fprintf(stderr, "watcher: the file went back from %" PRIu64 " to %" PRIu64 "\n", last,
                    v);
            return 21;
        }
        last = v;
        char b;
        if (read(stop_fd, &b, 1) == 0)
            return 0; /* the parent closed the pipe: done */
    }
    return 22;
}

static void test_raise_threads(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    struct raiser w[8];
    pthread_t th[8];
    uint64_t max = 0;
    for (int i = 0; i < 8; i++) {
        w[i] = (struct raiser){.c = c, .seed = 7u + (unsigned)i, .start_fd = -1};
        assert_int_equal(pthread_create(&th[i], NULL, raiser_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(w[i].bad, 0);
        if (w[i].max_floor > max)
            max = w[i].max_floor;
    }
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, max);
    assert_int_equal(visits_close(c), 0);
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRIu64 "\n", max);
    tu_assert_file_str(fx->path, expect);
    tu_assert_no_temps(fx->dir);
}

static void test_raise_processes(void **state)
{
    struct tu_fixture *fx = *state;
    char out[RAISE_PROCS][TU_PATH_MAX];
    pid_t pids[RAISE_PROCS + 1];
    int start[2], stop[2];
    assert_int_equal(pipe(start), 0);
    assert_int_equal(pipe(stop), 0);
    assert_int_equal(fcntl(stop[0], F_SETFL, O_NONBLOCK), 0);
    tu_write_file(fx->path, "5\n", 2, 0644); /* a floor below every later one */
    for (int p = 0; p <= RAISE_PROCS; p++) {
        if (p < RAISE_PROCS) {
            char name[32];
            snprintf(name, sizeof name, "max-%d", p);
            tu_join(out[p], fx->dir, name);
        }
        fflush(NULL);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(start[1]);
            close(stop[1]);
            _exit(p < RAISE_PROCS ? raise_proc_main(fx->path, out[p], 1000u + (unsigned)p, start[0])
                                  : watch_file(fx->path, stop[0]));
        }
    }
    close(start[1]); /* go */
    close(start[0]);
    close(stop[0]);
    int failed = 0;
    uint64_t deadline = tu_now_ms() + DEADLINE_MS + 10000;
    for (int p = 0; p <= RAISE_PROCS; p++) {
        if (p == RAISE_PROCS)
            close(stop[1]); /* the raisers are done: stop the watcher */
        int status = 0;
        pid_t r;
        while ((r = waitpid(pids[p], &status, WNOHANG)) == 0 && tu_now_ms() < deadline)
            tu_sleep_ms(5);
        if (r == 0) {
            kill(pids[p], 9);
            waitpid(pids[p], &status, 0);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s %d: status 0x%x\n", p < RAISE_PROCS ? "raiser" : "watcher", p,
                    status);
            failed = 1;
        }
    }
    assert_int_equal(failed, 0);
    uint64_t max = 5;
    for (int p = 0; p < RAISE_PROCS; p++) {
        uint64_t m = 0;
        assert_int_equal(tu_read_file(out[p], (char *)&m, sizeof m), (long)sizeof m);
        assert_int_equal(unlink(out[p]), 0);
        if (m > max)
            max = m;
    }
    /* the largest floor any process asked for, exactly: never lower, never more */
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRIu64 "\n", max);
    tu_assert_file_str(fx->path, expect);
    assert_true(max > UINT64_MAX - 1000); /* the top of the range was reached */
    tu_assert_no_temps(fx->dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_threads_always), TU_TEST(test_threads_interval), TU_TEST(test_processes),
        TU_TEST(test_raise_threads),  TU_TEST(test_raise_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
