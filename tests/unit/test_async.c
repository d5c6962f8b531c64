/*
 * test_async.c: visits_add_async/visits_raise_async and the group commit they share with
 * the blocking calls (commit.c): order of effects and callbacks, values, the thread that
 * calls back, errors, a failed handle and visits_reopen, close with callbacks pending,
 * calls refused from callbacks, raise, and batches of closed-loop writers.
 */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 20000

/* What the callbacks saw, in the order they ran. */
struct record {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n, cap;
    uint64_t *tags, *values;
    int *errs;
    pthread_t thread;
    int threads_differ; /* a callback ran on another thread than the first one */
    int on_caller;      /* a callback ran on the thread that queued it */
    pthread_t caller;
};

static void record_init(struct record *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->cap = cap;
    r->tags = calloc(cap, sizeof *r->tags);
    r->values = calloc(cap, sizeof *r->values);
    r->errs = calloc(cap, sizeof *r->errs);
    r->caller = pthread_self();
    assert_non_null(r->tags);
    assert_non_null(r->values);
    assert_non_null(r->errs);
}

static void record_free(struct record *r)
{
    free(r->tags);
    free(r->values);
    free(r->errs);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* Each callback's arg points at one of these. */
struct tagged {
    struct record *r;
    uint64_t tag;
};

static void on_done(void *arg, int err, uint64_t value)
{
    struct tagged *t = arg;
    struct record *r = t->r;
    pthread_mutex_lock(&r->mu);
    if (r->n == 0)
        r->thread = pthread_self();
    else if (!pthread_equal(r->thread, pthread_self()))
        r->threads_differ = 1;
    if (pthread_equal(r->caller, pthread_self()))
        r->on_caller = 1;
    if (r->n < r->cap) {
        r->tags[r->n] = t->tag;
        r->values[r->n] = value;
        r->errs[r->n] = err;
    }
    r->n++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void wait_for(struct record *r, size_t n)
{
    uint64_t deadline = tu_now_ms() + WAIT_MS;
    pthread_mutex_lock(&r->mu);
    while (r->n < n && tu_now_ms() < deadline) {
        pthread_mutex_unlock(&r->mu);
        tu_sleep_ms(1);
        pthread_mutex_lock(&r->mu);
    }
    size_t got = r->n;
    pthread_mutex_unlock(&r->mu);
    if (got < n)
        fail_msg("%zu of %zu callbacks after %d ms", got, n, WAIT_MS);
}

static visits_counter *open_mode(const char *path, visits_sync_mode mode, unsigned interval_ms)
{
    visits_options o;
    visits_options_init(&o);
    o.sync = mode;
    o.interval_ms = interval_ms;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(path, &o, &c), 0);
    return c;
}

typedef int (*fsync_fn)(int);
static fsync_fn real_fsync;
static unsigned fsync_delay_ms;
static int fsync_errno;

static int slow_fsync(int fd)
{
    int err = __atomic_load_n(&fsync_errno, __ATOMIC_SEQ_CST);
    tu_sleep_ms(__atomic_load_n(&fsync_delay_ms, __ATOMIC_SEQ_CST));
    if (err != 0) {
        errno = err;
        return -1;
    }
    return real_fsync(fd);
}

static void install_fsync(unsigned delay_ms, int err)
{
    __atomic_store_n(&fsync_delay_ms, delay_ms, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fsync_errno, err, __ATOMIC_SEQ_CST);
    fsync_fn mine = slow_fsync;
    tu_install("fsync", &mine, &real_fsync);
}

/* ---- order, values, thread ------------------------------------------------------------- */

/* 500 asynchronous additions of 1..3 from one thread, with slow disks so that they share
 * cycles: callbacks in queue order, each value the running sum, on one thread that is
 * not the caller's; the file holds the total. */
static void test_order_and_values(void **state)
{
    struct tu_fixture *fx = *state;
    enum { N = 500 };
    install_fsync(1, 0);
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct record r;
    record_init(&r, N);
    static struct tagged tags[N];
    uint64_t sum = 0, expect[N];
    for (size_t i = 0; i < N; i++) {
        tags[i] = (struct tagged){&r, i};
        uint64_t n = 1 + i % 3;
        sum += n;
        expect[i] = sum;
        assert_int_equal(visits_add_async(c, n, on_done, &tags[i]), 0);
    }
    wait_for(&r, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.tags[i], i);
        assert_int_equal(r.errs[i], 0);
        assert_int_equal(r.values[i], expect[i]);
    }
    assert_false(r.threads_differ);
    assert_false(r.on_caller);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.increments, N);
    assert_true(st.cycles < N / 4); /* they shared cycles */
    assert_int_equal(visits_close(c), 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64 "\n", sum);
    tu_assert_file_str(fx->path, buf);
    tu_assert_no_temps(fx->dir);
    record_free(&r);
}

