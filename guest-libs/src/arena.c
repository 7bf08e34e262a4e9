/* Chain mode heap: per-thread arenas in the parent's address space.
 *
 * A chained thread runs on a copy of its parent's memory. If it used the
 * parent's allocator, every child's copy would change the same allocator
 * metadata, and merging them would corrupt the heap. So before the host
 * snapshots the parent for a new thread, it asks the parent (through the
 * export weft_chain_reserve_arena) to allocate an arena with its own
 * allocator; the child then allocates only from that arena. Blocks the
 * child allocates live in the parent's address space, so after the merge
 * they are valid in the parent, which may use and free them.
 *
 * - child malloc/calloc/realloc/aligned allocations: bump allocation in
 *   its arena (ENOMEM when the arena is full);
 * - child free of its own block: counted; of a block from elsewhere (the
 *   parent's heap): deferred, and done by the thread's exit path, which
 *   runs on the parent's memory after the merge;
 * - parent free of an arena block: counted in its arena; the arena itself
 *   goes back to the parent's allocator when its thread has ended and all
 *   its blocks are freed.
 * Outside chain mode (weft_chain_entry.arena is NULL) every call goes
 * straight to libc's allocator. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/threads.h>

#include "chain.h"

#define ARENA_MAGIC 0x57464152u /* "WFAR" */
#define BLOCK_MAGIC 0x57464231u
#define DEFERRED_MAX 256
#define MIN_ARENA (64u << 10)

void *__real_malloc(size_t);
void __real_free(void *);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void *__real_aligned_alloc(size_t, size_t);
int __real_posix_memalign(void **, size_t, size_t);
size_t malloc_usable_size(void *);

/* Size classes of freed blocks kept for reuse: 16 B << class, up to
 * 64 KiB; larger blocks are exact and not reused. */
#define CLASSES 13

struct block {
    uint32_t size;  /* usable bytes */
    uint32_t magic;
};

struct arena {
    uint32_t magic;
    uint32_t size;  /* bytes, header included */
    uint32_t used;  /* bump offset from the arena start */
    uint32_t live;  /* blocks not yet freed */
    uint32_t thread_done;
    uint32_t deferred_count;
    struct arena *next; /* registry of arenas with live blocks */
    void *free_lists[CLASSES]; /* freed blocks by size class, for reuse */
    void *deferred[DEFERRED_MAX];
};

/* The class whose blocks (16 << class bytes) hold `size` bytes. */
static int size_class(size_t size) {
    int c = 0;
    while (c < CLASSES - 1 && ((size_t)16 << c) < size) c++;
    return ((size_t)16 << c) >= size ? c : -1; /* -1: a large block */
}

/* Arenas whose blocks may still be in use, in this memory. */
static struct arena *arenas;

static _Thread_local struct arena *thread_arena;

static struct arena *current_arena(void) { return weft_chain_entry.arena; }

static int in_arena(const struct arena *a, const void *p) {
    uintptr_t at = (uintptr_t)p;
    return at >= (uintptr_t)a + sizeof *a && at < (uintptr_t)a + a->size;
}

static void lock_registry(void);
static void unlock_registry(void);

static struct arena *arena_of(const void *p) {
    if (!arenas) return NULL; /* the common case outside chain mode */
    lock_registry();
    struct arena *found = NULL;
    for (struct arena *a = arenas; a && !found; a = a->next)
        if (in_arena(a, p)) found = a;
    unlock_registry();
    return found;
}

static void *arena_alloc(struct arena *a, size_t size, size_t align) {
    if (align < 16) align = 16;
    if (size > a->size) goto full;
    /* Blocks are whole size classes, so a freed one can serve any later
     * request of its class. */
    int c = size_class(size ? size : 1);
    if (c >= 0) {
        size = (size_t)16 << c;
        void **head = &a->free_lists[c];
        if (*head && ((uintptr_t)*head & (align - 1)) == 0) {
            void *p = *head;
            *head = *(void **)p;
            a->live++;
            return p;
        }
    }
    uintptr_t base = (uintptr_t)a;
    uintptr_t start = base + a->used + sizeof(struct block);
    start = (start + align - 1) & ~(uintptr_t)(align - 1);
    if (start + size > base + a->size) goto full;
    struct block *b = (struct block *)(start - sizeof *b);
    b->size = (uint32_t)size;
    b->magic = BLOCK_MAGIC;
    a->used = (uint32_t)(start + size - base);
    a->live++;
    return (void *)start;
full:
    /* Natively this allocation would succeed; failing it would send the
     * program down paths it never takes. End it clearly instead. */
    weft_chain_unsupported(WEFT_SYNC_ARENA_FULL);
}

