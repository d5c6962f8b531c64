/*
 * test_counter.c: the handle (counter.c) in one thread: values returned, visits_read,
 * statistics, and the interval sync mode (returns at once, writes within the interval,
 * close flushes, errors reported, other handles' increments never overwritten).
 */
#include "util.h"

#include "visits_testing.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static visits_counter *open_interval(const char *path, unsigned interval_ms)
{
    visits_options o;
    visits_options_init(&o);
    o.sync = VISITS_SYNC_INTERVAL;
    o.interval_ms = interval_ms;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(path, &o, &c), 0);
    assert_non_null(c);
    return c;
}

/* Polls path until it holds exactly expect, at most timeout_ms; returns the ms waited or
 * fails the test. */
static uint64_t wait_for_file(const char *path, const char *expect, unsigned timeout_ms)
{
    uint64_t t0 = tu_now_ms();
    char buf[64];
    size_t n = strlen(expect);
    for (;;) {
        long got = tu_read_file(path, buf, sizeof buf);
        if (got == (long)n && memcmp(buf, expect, n) == 0)
            return tu_now_ms() - t0;
        if (tu_now_ms() - t0 > timeout_ms)
            fail_msg("%s did not become \"%.*s\" within %u ms (holds %ld bytes \"%.*s\")", path,
                     (int)n - 1, expect, timeout_ms, got, got > 0 ? (int)got : 0, buf);
        tu_sleep_ms(2);
    }
}

/* ---- always mode ---------------------------------------------------------------------- */

static void test_always_values_and_stats(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "100\n", 4, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.cycles, 0);
    assert_int_equal(st.increments, 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.last_error, 0);

    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 101);
    tu_assert_file_str(fx->path, "101\n");
    assert_int_equal(visits_incr(c, NULL), 0); /* value_out is nullable */
    tu_assert_file_str(fx->path, "102\n");
    assert_int_equal(visits_add(c, 7, &v), 0);
    assert_int_equal(v, 109);
    tu_assert_file_str(fx->path, "109\n");
    assert_int_equal(visits_add(c, 0, &v), 0);
    assert_int_equal(v, 109);
    tu_assert_file_str(fx->path, "109\n");
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 109);

    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_true(st.cycles >= 3 && st.cycles <= 4); /* add(0) may or may not write */
    assert_true(st.increments >= 3 && st.increments <= 4);
    assert_int_equal(st.cycles_failed, 0);
    assert_int_equal(st.batch_max, 1);
    assert_true(st.cycle_ns_last > 0);
    assert_true(st.cycle_ns_total >= st.cycle_ns_last);
    assert_true(st.cycle_ns_total >= 3 * 1000); /* three real fsyncs take > 1 us each */
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.last_error, 0);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "109\n");
    tu_assert_no_temps(fx->dir);
}

/* visits_read() sees what another process (here: a plain rewrite) put in the file. */
static void test_read_sees_external_writes(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    assert_int_equal(visits_incr(c, NULL), 0);
    assert_int_equal(visits_set_file(fx->path, 500, NULL, NULL), 0);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 501);
    tu_assert_file_str(fx->path, "501\n");
    /* the file deleted behind the handle's back: the handle still knows 501, counts on
     * from there and creates the file again (test_identity.c has the rest) */
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 501);
    assert_int_equal(visits_incr(c, &v), 0);
    assert_int_equal(v, 502);
    tu_assert_file_str(fx->path, "502\n");
    assert_int_equal(visits_close(c), 0);
}

typedef int (*fsync_fn)(int);
static fsync_fn real_fsync;
static unsigned slow_fsync_ms;

static int fsync_entered; /* set once a slow fsync has begun */

static int slow_fsync(int fd)
{
    __atomic_store_n(&fsync_entered, 1, __ATOMIC_SEQ_CST);
    tu_sleep_ms(slow_fsync_ms);
    return real_fsync(fd);
}

/* Waits (at most 10 s) until a write cycle is inside its slow fsync. */
static void wait_for_fsync(void)
{
    uint64_t deadline = tu_now_ms() + 10000;
    while (!__atomic_load_n(&fsync_entered, __ATOMIC_SEQ_CST)) {
        if (tu_now_ms() > deadline)
            fail_msg("no write cycle reached fsync within 10 s");
        tu_sleep_ms(1);
    }
}

