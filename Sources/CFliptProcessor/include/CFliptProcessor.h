// The processor the calling thread runs on, for spreading per-processor counters (FastPathSlot's reader gate).

#ifndef CFLIPT_PROCESSOR_H
#define CFLIPT_PROCESSOR_H

#include <stddef.h>
#include "CFliptHazard.h"
#if defined(__linux__)
#include <features.h>  // defines __GLIBC__ and __GLIBC_MINOR__ under glibc
#endif

/// The number of the processor the calling thread is running on at the moment of the call (it may move right
/// after), or -1 where the system cannot tell. A call into the C library (sched_getcpu).
int flipt_current_processor_slow(void);

#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
// glibc 2.35 and later register each thread's restartable-sequences area with the kernel, which keeps the thread's
// processor number there; these two symbols locate it (sys/rseq.h declares them, behind _GNU_SOURCE).
extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

/// `flipt_current_processor_slow()` without the call, where glibc registered the area: a load from it.
static inline int flipt_current_processor(void) {
    if (__rseq_size != 0) {
        // struct rseq starts with cpu_id_start: a valid processor number whenever the area is registered.
        const char *area = (const char *)__builtin_thread_pointer() + __rseq_offset;
        return (int)__atomic_load_n((const unsigned int *)area, __ATOMIC_RELAXED);
    }
    return flipt_current_processor_slow();
}
#else
static inline int flipt_current_processor(void) { return flipt_current_processor_slow(); }
#endif

#endif
