// The slow paths of CFliptHazard.h: claiming a record, giving it back at thread exit, and the writer's wait.

#define _GNU_SOURCE
#include "CFliptHazard.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

_Thread_local flipt_hazard_record *flipt_hazard_mine;
int flipt_hazard_asymmetric;

static flipt_hazard_record *head;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static int exit_key_ready;

static void give_back(void *value) {
    flipt_hazard_record *record = value;
    flipt_hazard_mine = NULL;
    __atomic_store_n(&record->pointer, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&record->owned, 0, __ATOMIC_RELEASE);
}

static void setup(void) {
    exit_key_ready = pthread_key_create(&exit_key, give_back) == 0;
#if defined(__linux__) && defined(__NR_membarrier)
    long commands = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0
        && syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
        flipt_hazard_asymmetric = 1;
    }
#endif
}

flipt_hazard_record *flipt_hazard_claim(void) {
    pthread_once(&setup_once, setup);
    // Without a key, a record could not be given back at thread exit: such threads read through the gate instead.
    if (!exit_key_ready) return NULL;
    flipt_hazard_record *record = NULL;
    for (flipt_hazard_record *each = __atomic_load_n(&head, __ATOMIC_ACQUIRE); each != NULL; each = each->next) {
        int free = 0;
        if (__atomic_load_n(&each->owned, __ATOMIC_RELAXED) == 0
            && __atomic_compare_exchange_n(&each->owned, &free, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            record = each;
            break;
        }
    }
    if (record == NULL) {
        // A cache line of its own, so that threads announcing never write a line another thread writes.
        if (posix_memalign((void **)&record, 64, 64) != 0) return NULL;
        record->pointer = NULL;
        record->owned = 1;
        record->next = __atomic_load_n(&head, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&head, &record->next, record, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        }
    }
    if (pthread_setspecific(exit_key, record) != 0) {
        __atomic_store_n(&record->owned, 0, __ATOMIC_RELEASE);
        return NULL;
    }
    flipt_hazard_mine = record;
    return record;
}

void flipt_hazard_wait_for_readers(const void *object) {
    pthread_once(&setup_once, setup);
#if defined(__linux__) && defined(__NR_membarrier)
    if (flipt_hazard_asymmetric) {
        // A full barrier on every running thread of the process; a thread not running passed one when it stopped.
        if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
            // Registration belongs to the address space: a child of fork(2) has to register again.
            if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0
                || syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
                // Readers rely on this barrier; freeing the object without it could free it under one of them.
                fputs("flipt: membarrier(2) failed after it was registered; stopping rather than risk a use after "
                      "free\n", stderr);
                abort();
            }
        }
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    for (flipt_hazard_record *each = __atomic_load_n(&head, __ATOMIC_ACQUIRE); each != NULL; each = each->next) {
        int spins = 0;
        while (__atomic_load_n(&each->pointer, __ATOMIC_ACQUIRE) == object) {
            // A reader holds the object for one evaluation: spin briefly, then give the processor away.
            if (++spins > 64) sched_yield();
        }
    }
}

size_t flipt_hazard_record_count(void) {
    size_t count = 0;
    for (flipt_hazard_record *each = __atomic_load_n(&head, __ATOMIC_ACQUIRE); each != NULL; each = each->next) {
        count += 1;
    }
    return count;
}