struct incr_arg {
    visits_counter *c;
    uint64_t value;
    int rc;
};

static void *incr_thread(void *p)
{
    struct incr_arg *a = p;
    a->rc = visits_incr(a->c, &a->value);
    return NULL;
}

/* visits_read() never waits for a write cycle in progress: with every fsync taking
 * 300 ms, a read during an increment returns at once with the last known value. */
static void test_read_does_not_wait_for_cycle(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "7\n", 2, 0644);
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    slow_fsync_ms = 300;
    __atomic_store_n(&fsync_entered, 0, __ATOMIC_SEQ_CST);
    fsync_fn mine = slow_fsync;
    tu_install("fsync", &mine, &real_fsync);
    struct incr_arg a = {c, 0, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, incr_thread, &a), 0);
    wait_for_fsync(); /* the cycle is now in its first fsync */
    uint64_t t0 = tu_now_ns(), v = 0;
    assert_int_equal(visits_read(c, &v), 0);
    uint64_t took = tu_now_ns() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    print_message("visits_read during a 600 ms cycle took %.3f ms\n", (double)took / 1e6);
    assert_true(took < 100u * 1000000u);
    assert_int_equal(v, 7);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.value, 8);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "8\n");
}

/* Near UINT64_MAX, three increments queued into one cycle: the two that fit succeed
 * (values MAX-1 and MAX), only the third is refused with VISITS_EOVERFLOW. */
static void test_overflow_within_one_batch(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "18446744073709551612\n", 21, 0644); /* MAX - 3 */
    visits_counter *c = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &c), 0);
    slow_fsync_ms = 200;
    __atomic_store_n(&fsync_entered, 0, __ATOMIC_SEQ_CST);
    fsync_fn mine = slow_fsync;
    tu_install("fsync", &mine, &real_fsync);
    struct incr_arg first = {c, 0, -1}, batch[3];
    pthread_t th0, th[3];
    assert_int_equal(pthread_create(&th0, NULL, incr_thread, &first), 0);
    wait_for_fsync(); /* the first cycle (MAX - 2) is in its fsync: the others queue */
    for (int i = 0; i < 3; i++) {
        batch[i] = (struct incr_arg){c, 0, -1};
        assert_int_equal(pthread_create(&th[i], NULL, incr_thread, &batch[i]), 0);
    }
    assert_int_equal(pthread_join(th0, NULL), 0);
    int ok = 0, refused = 0;
    uint64_t got_max = 0, got_max_minus_1 = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (batch[i].rc == 0) {
            ok++;
            got_max += batch[i].value == UINT64_MAX;
            got_max_minus_1 += batch[i].value == UINT64_MAX - 1;
        } else if (batch[i].rc == VISITS_EOVERFLOW) {
            refused++;
        }
    }
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(first.rc, 0);
    assert_int_equal(first.value, UINT64_MAX - 2);
    if (ok != 2 || refused != 1)
        fail_msg("3 increments from MAX-2 in one cycle (batch max %" PRIu64 "): %d succeeded, "
                 "%d refused with VISITS_EOVERFLOW; expected 2 and 1",
                 st.batch_max, ok, refused);
    assert_int_equal(got_max, 1);
    assert_int_equal(got_max_minus_1, 1);
    tu_assert_file_str(fx->path, "18446744073709551615\n");
    assert_int_equal(visits_close(c), 0);
    tu_assert_no_temps(fx->dir);
}

/* ---- interval mode -------------------------------------------------------------------- */

