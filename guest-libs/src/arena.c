/* Chain mode heap: per-thread arenas in address ranges the host hands out.
 *
 * A chained thread runs on a copy of its parent's memory. If it used the
 * parent's allocator, every child's copy would change the same allocator
 * metadata, and merging them would corrupt the heap. So each chained thread
 * allocates only from its own arena: chunks of address space that the host
 * hands out from a zone no allocator uses (weft:threads arena-grow). The
 * host keeps each chunk zero in every copy of memory that leads from the
 * thread to the main memory, so the thread's writes merge back like any
 * other writes, and blocks it hands back are valid in its parent.
 *
 * - a chained thread's malloc family: a boundary-tag allocator with
 *   coalescing over its arena's chunks; a full arena asks the host for
 *   another chunk (ENOMEM only when the memory is exhausted);
 * - a chained thread's free of its own block: back to its arena; of a block
 *   from elsewhere: deferred to the thread's exit path, which runs on the
 *   parent's memory after the merge;
 * - free of an arena block outside any arena (the main thread): counted
 *   in its arena, which goes back to the host when its thread has ended and
 *   all its blocks are freed.
 * Outside chain mode every call goes straight to libc's allocator. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/threads.h>

#include "chain.h"

#define ARENA_MAGIC 0x57464152u /* "WFAR" */
#define CHUNK_GRAIN (64u << 10) /* the host hands out whole wasm pages */
#define MIN_GROWTH (1u << 20)
#define MAX_REQUEST 0x7fff0000u

void *__real_malloc(size_t);
void __real_free(void *);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void *__real_aligned_alloc(size_t, size_t);
int __real_posix_memalign(void **, size_t, size_t);
size_t malloc_usable_size(void *);

/* A block: an 8-byte header, then the payload (16-aligned). Sizes are
 * multiples of 16 and include the header. A free block also holds its bin
 * links; `prev_size` is valid only when the previous block is free. */
#define HEADER 8u
#define MIN_BLOCK 16u
#define FREE 1u
#define PREV_FREE 2u
#define FLAGS 15u
#define BINS 32

struct block {
    uint32_t prev_size;
    uint32_t size_flags;
    struct block *next; /* free blocks only */
    struct block *prev;
};

/* A chunk the arena grew by; the arena's first chunk holds the arena. */
struct chunk {
    uint32_t size;
    struct chunk *next;
};

struct arena {
    uint32_t magic;
    volatile int lock;
    uint32_t size;    /* bytes of the first chunk */
    uint32_t grown;   /* bytes of the later chunks */
    /* Blocks not yet freed: allocated less freed by the thread itself,
     * which writes `live` in its copy, less `freed_elsewhere`, which only
     * other threads write, in their memories. Two counters, so a block
     * freed by the main thread while the arena's thread still runs is not
     * a write to the same bytes from two copies (a merge conflict). */
    uint32_t live;
    uint32_t freed_elsewhere;
    uint32_t thread_done;
    struct chunk *chunks;
    void *deferred;   /* foreign blocks to free on the parent's memory */
    struct arena *retired;      /* ended arenas to give back (see retire) */
    struct arena *next_retired;
    uint32_t nonempty; /* bit b: bins[b] has blocks */
    struct block *bins[BINS]; /* free blocks of size [2^b, 2^(b+1)) */
};

static uint32_t size_of(const struct block *b) { return b->size_flags & ~FLAGS; }
static struct block *next_block(struct block *b) { return (struct block *)((char *)b + size_of(b)); }
static struct block *block_of(void *p) { return (struct block *)((char *)p - HEADER); }
static void *payload(struct block *b) { return (char *)b + HEADER; }
static int bin_of(uint32_t size) { return 31 - __builtin_clz(size); }

static void lock(struct arena *a) {
    while (__atomic_exchange_n(&a->lock, 1, __ATOMIC_ACQUIRE))
        __builtin_wasm_memory_atomic_wait32((int *)&a->lock, 1, 1000000);
}

static void unlock(struct arena *a) {
    __atomic_store_n(&a->lock, 0, __ATOMIC_RELEASE);
    __builtin_wasm_memory_atomic_notify((int *)&a->lock, 1);
}

static void bin_insert(struct arena *a, struct block *b) {
    int bin = bin_of(size_of(b));
    b->prev = NULL;
    b->next = a->bins[bin];
    if (b->next) b->next->prev = b;
    a->bins[bin] = b;
    a->nonempty |= 1u << bin;
}

