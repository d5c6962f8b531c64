/*
 * clock.h: the server's clocks. CLOCK_MONOTONIC measures durations and sets deadlines;
 * CLOCK_REALTIME is for timestamps and for the calls that take only a realtime deadline.
 */
#ifndef VISITS_CLOCK_H
#define VISITS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

static inline uint64_t clock_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

/* The CLOCK_REALTIME time grace_ms after the CLOCK_MONOTONIC deadline_ms (now if that has
 * passed), for pthread_timedjoin_np, which takes no other clock. */
static inline struct timespec clock_real_deadline(uint64_t deadline_ms, uint64_t grace_ms)
{
    uint64_t now = clock_mono_ms();
    uint64_t left = (deadline_ms > now ? deadline_ms - now : 0) + grace_ms;
    uint64_t at = clock_real_ns() + left * 1000000u;
    struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
    return ts;
}

#endif /* VISITS_CLOCK_H */