/* A callback is never run inside visits_add_async, even when the disk is instant and
 * the committer idle: it comes from the committer thread. */
static void test_never_called_inline(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct record r;
    record_init(&r, 50);
    static struct tagged tags[50];
    for (size_t i = 0; i < 50; i++) {
        tags[i] = (struct tagged){&r, i};
        pthread_mutex_lock(&r.mu); /* a callback on this thread would deadlock here */
        size_t before = r.n;
        pthread_mutex_unlock(&r.mu);
        assert_int_equal(visits_add_async(c, 1, on_done, &tags[i]), 0);
        (void)before;
        wait_for(&r, i + 1);
    }
    assert_false(r.on_caller);
    assert_int_equal(r.values[49], 50);
    assert_int_equal(visits_close(c), 0);
    record_free(&r);
}

/* Interval mode: the callback comes at once, long before the disk is written. */
static void test_interval_calls_back_at_once(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "10\n", 3, 0644);
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_INTERVAL, 3600000);
    struct record r;
    record_init(&r, 10);
    static struct tagged tags[10];
    uint64_t t0 = tu_now_ms();
    for (size_t i = 0; i < 10; i++) {
        tags[i] = (struct tagged){&r, i};
        assert_int_equal(visits_add_async(c, 2, on_done, &tags[i]), 0);
    }
    wait_for(&r, 10);
    assert_true(tu_now_ms() - t0 < 5000);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(r.values[i], 10 + 2 * (i + 1));
    tu_assert_file_str(fx->path, "10\n"); /* not yet */
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "30\n");
    record_free(&r);
}

/* Blocking and asynchronous callers from several threads: every value handed out once,
 * the file holds the total. */
struct mixer {
    visits_counter *c;
    struct record *r;
    struct tagged *tags;
    size_t n;
    uint64_t *values;
    int async;
    int rc;
};