static void bin_remove(struct arena *a, struct block *b) {
    int bin = bin_of(size_of(b));
    if (b->prev) b->prev->next = b->next;
    else a->bins[bin] = b->next;
    if (b->next) b->next->prev = b->prev;
    if (!a->bins[bin]) a->nonempty &= ~(1u << bin);
}

/* Marks `b` (whose header holds its size and PREV_FREE bit) free, joins it
 * with free neighbours and files it. */
static void release(struct arena *a, struct block *b) {
    uint32_t size = size_of(b);
    struct block *next = next_block(b);
    if (next->size_flags & FREE) {
        bin_remove(a, next);
        size += size_of(next);
    }
    if (b->size_flags & PREV_FREE) {
        struct block *prev = (struct block *)((char *)b - b->prev_size);
        bin_remove(a, prev);
        size += size_of(prev);
        b = prev;
    }
    b->size_flags = size | FREE; /* the block before a free one is in use */
    next = next_block(b);
    next->prev_size = size;
    next->size_flags |= PREV_FREE;
    bin_insert(a, b);
}

/* Gives back the tail of in-use block `b` beyond `need` bytes. */
static void shrink(struct arena *a, struct block *b, uint32_t need) {
    uint32_t size = size_of(b);
    if (size - need < MIN_BLOCK) return;
    struct block *rest = (struct block *)((char *)b + need);
    rest->size_flags = size - need;
    b->size_flags = need | (b->size_flags & PREV_FREE);
    release(a, rest);
}

/* Makes [start, end) a pool of one free block and an end marker. */
static void add_pool(struct arena *a, uintptr_t start, uintptr_t end) {
    uintptr_t first = ((start + HEADER + 15) & ~(uintptr_t)15) - HEADER;
    uintptr_t last = ((end - 2 * HEADER) & ~(uintptr_t)15) + HEADER;
    if (last <= first || last - first < MIN_BLOCK) return;
    struct block *b = (struct block *)first;
    struct block *marker = (struct block *)last;
    marker->size_flags = 0; /* size 0, in use: never joined */
    b->size_flags = (uint32_t)(last - first);
    release(a, b);
}

/* A free block of at least `need` bytes, taken out of its bin. */
static struct block *find(struct arena *a, uint32_t need) {
    int bin = bin_of(need);
    int looked = 0;
    for (struct block *b = a->bins[bin]; b && looked < 32; b = b->next, looked++) {
        if (size_of(b) >= need) {
            bin_remove(a, b);
            return b;
        }
    }
    /* Every block of a higher bin is large enough. */
    uint32_t higher = bin + 1 < BINS ? a->nonempty & ~((2u << bin) - 1) : 0;
    if (!higher) return NULL;
    struct block *b = a->bins[__builtin_ctz(higher)];
    bin_remove(a, b);
    return b;
}

/* Adds a chunk from the host that holds at least `need` bytes in blocks. */
static int grow(struct arena *a, uint32_t need) {
    uint64_t want = (uint64_t)need + sizeof(struct chunk) + 64;
    uint32_t total = a->size + a->grown;
    if (want < MIN_GROWTH) want = MIN_GROWTH;
    if (want < total / 2) want = total / 2; /* geometric growth, few chunks */
    want = (want + CHUNK_GRAIN - 1) & ~(uint64_t)(CHUNK_GRAIN - 1);
    if (want > MAX_REQUEST) return 0;
    struct chunk *c = (struct chunk *)(uintptr_t)weft_arena_grow((uint32_t)want);
    if (!c) return 0;
    c->size = (uint32_t)want;
    c->next = a->chunks;
    a->chunks = c;
    a->grown += (uint32_t)want;
    add_pool(a, (uintptr_t)(c + 1), (uintptr_t)c + c->size);
    return 1;
}

/* A block for `size` payload bytes aligned to `align`, or NULL (ENOMEM). */
static void *arena_alloc(struct arena *a, size_t size, size_t align) {
    if (size > MAX_REQUEST || align > (1u << 20)) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t need = ((uint32_t)size + HEADER + 15) & ~15u;
    if (need < MIN_BLOCK) need = MIN_BLOCK;
    /* Room to move the payload up to the alignment and leave a whole free
     * block in front of it. */
    uint32_t search = align > 16 ? need + (uint32_t)align + MIN_BLOCK : need;
    lock(a);
    struct block *b = find(a, search);
    if (!b && grow(a, search)) b = find(a, search);
    if (!b) {
        unlock(a);
        errno = ENOMEM;
        return NULL;
    }
    b->size_flags &= ~FREE;
    next_block(b)->size_flags &= ~PREV_FREE;
    if (align > 16) {
        uintptr_t p = (uintptr_t)payload(b);
        uintptr_t q = (p + align - 1) & ~(uintptr_t)(align - 1);
        if (q != p && q - p < MIN_BLOCK) q += align;
        uint32_t lead = (uint32_t)(q - p);
        if (lead) {
            struct block *moved = block_of((void *)q);
            moved->size_flags = size_of(b) - lead;
            b->size_flags = lead | (b->size_flags & PREV_FREE);
            release(a, b); /* sets moved's PREV_FREE */
            b = moved;
        }
    }
    shrink(a, b, need);
    a->live++;
    unlock(a);
    return payload(b);
}

