#include "CFliptHeap.h"

#if defined(__GLIBC__)
#include <malloc.h>
#elif defined(__APPLE__)
#include <malloc/malloc.h>
#endif

flipt_heap_usage flipt_heap_current(void) {
    flipt_heap_usage usage = {0, 0, 0};
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    usage.in_use = (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
    usage.obtained = (uint64_t)info.arena + (uint64_t)info.hblkhd;
    usage.available = 1;
#elif defined(__APPLE__)
    malloc_statistics_t statistics;
    malloc_zone_statistics(NULL, &statistics);
    usage.in_use = (uint64_t)statistics.size_in_use;
    usage.obtained = (uint64_t)statistics.size_allocated;
    usage.available = 1;
#endif
    return usage;
}

void flipt_heap_trim(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