static void *mixer_main(void *p)
{
    struct mixer *m = p;
    for (size_t i = 0; i < m->n; i++) {
        if (m->async) {
            if ((m->rc = visits_add_async(m->c, 1, on_done, &m->tags[i])) != 0)
                return NULL;
        } else if ((m->rc = visits_incr(m->c, &m->values[i])) != 0) {
            return NULL;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_mixed_callers(void **state)
{
    struct tu_fixture *fx = *state;
    enum { THREADS = 4, PER = 300 };
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct record r;
    record_init(&r, THREADS * PER);
    static struct tagged tags[THREADS][PER];
    static uint64_t values[THREADS][PER];
    struct mixer m[THREADS];
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) {
        for (size_t i = 0; i < PER; i++)
            tags[t][i] = (struct tagged){&r, (uint64_t)t * PER + i};
        m[t] = (struct mixer){c, &r, tags[t], PER, values[t], t % 2, 0};
        assert_int_equal(pthread_create(&tid[t], NULL, mixer_main, &m[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        assert_int_equal(m[t].rc, 0);
    }
    wait_for(&r, (THREADS / 2) * PER);
    static uint64_t all[THREADS * PER];
    size_t k = 0;
    for (size_t i = 0; i < r.n; i++)
        all[k++] = r.values[i];
    for (int t = 0; t < THREADS; t += 1)
        if (!m[t].async)
            for (size_t i = 0; i < PER; i++)
                all[k++] = values[t][i];
    assert_int_equal(k, THREADS * PER);
    qsort(all, k, sizeof all[0], cmp_u64);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(all[i], i + 1);
    assert_int_equal(visits_close(c), 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%d\n", THREADS * PER);
    tu_assert_file_str(fx->path, buf);
    record_free(&r);
}

/* The cycle hook sees every cycle: the operations it carried add up, its values rise, and
 * a failed cycle reports its error. */
struct cycles_seen {
    uint64_t cycles, ops, last_value, failed;
    int err;
};

static void on_cycle(void *arg, const visits_cycle_info *info)
{
    struct cycles_seen *s = arg;
    s->cycles++;
    s->ops += info->ops;
    if (info->err == 0) {
        if (info->value < s->last_value)
            s->err = 1;
        s->last_value = info->value;
    } else {
        s->failed++;
    }
}

static void test_cycle_hook(void **state)
{
    struct tu_fixture *fx = *state;
    struct cycles_seen seen = {0, 0, 0, 0, 0};
    visits_options o;
    visits_options_init(&o);
    o.on_cycle = on_cycle;
    o.cycle_arg = &seen;
    install_fsync(1, 0);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, &o, &c), 0);
    struct record r;
    record_init(&r, 200);
    static struct tagged tags[200];
    for (size_t i = 0; i < 200; i++) {
        tags[i] = (struct tagged){&r, i};
        assert_int_equal(visits_add_async(c, 1, on_done, &tags[i]), 0);
    }
    wait_for(&r, 200);
    tu_fail_writes(ENOSPC);
    assert_int_equal(visits_incr(c, NULL), -ENOSPC);
    tu_fail_writes(0);
    assert_int_equal(visits_close(c), 0);
    assert_int_equal(seen.ops, 201);
    assert_int_equal(seen.last_value, 200);
    assert_int_equal(seen.failed, 1);
    assert_int_equal(seen.err, 0);
    assert_true(seen.cycles < 200);
    record_free(&r);
}

/* ---- raise ------------------------------------------------------------------------------ */

static void test_raise(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 5, &v), 0);
    assert_int_equal(visits_raise(c, 3, &v), 0); /* never lower */
    assert_int_equal(v, 5);
    tu_assert_file_str(fx->path, "5\n");
    assert_int_equal(visits_raise(c, 40, &v), 0);
    assert_int_equal(v, 40);
    tu_assert_file_str(fx->path, "40\n");
    /* queued together, applied in order: +1, raise 30 (no change), raise 50, +2 */
    struct record r;
    record_init(&r, 4);
    struct tagged tags[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
    install_fsync(5, 0);
    assert_int_equal(visits_add_async(c, 1, on_done, &tags[0]), 0);
    assert_int_equal(visits_raise_async(c, 30, on_done, &tags[1]), 0);
    assert_int_equal(visits_raise_async(c, 50, on_done, &tags[2]), 0);
    assert_int_equal(visits_add_async(c, 2, on_done, &tags[3]), 0);
    wait_for(&r, 4);
    assert_int_equal(r.values[0], 41);
    assert_int_equal(r.values[1], 41);
    assert_int_equal(r.values[2], 50);
    assert_int_equal(r.values[3], 52);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "52\n");
    /* interval mode: accepted at once, written at close */
    c = open_mode(fx->path, VISITS_SYNC_INTERVAL, 3600000);
    assert_int_equal(visits_raise(c, 100, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(visits_add(c, 1, &v), 0);
    assert_int_equal(v, 101);
    assert_int_equal(visits_raise(c, 90, &v), 0);
    assert_int_equal(v, 101);
    tu_assert_file_str(fx->path, "52\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "101\n");
    record_free(&r);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    struct tu_fixture *fx = *state;
    struct record r;
    record_init(&r, 1);
    struct tagged t = {&r, 0};
    assert_int_equal(visits_add_async(NULL, 1, on_done, &t), VISITS_EINVAL);
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    assert_int_equal(visits_add_async(c, 1, NULL, &t), VISITS_EINVAL);
    assert_int_equal(visits_raise_async(c, 1, NULL, &t), VISITS_EINVAL);
    assert_int_equal(visits_close(c), 0);
    assert_int_equal(r.n, 0);
    assert_false(tu_exists(fx->path));
    record_free(&r);
}

/* A full disk: the callbacks get -ENOSPC, the file keeps its value, the handle is not
 * failed; once space is back the next additions succeed from the old value. */
static void test_write_error_through_callback(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "7\n", 2, 0644);
    tu_fail_writes(ENOSPC);
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct record r;
    record_init(&r, 20);
    static struct tagged tags[20];
    for (size_t i = 0; i < 10; i++) {
        tags[i] = (struct tagged){&r, i};
        assert_int_equal(visits_add_async(c, 1, on_done, &tags[i]), 0);
    }
    wait_for(&r, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(r.errs[i], -ENOSPC);
        assert_int_equal(r.values[i], 0);
    }
    tu_assert_file_str(fx->path, "7\n");
    tu_assert_no_temps(fx->dir);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.last_error, -ENOSPC);
    assert_string_equal(visits_err_name(st.last_error), "ENOSPC");
    tu_fail_writes(0);
    for (size_t i = 10; i < 20; i++) {
        tags[i] = (struct tagged){&r, i};
        assert_int_equal(visits_add_async(c, 1, on_done, &tags[i]), 0);
    }
    wait_for(&r, 20);
    for (size_t i = 10; i < 20; i++) {
        assert_int_equal(r.errs[i], 0);
        assert_int_equal(r.values[i], 7 + (i - 9));
    }
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "17\n");
    record_free(&r);
}

/* An fsync error fails the handle: queued and later operations get VISITS_EFAILED (through
 * the callback, or returned by the blocking call); visits_reopen makes it usable again and
 * counting goes on from what was known (the outcome of the failed write is unknown: the
 * file may hold either value, and the next write builds on the higher). */
static void test_failed_handle_and_reopen(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 10, &v), 0);
    install_fsync(0, EIO);
    struct record r;
    record_init(&r, 10);
    struct tagged tags[3] = {{&r, 0}, {&r, 1}, {&r, 2}};
    assert_int_equal(visits_add_async(c, 1, on_done, &tags[0]), 0);
    wait_for(&r, 1);
    assert_int_equal(r.errs[0], -EIO);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.failed_error, -EIO);
    __atomic_store_n(&fsync_errno, 0, __ATOMIC_SEQ_CST); /* the disk is fine again... */
    assert_int_equal(visits_add_async(c, 1, on_done, &tags[1]), 0);
    wait_for(&r, 2);
    assert_int_equal(r.errs[1], VISITS_EFAILED); /* ...but the handle stays failed */
    assert_int_equal(visits_incr(c, &v), VISITS_EFAILED);
    assert_int_equal(visits_reopen(c), 0);
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.reopens, 1);
    assert_int_equal(visits_add_async(c, 1, on_done, &tags[2]), 0);
    wait_for(&r, 3);
    assert_int_equal(r.errs[2], 0);
    assert_true(r.values[2] == 11 || r.values[2] == 12);
    assert_int_equal(visits_close(c), 0);
    record_free(&r);
}