static int in_arena(const struct arena *a, const void *p) {
    uintptr_t at = (uintptr_t)p;
    if (at > (uintptr_t)a && at < (uintptr_t)a + a->size) return 1;
    for (const struct chunk *c = a->chunks; c; c = c->next)
        if (at > (uintptr_t)c && at < (uintptr_t)c + c->size) return 1;
    return 0;
}

static void arena_free(struct arena *a, void *p) {
    lock(a);
    if (a->live > 0) a->live--;
    struct block *b = block_of(p);
    b->size_flags &= ~FREE; /* the PREV_FREE bit stays */
    release(a, b);
    unlock(a);
}

static uint32_t usable(void *p) { return size_of(block_of(p)) - HEADER; }

/* Set by the host in the main memory before it hands out the first arena,
 * so frees outside chain mode never ask the host. */
__attribute__((used)) volatile int weft_chain_heap_active;

/* The arena of heap block `p` when the caller has no arena of its own. */
static struct arena *arena_of(const void *p) {
    if (!weft_chain_heap_active) return NULL;
    return (struct arena *)(uintptr_t)weft_arena_lookup((uint32_t)(uintptr_t)p);
}

static struct arena *current_arena(void) { return weft_chain_entry.arena; }

/* libc's allocator on the main memory takes memory in steps it expects to
 * be adjacent (two sbrk calls in a row, or sbrk then sbrk(0)), and the
 * host grows the same memory for arena chunks. So in chain mode libc's
 * allocator runs under this lock, and the host grows the memory for the
 * zone only while it holds it too: a chunk grown between the two steps
 * would otherwise lie inside libc's heap, and both would hand it out. */
__attribute__((used)) volatile int weft_heap_grow_lock;

/* Whether the lock was taken (outside chain mode there is no zone). The
 * word is 0 free, 1 held, 2 held with waiters (only then does an unlock
 * wake anyone); the host takes and gives it back the same way. */
