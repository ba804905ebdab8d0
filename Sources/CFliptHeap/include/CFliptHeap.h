// The allocator's own account of this process's heap, for the soak test's leak check (flipt-bench soak-client)
// and the memory figures of flipt-bench load; and a trim of what it keeps free, for the client after it drops a
// large document (HeldDocument).
//
// Resident memory (VmRSS) mixes what the program holds with what the allocator keeps for reuse: glibc gives each
// thread that contends for the heap an arena of its own (up to eight per core), and memory freed in an arena
// stays mapped there. A client that allocates nothing for good can therefore grow in RSS for a while as more
// arenas come into use, and level off later. The bytes handed out and not yet freed grow only when something is
// held on to: that is what a leak is.

#ifndef CFLIPT_HEAP_H
#define CFLIPT_HEAP_H

#include <stdint.h>

/// What the allocator reports for the whole process (every arena), in bytes.
typedef struct {
    /// Handed out by malloc and not yet freed (small blocks in arenas plus large blocks mapped on their own).
    uint64_t in_use;
    /// Taken from the system: arenas' sizes plus the large mapped blocks (in use or kept free).
    uint64_t obtained;
    /// Whether the figures are real (false where the allocator cannot tell, and both are 0).
    int available;
} flipt_heap_usage;

/// Reads the allocator's figures (mallinfo2 on glibc, the default zone's statistics on Darwin).
flipt_heap_usage flipt_heap_current(void);

/// Returns the free pages the allocator keeps, in every arena, to the system (malloc_trim(0) on glibc, where
/// freed blocks inside the heap otherwise stay resident; nothing elsewhere). Walks the arenas: not for hot paths.
void flipt_heap_trim(void);

#endif
