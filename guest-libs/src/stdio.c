/* Chain mode stdio: each FILE's lock is kept by the home host.
 *
 * POSIX makes every stdio call lock its FILE; musl takes that lock in
 * __lockfile/__unlockfile (and flockfile, ftrylockfile, funlockfile), and
 * inline in fputc, putc, putchar, fgetc, getc and getchar. In chain mode
 * each thread runs on its own copy of memory, so libc's lock word would be
 * taken in every copy at once and two threads printing would change the
 * same FILE fields and buffer bytes: a merge conflict. weft-cc wraps those
 * calls: in chain mode the lock is a home lock named by the FILE's
 * address, so taking it is an acquire (the thread's copy takes the FILE's
 * buffer and positions as the last holder left them) and giving it back a
 * release (its writes go home), as for a mutex. Outside chain mode every
 * call is libc's own.
 *
 * Which FILEs a thread holds, and how often (flockfile nests), is kept per
 * thread here, not in the FILE: the FILE's lock word then never changes
 * in a copy, so it is never part of a diff. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/threads.h>

#include "chain.h"

int __real___lockfile(FILE *);
void __real___unlockfile(FILE *);
void __real_flockfile(FILE *);
int __real_ftrylockfile(FILE *);
void __real_funlockfile(FILE *);
int __real_fputc(int, FILE *);
int __real_putc(int, FILE *);
int __real_putchar(int);
int __real_fgetc(FILE *);
int __real_getc(FILE *);
int __real_getchar(void);

/* More FILEs held at once by one thread than any program needs. */
#define MAX_HELD 16

struct held {
    FILE *file;
    long depth; /* flockfile nesting; 0: held by one stdio call only */
};

static _Thread_local struct held held[MAX_HELD];
static _Thread_local int held_count;

static struct held *holding(FILE *f) {
    for (int i = 0; i < held_count; i++)
        if (held[i].file == f) return &held[i];
    return NULL;
}

/* Takes the home lock of `f` (or only tries to); the new entry, or NULL
 * when it was not taken (a try found it busy). */
static struct held *take(FILE *f, int try_only) {
    if (held_count == MAX_HELD) {
        static const char msg[] = "weft: a thread holds more than 16 FILE locks at once\n";
        write(2, msg, sizeof msg - 1);
        abort();
    }
    if (weft_home_lock(f, WEFT_SYNC_FILE | (try_only ? WEFT_SYNC_TRY : 0), -1)) return NULL;
    held[held_count] = (struct held){f, 0};
    return &held[held_count++];
}

static void give_back(struct held *h) {
    FILE *f = h->file;
    *h = held[--held_count];
    weft_home_unlock(f, WEFT_SYNC_FILE);
}

/* Chain mode, except in a chained thread's exit path (TSD destructors
 * that print), which runs on its parent's memory, not on a copy, where
 * libc's own lock word works; and in a thread started by a chained
 * thread, which shares no sync points with others (its writes reach its
 * creator when it ends). */
static int home_locks(void) {
    return weft_chain_mode() && !weft_in_exit_path && !weft_nested_thread;
}

/* The wrappers below share these helpers, and each calls only its own
 * __real_ function: a wrapper that calls another wrapped symbol's
 * __wrap_ or __real_ function crashes wasm-ld 19 under --emit-relocs. */

/* libc's FLOCK: 1 when the caller must unlock, 0 when it already held. */
static int lock_file(FILE *f) {
    if (holding(f)) return 0;
    return take(f, 0) != NULL;
}

static void unlock_file(FILE *f) {
    struct held *h = holding(f);
    if (h) give_back(h);
}

static int locked_putc(int c, FILE *f) {
    int unlock = lock_file(f);
    c = putc_unlocked(c, f);
    if (unlock) unlock_file(f);
    return c;
}

static int locked_getc(FILE *f) {
    int unlock = lock_file(f);
    int c = getc_unlocked(f);
    if (unlock) unlock_file(f);
    return c;
}

int __wrap___lockfile(FILE *f) {
    if (!home_locks()) return __real___lockfile(f);
    return lock_file(f);
}

void __wrap___unlockfile(FILE *f) {
    if (!home_locks()) __real___unlockfile(f);
    else unlock_file(f);
}

void __wrap_flockfile(FILE *f) {
    if (!home_locks()) {
        __real_flockfile(f);
        return;
    }
    struct held *h = holding(f);
    if (h || (h = take(f, 0))) h->depth++;
}

int __wrap_ftrylockfile(FILE *f) {
    if (!home_locks()) return __real_ftrylockfile(f);
    struct held *h = holding(f);
    if (!h && !(h = take(f, 1))) return -1;
    h->depth++;
    return 0;
}

void __wrap_funlockfile(FILE *f) {
    if (!home_locks()) {
        __real_funlockfile(f);
        return;
    }
    struct held *h = holding(f);
    if (h && --h->depth <= 0) give_back(h);
}

/* The calls libc locks inline (its fast path never reaches __lockfile). */
int __wrap_fputc(int c, FILE *f) {
    if (!home_locks()) return __real_fputc(c, f);
    return locked_putc(c, f);
}

int __wrap_putc(int c, FILE *f) {
    if (!home_locks()) return __real_putc(c, f);
    return locked_putc(c, f);
}

int __wrap_putchar(int c) {
    if (!home_locks()) return __real_putchar(c);
    return locked_putc(c, stdout);
}

int __wrap_fgetc(FILE *f) {
    if (!home_locks()) return __real_fgetc(f);
    return locked_getc(f);
}

int __wrap_getc(FILE *f) {
    if (!home_locks()) return __real_getc(f);
    return locked_getc(f);
}

int __wrap_getchar(void) {
    if (!home_locks()) return __real_getchar();
    return locked_getc(stdin);
}
