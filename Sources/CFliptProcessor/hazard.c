// The slow paths of CFliptHazard.h: claiming a record, giving it back at thread exit, and the writer's wait.

#define _GNU_SOURCE
#include "CFliptHazard.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
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

#if defined(__linux__) && defined(__NR_membarrier)
/// 1 while the registration thread runs, so that `flipt_hazard_mode` can tell "registering" from "fencing".
static int registering;

/// Registers the process for membarrier(2)'s private expedited command, then lets readers stop fencing.
static void *register_for_barriers(void *unused) {
    (void)unused;
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
        __atomic_store_n(&flipt_hazard_asymmetric, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&registering, 0, __ATOMIC_RELEASE);
    return NULL;
}
#endif

static void setup(void) {
    exit_key_ready = pthread_key_create(&exit_key, give_back) == 0;
#if defined(__linux__) && defined(__NR_membarrier)
    if (flipt_hazard_membarrier_available()) {
        // Registering waits for an RCU grace period when the process has more than one thread (13-15 ms on a
        // 2-core VM, measured with a C program: 4 µs with one thread), and the first read of a booting client
        // comes here. So a thread of its own registers, and until it is done readers fence as where there is no
        // membarrier. It blocks every signal, so that none meant for the application is delivered to it.
        pthread_attr_t attributes;
        sigset_t all, previous;
        sigfillset(&all);
        if (pthread_attr_init(&attributes) == 0) {
            pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
            pthread_t thread;
            __atomic_store_n(&registering, 1, __ATOMIC_RELAXED);
            pthread_sigmask(SIG_SETMASK, &all, &previous);
            if (pthread_create(&thread, &attributes, register_for_barriers, NULL) != 0) {
                __atomic_store_n(&registering, 0, __ATOMIC_RELAXED);
            }
            pthread_sigmask(SIG_SETMASK, &previous, NULL);
            pthread_attr_destroy(&attributes);
        }
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
    // The mode is read after a full fence, that is after the caller's swap of the published pointer. A reader that
    // saw the asymmetric mode while this saw the old one read the mode after the swap was visible, so its next load
    // of the published pointer sees the new one and it does not keep the old (see CFliptHazard.h).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#if defined(__linux__) && defined(__NR_membarrier)
    if (__atomic_load_n(&flipt_hazard_asymmetric, __ATOMIC_SEQ_CST)) {
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
    }
#endif
    for (flipt_hazard_record *each = __atomic_load_n(&head, __ATOMIC_ACQUIRE); each != NULL; each = each->next) {
        int spins = 0;
        while (__atomic_load_n(&each->pointer, __ATOMIC_ACQUIRE) == object) {
            // A reader holds the object for one evaluation: spin briefly, then give the processor away.
            if (++spins > 64) sched_yield();
        }
    }
}

int flipt_hazard_membarrier_available(void) {
#if defined(__linux__) && defined(__NR_membarrier)
    long commands = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0;
#else
    return 0;
#endif
}

int flipt_hazard_mode(void) {
    if (__atomic_load_n(&flipt_hazard_asymmetric, __ATOMIC_SEQ_CST)) return 2;
#if defined(__linux__) && defined(__NR_membarrier)
    if (__atomic_load_n(&registering, __ATOMIC_ACQUIRE)) return 1;
#endif
    return 0;
}

size_t flipt_hazard_record_count(void) {
    size_t count = 0;
    for (flipt_hazard_record *each = __atomic_load_n(&head, __ATOMIC_ACQUIRE); each != NULL; each = each->next) {
        count += 1;
    }
    return count;
}