/* Increments return at once, even while the background write is stuck in a slow fsync. */
static void test_interval_returns_at_once(void **state)
{
    struct tu_fixture *fx = *state;
    slow_fsync_ms = 300;
    __atomic_store_n(&fsync_entered, 0, __ATOMIC_SEQ_CST);
    fsync_fn mine = slow_fsync;
    tu_install("fsync", &mine, &real_fsync);
    visits_counter *c = open_interval(fx->path, 20);
    uint64_t worst = 0;
    uint64_t t_end = tu_now_ms() + 1000; /* spans several slow cycles */
    uint64_t expect = 0;
    while (tu_now_ms() < t_end && expect < 100000) {
        uint64_t t0 = tu_now_ns();
        uint64_t v = 0;
        assert_int_equal(visits_incr(c, &v), 0);
        uint64_t dt = tu_now_ns() - t0;
        if (dt > worst)
            worst = dt;
        assert_int_equal(v, ++expect);
        tu_sleep_ms(1);
    }
    print_message("interval mode: %" PRIu64 " increments, slowest took %.3f ms while each "
                  "fsync took %u ms\n",
                  expect, (double)worst / 1e6, slow_fsync_ms);
    assert_true(worst < 100u * 1000000u);
    uint64_t v = 0;
    assert_int_equal(visits_read(c, &v), 0); /* never waits for the cycle either */
    assert_int_equal(v, expect);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(visits_close(c), 0);
    print_message("close took %" PRIu64 " ms\n", tu_now_ms() - t0);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64 "\n", expect);
    tu_assert_file_str(fx->path, buf);
    tu_assert_no_temps(fx->dir);
}

static void test_interval_written_within_interval(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "10\n", 3, 0644);
    visits_counter *c = open_interval(fx->path, 200);
    uint64_t v = 0;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, 10 + i);
    }
    uint64_t waited = wait_for_file(fx->path, "15\n", 200 + 2000);
    print_message("5 increments reached the file after %" PRIu64 " ms (interval 200 ms)\n", waited);
    assert_int_equal(visits_add(c, 3, &v), 0);
    assert_int_equal(v, 18);
    waited = wait_for_file(fx->path, "18\n", 200 + 2000);
    print_message("the next one after %" PRIu64 " ms\n", waited);
    assert_int_equal(visits_close(c), 0);
    tu_assert_file_str(fx->path, "18\n");
    tu_assert_no_temps(fx->dir);
}