/* ---- close and calls from callbacks ------------------------------------------------------ */

/* close() with hundreds of operations queued behind slow disks: every callback has run,
 * with its value, when close returns; the file holds them all. */
static void test_close_completes_pending(void **state)
{
    struct tu_fixture *fx = *state;
    enum { N = 300 };
    install_fsync(3, 0);
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct record r;
    record_init(&r, N);
    static struct tagged tags[N];
    for (size_t i = 0; i < N; i++) {
        tags[i] = (struct tagged){&r, i};
        assert_int_equal(visits_add_async(c, 1, on_done, &tags[i]), 0);
    }
    assert_int_equal(visits_close(c), 0);
    pthread_mutex_lock(&r.mu);
    size_t n = r.n;
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(n, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(r.values[i], i + 1);
    tu_assert_file_str(fx->path, "300\n");
    record_free(&r);
}

/* A callback tries what it may not: a blocking call or a reopen on its own handle
 * (VISITS_EDEADLK); an addition queued while close runs is refused (VISITS_ECLOSING). */
struct reentry {
    visits_counter *c;
    int blocking_rc, reopen_rc, requeue_rc;
    int during_close;
    int calls;
};

static void on_reenter(void *arg, int err, uint64_t value)
{
    struct reentry *e = arg;
    (void)err;
    (void)value;
    int call = __atomic_load_n(&e->calls, __ATOMIC_ACQUIRE) + 1;
    if (call == 1) {
        e->blocking_rc = visits_incr(e->c, NULL);
        e->reopen_rc = visits_reopen(e->c);
        uint64_t v = 0;
        assert_true(visits_read(e->c, &v) == 0); /* allowed */
    } else if (e->during_close) {
        e->requeue_rc = visits_add_async(e->c, 1, on_reenter, e);
    }
    __atomic_store_n(&e->calls, call, __ATOMIC_RELEASE); /* the results are published */
}

static void test_calls_from_callbacks(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = open_mode(fx->path, VISITS_SYNC_ALWAYS, 0);
    struct reentry e = {c, 1, 1, 1, 0, 0};
    assert_int_equal(visits_add_async(c, 1, on_reenter, &e), 0);
    uint64_t deadline = tu_now_ms() + WAIT_MS;
    while (__atomic_load_n(&e.calls, __ATOMIC_ACQUIRE) < 1 && tu_now_ms() < deadline)
        tu_sleep_ms(1);
    assert_int_equal(e.blocking_rc, VISITS_EDEADLK);
    assert_int_equal(e.reopen_rc, VISITS_EDEADLK);
    install_fsync(20, 0);
    e.during_close = 1;
    assert_int_equal(visits_add_async(c, 1, on_reenter, &e), 0);
    assert_int_equal(visits_close(c), 0);
    assert_int_equal(e.calls, 2);
    assert_int_equal(e.requeue_rc, VISITS_ECLOSING);
    tu_assert_file_str(fx->path, "2\n");
}

/* ---- group commit for closed-loop writers ------------------------------------------------ */

struct looper {
    visits_counter *c;
    uint64_t until_ms;
    size_t calls;
    int rc;
};

static void *looper_main(void *p)
{
    struct looper *l = p;
    while (tu_now_ms() < l->until_ms) {
        if ((l->rc = visits_incr(l->c, NULL)) != 0)
            return NULL;
        l->calls++;
    }
    return NULL;
}

/* N threads each waiting for its increment before the next (closed loop), behind a disk
 * whose flushes take 2 ms: a cycle should carry nearly all N (not N/2 as without
 * gathering). */
static void test_closed_loop_batches(void **state)
{
    struct tu_fixture *fx = *state;
    enum { N = 16 };
    install_fsync(2, 0);
    /* The wait is bounded by the last cycle's time (about 4 ms here); the generous
     * gather_us keeps the test meaningful under sanitizers, where threads come back
     * slowly. bench/counter measures the default. */
    visits_options o;
    visits_options_init(&o);
    o.gather_us = 10000;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, &o, &c), 0);
    struct looper l[N];
    pthread_t tid[N];
    uint64_t until = tu_now_ms() + 1500;
    for (int i = 0; i < N; i++) {
        l[i] = (struct looper){c, until, 0, 0};
        assert_int_equal(pthread_create(&tid[i], NULL, looper_main, &l[i]), 0);
    }
    size_t calls = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(l[i].rc, 0);
        calls += l[i].calls;
    }
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    double mean = (double)st.increments / (double)st.cycles;
    print_message("closed loop, %d writers, 2 ms fsync: %zu increments in %" PRIu64
                  " cycles, mean batch %.1f (gathers %" PRIu64 ", in vain %" PRIu64 ")\n",
                  N, calls, st.cycles, mean, st.gathers, st.gathers_vain);
    assert_int_equal(st.increments, calls);
    assert_true(mean >= 0.8 * N);
    assert_int_equal(visits_close(c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_order_and_values),
        TU_TEST(test_never_called_inline),
        TU_TEST(test_interval_calls_back_at_once),
        TU_TEST(test_mixed_callers),
        TU_TEST(test_cycle_hook),
        TU_TEST(test_raise),
        TU_TEST(test_bad_arguments),
        TU_TEST(test_write_error_through_callback),
        TU_TEST(test_failed_handle_and_reopen),
        TU_TEST(test_close_completes_pending),
        TU_TEST(test_calls_from_callbacks),
        TU_TEST(test_closed_loop_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