/* Frees a block of the thread's own arena: back to its class list. */
static void arena_free(struct arena *a, void *p) {
    if (a->live > 0) a->live--;
    int c = size_class(((struct block *)p - 1)->size);
    if (c >= 0 && ((size_t)16 << c) == ((struct block *)p - 1)->size) {
        *(void **)p = a->free_lists[c];
        a->free_lists[c] = p;
    }
}

static size_t block_size(const void *p) { return ((const struct block *)p - 1)->size; }

static void unlink_arena(struct arena *a) {
    for (struct arena **at = &arenas; *at; at = &(*at)->next) {
        if (*at == a) {
            *at = a->next;
            return;
        }
    }
}

/* Registry changes in a parent's memory can come from several threads
 * (the parent, and exit paths of its chained threads). */
static volatile int registry_lock;

static void lock_registry(void) {
    while (__atomic_exchange_n(&registry_lock, 1, __ATOMIC_ACQUIRE))
        __builtin_wasm_memory_atomic_wait32((int *)&registry_lock, 1, 1000000);
}

static void unlock_registry(void) {
    __atomic_store_n(&registry_lock, 0, __ATOMIC_RELEASE);
    __builtin_wasm_memory_atomic_notify((int *)&registry_lock, 1);
}

/* A block of `a` was freed outside its thread; the arena goes back to the
 * allocator when its thread has ended and no block is left. */
static void release_block(struct arena *a) {
    lock_registry();
    if (a->live > 0) a->live--;
    int empty = a->live == 0 && a->thread_done;
    if (empty) unlink_arena(a);
    unlock_registry();
    if (empty) free(a);
}

/* Called by the host in the parent, before snapshotting it for a new
 * thread: an arena of at most `size` bytes (less inside a chained thread,
 * whose own arena must also hold the new thread's stack). */
__attribute__((export_name("weft_chain_reserve_arena"))) void *weft_chain_reserve_arena(uint32_t size) {
    struct arena *own = current_arena();
    if (own) {
        uint32_t left = own->size - own->used;
        if (size > left / 4) size = left / 4;
    }
    if (size < MIN_ARENA) return NULL;
    struct arena *a = malloc(size);
    if (!a) return NULL;
    memset(a, 0, sizeof *a);
    a->magic = ARENA_MAGIC;
    a->size = size;
    a->used = sizeof *a;
    lock_registry();
    a->next = arenas;
    arenas = a;
    unlock_registry();
    return a;
}

void weft_chain_thread_started(void) { thread_arena = current_arena(); }

/* The exit path of a chained thread, on its parent's memory: the frees the
 * thread deferred, and its arena is released once nothing uses it. */
void weft_chain_thread_exiting(void) {
    struct arena *a = thread_arena;
    if (!a || a->magic != ARENA_MAGIC) return;
    thread_arena = NULL;
    for (uint32_t i = 0; i < a->deferred_count && i < DEFERRED_MAX; i++) free(a->deferred[i]);
    a->deferred_count = 0;
    lock_registry();
    a->thread_done = 1;
    int empty = a->live == 0;
    if (empty) unlink_arena(a);
    unlock_registry();
    if (empty) free(a);
}

void *__wrap_malloc(size_t size) {
    struct arena *a = current_arena();
    return a ? arena_alloc(a, size, 16) : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
    struct arena *a = current_arena();
    if (!a) return __real_calloc(n, size);
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = arena_alloc(a, n * size, 16);
    /* A fresh arena is not necessarily zero: it came from malloc. */
    if (p) memset(p, 0, n * size);
    return p;
}

void __wrap_free(void *p) {
    if (!p) return;
    struct arena *own = current_arena();
    if (own && in_arena(own, p)) {
        arena_free(own, p);
        return;
    }
    if (own) {
        /* Someone else's block: free it on the parent's memory, at exit. */
        if (own->deferred_count < DEFERRED_MAX) own->deferred[own->deferred_count++] = p;
        return;
    }
    struct arena *a = arena_of(p);
    if (a) {
        release_block(a);
        return;
    }
    __real_free(p);
}

void *__wrap_realloc(void *p, size_t size) {
    if (!p) return malloc(size);
    struct arena *own = current_arena();
    struct arena *home = own && in_arena(own, p) ? own : arena_of(p);
    if (!own && !home) return __real_realloc(p, size);
    size_t old = home ? block_size(p) : malloc_usable_size(p);
    if (home == own && size <= old) return p;
    void *q = malloc(size);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    struct arena *a = current_arena();
    if (!a) return __real_aligned_alloc(align, size);
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return arena_alloc(a, size, align);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    struct arena *a = current_arena();
    if (!a) return __real_posix_memalign(out, align, size);
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = arena_alloc(a, size, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
