/*
 * test_crash.c: SIGKILL at random moments. A child increments in a loop (always mode)
 * and reports each returned value through a pipe; the parent kills it after 1-30 ms,
 * 50 times on one file. After every kill the file parses and holds at least the last
 * value the child reported (acknowledged = durable) and at most one more (the
 * increment in flight), the value never goes backwards, and the next open removes any
 * temp the kill left behind. (A process kill, not a power cut: the page cache survives.)
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 50

static void child_loop(const char *path, int out_fd)
{
    visits_counter *c = NULL;
    if (visits_open(path, NULL, &c) != 0)
        _exit(2);
    uint64_t ready = 0; /* values start at 1: 0 says the counter is open */
    if (write(out_fd, &ready, sizeof ready) != (ssize_t)sizeof ready)
        _exit(4);
    uint64_t deadline = tu_now_ms() + 10000; /* the parent kills us long before */
    while (tu_now_ms() < deadline) {
        uint64_t v = 0;
        if (visits_incr(c, &v) != 0)
            _exit(3);
        if (write(out_fd, &v, sizeof v) != (ssize_t)sizeof v) /* atomic: < PIPE_BUF */
            _exit(4);
    }
    _exit(5);
}

/* What the parent has read from one child. */
struct reports {
    int round;
    uint64_t prev;  /* the file's value before this child started */
    uint64_t last;  /* the highest value the child reported (prev if none) */
    uint64_t count; /* values reported */
    int ready;      /* the child had the counter open */
};

/* Takes one record: 0 is the ready marker, anything else an acknowledged value, which
 * must continue from the file's value and rise by one each time. */
static void take(struct reports *r, uint64_t v)
{
    if (v == 0) {
        if (r->ready || r->count > 0)
            fail_msg("round %d: ready marker out of place", r->round);
        r->ready = 1;
        return;
    }
    uint64_t expect = r->count == 0 ? r->prev + 1 : r->last + 1;
    if (v != expect)
        fail_msg("round %d: child got %" PRIu64 ", expected %" PRIu64 " (file held %" PRIu64
                 " before)",
                 r->round, v, expect, r->prev);
    r->last = v;
    r->count++;
}

/* Reads records until the child is ready (want_value 0) or has reported a value (1). */
static void wait_for(struct reports *r, int fd, pid_t pid, int want_value)
{
    uint64_t deadline = tu_now_ms() + 20000;
    while (want_value ? r->count == 0 : !r->ready) {
        struct pollfd pfd = {fd, POLLIN, 0};
        uint64_t v;
        if (tu_now_ms() > deadline || poll(&pfd, 1, 1000) < 0 ||
            (pfd.revents != 0 && read(fd, &v, sizeof v) != (ssize_t)sizeof v)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("round %d: the child did not %s", r->round,
                     want_value ? "report a value" : "open the counter");
        }
        if (pfd.revents != 0)
            take(r, v);
    }
}

static void test_sigkill_loop(void **state)
{
    struct tu_fixture *fx = *state;
    unsigned seed = (unsigned)tu_env_ulong("VISITS_TEST_SEED", (unsigned long)time(NULL));
    print_message("seed %u (VISITS_TEST_SEED to repeat)\n", seed);
    srand(seed);

    uint64_t prev = 0;          /* the file's value after the previous kill */
    int rounds_with_values = 0; /* rounds in which the child got at least one value */
    int rounds_in_flight = 0;   /* rounds where the file held the unreported +1 */
    int temps_left = 0;         /* rounds where the kill left a temp file */
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_loop(fx->path, fds[1]);
        }
        close(fds[1]);
        /* The 1-30 ms delay counts from the fork in one round of five (kills inside
         * visits_open), from the open in another (kills in the first increments), and
         * from the first acknowledged value in the other three, so that kills land
         * among increments even when a slow run (valgrind) takes longer than 30 ms to
         * get there. */
        struct reports r = {round, prev, prev, 0, 0};
        unsigned delay = 1 + (unsigned)rand() % 30;
        int phase = round % 5;
        if (phase != 4)
            wait_for(&r, fds[0], pid, phase != 3);
        tu_sleep_ms(delay);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("round %d: child ended by itself (status 0x%x) before the kill", round,
                     status);

        /* everything else the child reported: the last is the highest acknowledged */
        uint64_t v = 0;
        ssize_t n;
        while ((n = read(fds[0], &v, sizeof v)) == (ssize_t)sizeof v)
            take(&r, v);
        assert_int_equal(n, 0); /* EOF, no torn record */
        close(fds[0]);
        uint64_t last = r.last;

        uint64_t on_disk = 0;
        int exists = 0;
        int rc = visits_read_file(fx->path, &on_disk, &exists);
        if (rc != 0)
            fail_msg("round %d (killed after %u ms): file unreadable: %d (%s)", round, delay, rc,
                     visits_strerror(rc));
        if (on_disk < last || on_disk > last + 1)
            fail_msg("round %d: file holds %" PRIu64 ", child had been told %" PRIu64, round,
                     on_disk, last);
        if (r.count > 0)
            rounds_with_values++;
        if (on_disk == last + 1)
            rounds_in_flight++;
        int temps = tu_count_temps(fx->dir, 0);
        if (temps > 0)
            temps_left++;

        /* the next open removes what the kill left and changes nothing else */
        struct stat before, after;
        if (exists)
            tu_lstat(fx->path, &before);
        visits_counter *c = NULL;
        assert_int_equal(visits_open(fx->path, NULL, &c), 0);
        tu_assert_no_temps(fx->dir);
        assert_int_equal(visits_close(c), 0);
        if (exists) {
            tu_lstat(fx->path, &after);
            tu_assert_same_stat(&before, &after);
        } else {
            assert_false(tu_exists(fx->path));
        }
        prev = on_disk;
    }
    print_message("%d kills: final value %" PRIu64 ", %d rounds with acknowledged values, "
                  "%d with an unreported increment on disk, %d left a temp\n",
                  ROUNDS, prev, rounds_with_values, rounds_in_flight, temps_left);
    /* the test only means something if some kills landed inside a write cycle */
    assert_true(rounds_with_values >= ROUNDS * 3 / 5);
    assert_true(rounds_in_flight + temps_left > 0);
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRIu64 "\n", prev);
    tu_assert_file_str(fx->path, expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_sigkill_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
