// Hazard announcements for FastPathSlot's readers: each thread owns one record in which it names the object it is
// reading, so that a read costs plain stores and loads instead of atomic read-modify-write operations, and a writer
// frees a replaced object only once no record names it.
//
// The reader stores its announcement and then loads the published pointer again; the writer swaps the published
// pointer and then reads every record. One of the two must see the other's write (Dekker), which takes a full
// barrier between each side's store and load. Where Linux's membarrier(2) offers its private expedited command, the
// writer's call to it is a full barrier on every thread of the process at once, and the reader needs only a
// compiler barrier (an asymmetric fence, as in liburcu and folly). Elsewhere each reader issues a full fence.
//
// Registering for that command takes an RCU grace period in a process with several threads (13-15 ms here), so a
// thread of its own does it on first use, and readers fence until it is done; the mode then changes once, from
// fencing to asymmetric. A reader reads the mode (sequentially consistent) after its announcement and before it
// loads the published pointer again; the writer reads it after its swap and a full fence. If the reader saw the
// asymmetric mode and the writer did not, the mode changed after the writer's swap was visible, so the reader's
// second load sees the new pointer and it retries: the old object is never used unannounced.

#ifndef CFLIPT_HAZARD_H
#define CFLIPT_HAZARD_H

#include <stddef.h>

/// One thread's announcement; records are never freed, and a record whose thread has exited is reused.
typedef struct flipt_hazard_record {
    /// The object the owning thread is reading, or NULL. Written only by the owner.
    void *pointer;
    /// The next record in the process-wide list.
    struct flipt_hazard_record *next;
    /// 1 while a thread owns the record.
    int owned;
} flipt_hazard_record;

/// The calling thread's record, or NULL before `flipt_hazard_claim` has run on this thread.
extern _Thread_local flipt_hazard_record *flipt_hazard_mine;

/// 1 when readers may use a compiler barrier (the writer's membarrier(2) fences them); 0 when they fence. Changes
/// at most once, from 0 to 1.
extern int flipt_hazard_asymmetric;

/// Claims a record for the calling thread (a free one, or a new one) and returns it; NULL when no memory could be
/// allocated. It is given back when the thread exits.
flipt_hazard_record *flipt_hazard_claim(void);

/// Waits until no record names `object`, after making every announcement made so far visible. Call it after the
/// published pointer no longer names `object` (with a sequentially consistent swap).
void flipt_hazard_wait_for_readers(const void *object);

/// How readers are fenced, for tests: 0 each reader fences (no membarrier(2), or not set up yet), 1 membarrier(2) is
/// being registered (readers fence meanwhile), 2 asymmetric.
int flipt_hazard_mode(void);

/// Whether this system offers membarrier(2)'s private expedited command, for tests.
int flipt_hazard_membarrier_available(void);

/// The number of records in the list (owned or free), for tests.
size_t flipt_hazard_record_count(void);

/// The calling thread's record when it is not announcing anything (a read not nested in another), else NULL.
static inline flipt_hazard_record *flipt_hazard_free_record(void) {
    flipt_hazard_record *record = flipt_hazard_mine;
    if (__builtin_expect(record == NULL, 0)) record = flipt_hazard_claim();
    if (record == NULL || __atomic_load_n(&record->pointer, __ATOMIC_RELAXED) != NULL) return NULL;
    return record;
}

/// Announces `object`, ordered before the caller's next loads (see the top of this file), which loads the published
/// pointer again with sequentially consistent ordering.
static inline void flipt_hazard_announce(flipt_hazard_record *record, void *object) {
    __atomic_store_n(&record->pointer, object, __ATOMIC_RELAXED);
    if (__builtin_expect(__atomic_load_n(&flipt_hazard_asymmetric, __ATOMIC_SEQ_CST), 1)) {
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
}

/// Ends the read: everything the reader did with the object happens before a writer sees the record clear.
static inline void flipt_hazard_clear(flipt_hazard_record *record) {
    __atomic_store_n(&record->pointer, NULL, __ATOMIC_RELEASE);
}

#endif