/* An hour's interval: close writes everything, and does not wait for the hour. */
static void test_interval_close_flushes(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *c = open_interval(fx->path, 3600000);
    uint64_t v = 0;
    for (uint64_t i = 1; i <= 1000; i++) {
        assert_int_equal(visits_incr(c, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(visits_add(c, 234, &v), 0);
    assert_int_equal(v, 1234);
    assert_int_equal(visits_read(c, &v), 0); /* the file's value plus what is pending */
    assert_int_equal(v, 1234);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(visits_close(c), 0);
    uint64_t took = tu_now_ms() - t0;
    assert_true(took < 5000);
    tu_assert_file_str(fx->path, "1234\n");
    tu_assert_no_temps(fx->dir);
}

/* Pending increments are added to the file's value at write time: another handle's
 * increments in between are kept. */
static void test_interval_keeps_other_handles_increments(void **state)
{
    struct tu_fixture *fx = *state;
    visits_counter *slow = open_interval(fx->path, 3600000);
    visits_counter *fast = NULL;
    assert_int_equal(visits_open(fx->path, NULL, &fast), 0);
    uint64_t v = 0;
    assert_int_equal(visits_add(slow, 5, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(visits_incr(fast, &v), 0);
    /* the always-mode handle made its own increment durable: 1, or 6 if the interval
     * handle had written already */
    assert_true(v == 1 || v == 6);
    assert_int_equal(visits_incr(fast, &v), 0);
    assert_int_equal(visits_close(slow), 0);
    tu_assert_file_str(fx->path, "7\n");
    assert_int_equal(visits_read(fast, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(visits_close(fast), 0);
    tu_assert_no_temps(fx->dir);
}

/* A background write error is returned by the next increments (not counted); once the
 * disk recovers, writing resumes and the file ends with exactly the counted value. */
static void test_interval_write_error_reported(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    tu_fail_writes(ENOSPC);
    visits_counter *c = open_interval(fx->path, 10);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0); /* acknowledged before any write */
    assert_int_equal(v, 42);
    uint64_t last_ok = 42;
    int rc = 0;
    uint64_t deadline = tu_now_ms() + 3000;
    while (tu_now_ms() < deadline) {
        rc = visits_incr(c, &v);
        if (rc != 0)
            break;
        assert_int_equal(v, last_ok + 1);
        last_ok = v;
        tu_sleep_ms(1);
    }
    assert_int_equal(rc, -ENOSPC);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.last_error, -ENOSPC);
    assert_true(st.cycles_failed >= 1);
    if (st.failed)
        fail_msg("failed by %d (%s)", st.failed_error, visits_strerror(st.failed_error));
    assert_int_equal(visits_incr(c, &v), -ENOSPC); /* still reported */
    tu_assert_file_str(fx->path, "41\n");
    tu_assert_no_temps(fx->dir);

    /* the disk recovers: within a few intervals increments are accepted again */
    tu_fail_writes(0);
    deadline = tu_now_ms() + 3000;
    while ((rc = visits_incr(c, &v)) != 0 && tu_now_ms() < deadline) {
        assert_int_equal(rc, -ENOSPC);
        tu_sleep_ms(2);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(v, last_ok + 1); /* the refused ones were not counted */
    last_ok = v;
    assert_int_equal(visits_close(c), 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64 "\n", last_ok);
    tu_assert_file_str(fx->path, buf);
    tu_assert_no_temps(fx->dir);
}

/* close() returns the final write's error when pending increments could not be written. */
static void test_interval_close_reports_error(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    tu_fail_writes(0);
    visits_counter *c = open_interval(fx->path, 3600000);
    uint64_t v = 0;
    assert_int_equal(visits_add(c, 3, &v), 0);
    assert_int_equal(v, 44);
    tu_fail_writes(EIO);
    assert_int_equal(visits_close(c), -EIO);
    tu_fail_writes(0);
    tu_assert_file_str(fx->path, "41\n");
    tu_assert_no_temps(fx->dir);
}

/* An fsync failure in the background fails an interval handle like an always one. */
static int fsync_fails;
static int failing_fsync(int fd)
{
    if (__atomic_load_n(&fsync_fails, __ATOMIC_SEQ_CST)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

static void test_interval_fsync_failure_fails_handle(void **state)
{
    struct tu_fixture *fx = *state;
    tu_write_file(fx->path, "41\n", 3, 0644);
    fsync_fn mine = failing_fsync;
    tu_install("fsync", &mine, &real_fsync);
    __atomic_store_n(&fsync_fails, 1, __ATOMIC_SEQ_CST);
    visits_counter *c = open_interval(fx->path, 10);
    uint64_t v = 0;
    assert_int_equal(visits_incr(c, &v), 0);
    int rc = 0;
    uint64_t deadline = tu_now_ms() + 3000;
    while ((rc = visits_incr(c, &v)) == 0 && tu_now_ms() < deadline)
        tu_sleep_ms(2);
    assert_true(rc == -EIO || rc == VISITS_EFAILED);
    __atomic_store_n(&fsync_fails, 0, __ATOMIC_SEQ_CST);
    tu_sleep_ms(50); /* several intervals: the flusher must not retry into a success */
    assert_int_equal(visits_incr(c, &v), VISITS_EFAILED);
    visits_stats st;
    assert_int_equal(visits_get_stats(c, &st), 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.cycles, 0);
    assert_int_equal(visits_read(c, &v), 0);
    assert_int_equal(visits_close(c), VISITS_EFAILED);
    tu_assert_file_str(fx->path, "41\n"); /* the temp's fsync failed: never renamed */
    tu_assert_no_temps(fx->dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_always_values_and_stats),
        TU_TEST(test_read_sees_external_writes),
        TU_TEST(test_read_does_not_wait_for_cycle),
        TU_TEST(test_overflow_within_one_batch),
        TU_TEST(test_interval_returns_at_once),
        TU_TEST(test_interval_written_within_interval),
        TU_TEST(test_interval_close_flushes),
        TU_TEST(test_interval_keeps_other_handles_increments),
        TU_TEST(test_interval_write_error_reported),
        TU_TEST(test_interval_close_reports_error),
        TU_TEST(test_interval_fsync_failure_fails_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
