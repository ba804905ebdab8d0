// The wall clock as evaluations read it: twice per evaluation (the result's timestamp and its duration), so
// cheaply.
//
// clock_gettime(CLOCK_REALTIME) costs ~28 ns on a typical x86 VM (the vDSO serializes its counter read); an
// evaluation costs ~200 ns. Here the counter is read directly (rdtsc, or the ARM generic timer) and converted to
// wall time from an anchor: a (counter, clock_gettime) pair taken at most a millisecond ago, with the counter's
// rate measured against CLOCK_MONOTONIC. A reading is therefore never further from the system clock than the
// rate's error over one millisecond (nanoseconds), and a step of the system clock shows within a millisecond.
//
// The counter is used only where it is a clock: on x86-64 Linux when the CPU reports an invariant TSC (constant
// rate in every power state), on ARM64 Linux (the generic timer is architected); elsewhere every reading is
// clock_gettime. No file or system call is involved beyond clock_gettime itself.
// The anchor is published under a sequence lock: readers never block, and a reader that races a writer falls
// back to clock_gettime for that reading.

#ifndef CFLIPT_CLOCK_H
#define CFLIPT_CLOCK_H

#include <stdint.h>

/// The published anchor. Written only by `flipt_clock_read_slow` (one writer at a time, under `sequence`).
typedef struct {
    /// Even when stable, odd while being written; 0 until the counter's rate is known.
    uint64_t sequence;
    /// Counter value at the anchor.
    uint64_t anchor_ticks;
    /// Wall clock at the anchor: nanoseconds since 1970-01-01T00:00:00Z.
    int64_t anchor_nanos;
    /// Nanoseconds per counter tick, in 32.32 fixed point.
    uint64_t nanos_per_tick_q32;
    /// Ticks after the anchor within which it is used (one millisecond's worth).
    uint64_t horizon_ticks;
    /// The fewest ticks that convert to a millisecond or more at `nanos_per_tick_q32`.
    uint64_t millisecond_ticks;
} flipt_clock_anchor;

extern flipt_clock_anchor flipt_clock_shared_anchor;

/// A reading through clock_gettime; re-anchors when it can. Sets `*ticks` to 0 (no counter reading).
int64_t flipt_clock_read_slow(uint64_t *ticks);

/// clock_gettime(CLOCK_REALTIME) in nanoseconds since 1970.
int64_t flipt_clock_system_nanos(void);

/// Whether readings come from the counter (after calibration) on this machine: 1 or 0.
int flipt_clock_uses_counter(void);

/// The raw counter, or 0 where it is not read.
static inline uint64_t flipt_clock_ticks(void) {
#if defined(__linux__) && defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__linux__) && defined(__aarch64__)
    uint64_t value;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(value));
    return value;
#else
    return 0;
#endif
}

/// `ticks` counter ticks in nanoseconds at `rate` (nanoseconds per tick in 32.32 fixed point).
static inline uint64_t flipt_clock_ticks_as_nanos(uint64_t ticks, uint64_t rate) {
    return (uint64_t)(((unsigned __int128)ticks * rate) >> 32);
}

/// The published counter rate, nanoseconds per tick in 32.32 fixed point; 0 until it is known.
static inline uint64_t flipt_clock_rate_q32(void) {
    return __atomic_load_n(&flipt_clock_shared_anchor.nanos_per_tick_q32, __ATOMIC_RELAXED);
}

/// The published count of ticks from which an elapsed time reads a millisecond or more; 0 until it is known.
static inline uint64_t flipt_clock_millisecond_ticks(void) {
    return __atomic_load_n(&flipt_clock_shared_anchor.millisecond_ticks, __ATOMIC_RELAXED);
}

/// The wall clock in nanoseconds since 1970; `*ticks` receives the counter value it was derived from, or 0 when
/// it came from clock_gettime (then `flipt_clock_elapsed_nanos` reads clock_gettime too).
static inline int64_t flipt_clock_read(uint64_t *ticks) {
    uint64_t sequence = __atomic_load_n(&flipt_clock_shared_anchor.sequence, __ATOMIC_ACQUIRE);
    uint64_t now = flipt_clock_ticks();
    uint64_t anchor_ticks = __atomic_load_n(&flipt_clock_shared_anchor.anchor_ticks, __ATOMIC_RELAXED);
    int64_t anchor_nanos = __atomic_load_n(&flipt_clock_shared_anchor.anchor_nanos, __ATOMIC_RELAXED);
    uint64_t rate = flipt_clock_rate_q32();
    uint64_t horizon = __atomic_load_n(&flipt_clock_shared_anchor.horizon_ticks, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t since = now - anchor_ticks;  // wraps to a huge value when the counter is behind the anchor
    if (sequence != 0 && (sequence & 1) == 0 && since < horizon
        && __atomic_load_n(&flipt_clock_shared_anchor.sequence, __ATOMIC_RELAXED) == sequence) {
        *ticks = now;
        return anchor_nanos + (int64_t)flipt_clock_ticks_as_nanos(since, rate);
    }
    return flipt_clock_read_slow(ticks);
}

/// Nanoseconds since a reading `(start_nanos, start_ticks)` of `flipt_clock_read`; never negative.
static inline int64_t flipt_clock_elapsed_nanos(int64_t start_nanos, uint64_t start_ticks) {
    if (start_ticks == 0) {
        int64_t elapsed = flipt_clock_system_nanos() - start_nanos;
        return elapsed > 0 ? elapsed : 0;
    }
    uint64_t now = flipt_clock_ticks();
    if (now <= start_ticks) return 0;
    uint64_t rate = flipt_clock_rate_q32();
    unsigned __int128 elapsed = ((unsigned __int128)(now - start_ticks) * rate) >> 32;
    return elapsed > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)elapsed;
}

/// Whole milliseconds since a reading `(start_nanos, start_ticks)` of `flipt_clock_read`; never negative.
///
/// Nearly every evaluation takes well under a millisecond, and then a comparison of counter values says so: no
/// conversion to nanoseconds. That conversion on every evaluation (a 128-bit multiplication and a division by a
/// million, feeding the result) made an evaluation of `flipt-bench`'s issue18-40 shape take 144-146 ns instead of
/// 115-116 ns, side by side in one run on this project's x86-64 VM.
static inline int64_t flipt_clock_elapsed_millis(int64_t start_nanos, uint64_t start_ticks) {
    if (start_ticks != 0) {
        uint64_t millisecond = flipt_clock_millisecond_ticks();
        // A counter behind the start wraps to a huge difference and takes the exact path, which answers 0.
        if (flipt_clock_ticks() - start_ticks < millisecond) return 0;
    }
    return flipt_clock_elapsed_nanos(start_nanos, start_ticks) / 1000000;
}

#endif
