// The slow path of CFliptClock.h: clock_gettime, and the anchor's calibration and publication.

#include "CFliptClock.h"

#include <pthread.h>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

flipt_clock_anchor flipt_clock_shared_anchor;

/// The rate is measured over at least this long a span of CLOCK_MONOTONIC before the counter is used.
static const int64_t calibration_min_nanos = 10 * 1000 * 1000;
/// The calibration span starts over after this long, so that the rate follows a changed counter frequency.
static const int64_t calibration_restart_nanos = 60LL * 1000 * 1000 * 1000;
/// An anchor serves readings for this long.
static const uint64_t horizon_nanos = 1000 * 1000;
/// A (counter, clock) pair whose reads were further apart than this (a preempted thread) is not used.
static const uint64_t pair_max_nanos = 1000;

static pthread_once_t decision = PTHREAD_ONCE_INIT;
static int counter_usable;
/// Start of the calibration span; touched only by the anchor writer (the thread holding an odd sequence).
static uint64_t base_ticks;
static int64_t base_monotonic_nanos;

static void decide(void) {
#if defined(__linux__) && defined(__x86_64__)
    // An invariant TSC (CPUID 0x80000007, EDX bit 8) ticks at a constant rate in every power state; without it
    // the counter is not a clock.
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) && eax >= 0x80000007
        && __get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx)) {
        counter_usable = (edx >> 8) & 1;
    }
#elif defined(__linux__) && defined(__aarch64__)
    counter_usable = 1;  // the generic timer is architected: constant frequency, shared by all cores
#endif
}

static int64_t nanos_of(const struct timespec *value) {
    return (int64_t)value->tv_sec * 1000000000 + (int64_t)value->tv_nsec;
}

int64_t flipt_clock_system_nanos(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return nanos_of(&now);
}

int flipt_clock_uses_counter(void) {
    pthread_once(&decision, decide);
    return counter_usable;
}

int64_t flipt_clock_read_slow(uint64_t *ticks) {
    *ticks = 0;
    if (!flipt_clock_uses_counter()) return flipt_clock_system_nanos();

    struct timespec wall, monotonic;
    uint64_t first = flipt_clock_ticks();
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t second = flipt_clock_ticks();
    clock_gettime(CLOCK_MONOTONIC, &monotonic);
    uint64_t third = flipt_clock_ticks();
    int64_t wall_nanos = nanos_of(&wall);

    flipt_clock_anchor *shared = &flipt_clock_shared_anchor;
    uint64_t sequence = __atomic_load_n(&shared->sequence, __ATOMIC_RELAXED);
    if ((sequence & 1) != 0) return wall_nanos;  // another thread is re-anchoring
    if (!__atomic_compare_exchange_n(&shared->sequence, &sequence, sequence + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        return wall_nanos;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    uint64_t published = sequence;  // unchanged unless a new anchor is written below
    uint64_t rate = __atomic_load_n(&shared->nanos_per_tick_q32, __ATOMIC_RELAXED);
    int ordered = first < second && second < third;
    if (ordered && (rate == 0 || flipt_clock_ticks_as_nanos(third - first, rate) <= pair_max_nanos)) {
        uint64_t wall_ticks = first + (second - first) / 2;
        uint64_t monotonic_ticks = second + (third - second) / 2;
        int64_t monotonic_nanos = nanos_of(&monotonic);
        int64_t span_nanos = monotonic_nanos - base_monotonic_nanos;
        if (base_ticks == 0 || monotonic_ticks <= base_ticks || span_nanos <= 0
            || span_nanos > calibration_restart_nanos) {
            // First reading, a counter that went back (a resumed machine), or time to start over.
            base_ticks = monotonic_ticks;
            base_monotonic_nanos = monotonic_nanos;
        } else if (span_nanos >= calibration_min_nanos) {
            rate = (uint64_t)(((unsigned __int128)span_nanos << 32) / (monotonic_ticks - base_ticks));
        }
        if (rate != 0) {
            __atomic_store_n(&shared->anchor_ticks, wall_ticks, __ATOMIC_RELAXED);
            __atomic_store_n(&shared->anchor_nanos, wall_nanos, __ATOMIC_RELAXED);
            __atomic_store_n(&shared->nanos_per_tick_q32, rate, __ATOMIC_RELAXED);
            __atomic_store_n(&shared->horizon_ticks, (horizon_nanos << 32) / rate, __ATOMIC_RELAXED);
            // ticks * rate >> 32 reaches a million nanoseconds from ceil(10^6 * 2^32 / rate) ticks on.
            __atomic_store_n(
                &shared->millisecond_ticks, ((1000000ULL << 32) + rate - 1) / rate, __ATOMIC_RELAXED);
            published = sequence + 2;
        }
    }
    __atomic_store_n(&shared->sequence, published, __ATOMIC_RELEASE);
    return wall_nanos;
}