static int heap_lock(void) {
    if (!weft_chain_heap_active) return 0;
    int seen = 0;
    if (__atomic_compare_exchange_n(&weft_heap_grow_lock, &seen, 1, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
        return 1;
    while (__atomic_exchange_n(&weft_heap_grow_lock, 2, __ATOMIC_ACQUIRE) != 0)
        __builtin_wasm_memory_atomic_wait32((int *)&weft_heap_grow_lock, 2, 1000000);
    return 1;
}

static void heap_unlock(int held) {
    if (held && __atomic_exchange_n(&weft_heap_grow_lock, 0, __ATOMIC_RELEASE) == 2)
        __builtin_wasm_memory_atomic_notify((int *)&weft_heap_grow_lock, 1);
}

/* libc's allocation `call`, under the heap lock. */
#define LIBC_HEAP(type, call)                                                                      \
    do {                                                                                           \
        int held_ = heap_lock();                                                                   \
        type result_ = (call);                                                                     \
        heap_unlock(held_);                                                                        \
        return result_;                                                                            \
    } while (0)

/* Gives an arena whose thread has ended and whose blocks are all freed
 * back to the host. */
static void release_arena(struct arena *a) {
    struct chunk *c = a->chunks;
    while (c) {
        struct chunk *next = c->next; /* read before the chunk is gone */
        weft_arena_release((uint32_t)(uintptr_t)c);
        c = next;
    }
    a->magic = 0;
    weft_arena_release((uint32_t)(uintptr_t)a);
}

/* An arena whose thread has ended and whose blocks are all freed. Its
 * bytes travel up through the merges of the memories between its thread
 * and the main memory, so the host may hand its chunks out again only when
 * those merges are done: it goes back from the main memory, and a chained
 * thread passes it on to its own exit path. */
static void retire(struct arena *a) {
    struct arena *own = current_arena();
    if (!own) {
        release_arena(a);
        return;
    }
    lock(own);
    a->next_retired = own->retired;
    own->retired = a;
    unlock(own);
}

/* A block of `a` was freed outside its thread. */
static void release_block(struct arena *a) {
    lock(a);
    a->freed_elsewhere++;
    int empty = a->live == a->freed_elsewhere && a->thread_done;
    unlock(a);
    if (empty) retire(a);
}

static _Thread_local struct arena *thread_arena;

/* The first chunk holds no arena until here (maybe old bytes): the thread
 * sets its arena up. */
void weft_chain_thread_started(void) {
    struct arena *a = current_arena();
    thread_arena = a;
    if (!a || a->magic == ARENA_MAGIC) return;
    memset(a, 0, sizeof *a);
    a->magic = ARENA_MAGIC;
    a->size = weft_chain_entry.arena_size;
    add_pool(a, (uintptr_t)(a + 1), (uintptr_t)a + a->size);
}

/* The exit path of a chained thread, on its parent's memory: the frees the
 * thread deferred, and its arena goes back once nothing uses it. */
void weft_chain_thread_exiting(void) {
    struct arena *a = thread_arena;
    if (!a || a->magic != ARENA_MAGIC) return;
    thread_arena = NULL;
    void *deferred = a->deferred;
    a->deferred = NULL;
    while (deferred) {
        void *next = *(void **)deferred;
        free(deferred);
        deferred = next;
    }
    lock(a);
    a->thread_done = 1;
    int empty = a->live == a->freed_elsewhere;
    struct arena *retired = a->retired;
    a->retired = NULL;
    unlock(a);
    while (retired) {
        struct arena *next = retired->next_retired;
        retire(retired);
        retired = next;
    }
    if (empty) retire(a);
}

void *__real_sbrk(intptr_t increment);

/* When growing the heap fails halfway (near a memory cap), dlmalloc gives
 * back what it just got with a negative sbrk; wasi-libc aborts on that
 * (a wasm memory cannot shrink). The memory stays, the release fails as
 * sbrk may, and malloc returns NULL with ENOMEM as it should. */
void *__wrap_sbrk(intptr_t increment) {
    if (increment < 0) {
        errno = ENOMEM;
        return (void *)-1;
    }
    return __real_sbrk(increment);
}

void *__wrap_malloc(size_t size) {
    struct arena *a = current_arena();
    if (a) return arena_alloc(a, size, 16);
    LIBC_HEAP(void *, __real_malloc(size));
}

void *__wrap_calloc(size_t n, size_t size) {
    struct arena *a = current_arena();
    if (!a) LIBC_HEAP(void *, __real_calloc(n, size));
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = arena_alloc(a, n * size, 16);
    if (p) memset(p, 0, n * size); /* freed blocks are reused unzeroed */
    return p;
}

void __wrap_free(void *p) {
    if (!p) return;
    struct arena *own = current_arena();
    if (own) {
        if (in_arena(own, p)) {
            arena_free(own, p);
            return;
        }
        /* Someone else's block: free it on the parent's memory, at exit.
         * Its bytes are dead now, so the list runs through them. */
        lock(own);
        *(void **)p = own->deferred;
        own->deferred = p;
        unlock(own);
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
    struct arena *home = own ? (in_arena(own, p) ? own : NULL) : arena_of(p);
    if (!own && !home) LIBC_HEAP(void *, __real_realloc(p, size));
    size_t old = home ? usable(p) : malloc_usable_size(p);
    if (home && home == own && size <= MAX_REQUEST) {
        uint32_t need = ((uint32_t)size + HEADER + 15) & ~15u;
        if (need < MIN_BLOCK) need = MIN_BLOCK;
        struct block *b = block_of(p);
        lock(own);
        struct block *next = next_block(b);
        if (size_of(b) < need && (next->size_flags & FREE) &&
            size_of(b) + size_of(next) >= need) {
            /* Grow in place into the free block after it. */
            bin_remove(own, next);
            b->size_flags += size_of(next);
            next_block(b)->size_flags &= ~PREV_FREE;
        }
        int fits = size_of(b) >= need;
        if (fits) shrink(own, b, need);
        unlock(own);
        if (fits) return p;
    }
    void *q = malloc(size);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    struct arena *a = current_arena();
    if (!a) LIBC_HEAP(void *, __real_aligned_alloc(align, size));
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return arena_alloc(a, size, align);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    struct arena *a = current_arena();
    if (!a) LIBC_HEAP(int, __real_posix_memalign(out, align, size));
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = arena_alloc(a, size, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
