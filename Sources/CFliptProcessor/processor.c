// sched_getcpu(3) is a GNU extension: its declaration needs _GNU_SOURCE, which Swift's Glibc module is built
// without. glibc 2.35 and later answer it from the restartable-sequences area the kernel keeps up to date for each
// thread, with no system call.

#define _GNU_SOURCE
#include "CFliptProcessor.h"

#if defined(__linux__)
#include <sched.h>
#endif

int flipt_current_processor_slow(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}
