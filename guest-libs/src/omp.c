/* libweft's OpenMP runtime: the `__kmpc_*` entry points clang emits for
 * OpenMP on wasm32 (shared/DESIGN.md section 10 lists the ABI) and the
 * `omp_*` API of omp.h.
 *
 * Teams last: a thread that forks regions keeps their workers alive
 * between them, and member i of its teams is always the same pthread, so
 * threadprivate data persists (see "teams that last" below).
 *
 * Local mode: every wait spins briefly, then sleeps on a wasm futex
 * (memory.atomic.wait32/64).
 *
 * Chain mode: each chained thread runs on its own copy of memory, so waits
 * through memory cannot work. Members park on home condition variables
 * between regions (a region's start is an acquire for them, its end a
 * home barrier). Barriers, critical sections, reductions, locks and flush
 * use the home host's synchronisation (weft:threads sync-*), which makes
 * each a sync point of release consistency: a member's writes go home at
 * a release and its copy takes home's at an acquire; so do the turns of
 * ordered loops (a home mutex and condition variable). Dynamic and guided
 * loops are split statically in chain mode: a shared counter would be one
 * per copy. */
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/threads.h>

#include "chain.h"

typedef struct ident ident_t; /* a source location; not used */
typedef void (*microtask_t)(int32_t *, int32_t *, ...);

/* The host's id of the main thread (wasi-libc's). */
#define WEFT_MAIN_THREAD_ID 0x3fffffff

/* How many work-sharing constructs a team may have open at once (threads
 * run ahead through `nowait` loops); an older one is waited for. */
#define DISPATCH_RING 8

/* libomp's schedule kinds (kmp.h enum sched_type) as clang passes them. */
enum {
    SCHED_STATIC_CHUNKED = 33,
    SCHED_STATIC = 34,
    SCHED_DYNAMIC = 35,
    SCHED_GUIDED = 36,
    SCHED_RUNTIME = 37,
    SCHED_AUTO = 38,
    SCHED_TRAPEZOIDAL = 39,
    SCHED_STATIC_GREEDY = 40,
    SCHED_STATIC_BALANCED = 41,
    SCHED_GUIDED_ITERATIVE = 42,
    SCHED_GUIDED_ANALYTICAL = 43,
    SCHED_STATIC_STEAL = 44,
    SCHED_STATIC_BALANCED_CHUNKED = 45,
    SCHED_GUIDED_SIMD = 46,
    SCHED_RUNTIME_SIMD = 47,
    SCHED_ORDERED_FIRST = 65, /* ordered variants: the kind above plus 32 */
    SCHED_ORDERED_LAST = 70,
    SCHED_DIST_STATIC_CHUNKED = 91,
    SCHED_DIST_STATIC = 92,
    SCHED_MODIFIERS = (1 << 29) | (1 << 30), /* monotonic, nonmonotonic */
};

static _Noreturn void fail(const char *what) {
    fprintf(stderr, "weft: OpenMP: %s\n", what);
    fflush(stderr);
    abort();
}

/* ---- waiting ----------------------------------------------------------
 * Team members usually arrive within microseconds of each other: spin
 * before sleeping, unless threads outnumber cores. How long adapts per
 * thread, from how each wait ended: in the second half of its spin, it
 * spins twice as long next time; asleep, it measures how long it slept.
 * A sleep that ended soon (under WOKEN_SOON_NS) cost more than spinning
 * on would have: a sleeper wakes tens of microseconds late, arrives late
 * at the next barrier, and its partner's short spin fails too, so two
 * threads take turns sleeping at every barrier (fork and barrier costs
 * were 10-40x libgomp's, swinging between runs); the spin doubles. A long
 * sleep (the other thread had real work, or waited for a core) makes it
 * a quarter as long: on a machine whose cores other processes want, a
 * spinning waiter takes the core the thread it waits for needs. Spins
 * stay within libgomp's default count. */

#define SPIN_MIN 50000
#define SPIN_MAX 300000
#define SPIN_OVERSUBSCRIBED 100
#define WOKEN_SOON_NS 200000

static _Atomic int oversubscribed; /* a team had more threads than processors */
static _Thread_local int spin_budget = SPIN_MIN;

static int spin_limit(void) {
    return atomic_load_explicit(&oversubscribed, memory_order_relaxed) ? SPIN_OVERSUBSCRIBED
                                                                       : spin_budget;
}

/* After a wait that spun `spun` times: `grow` when the wait ended late in
 * its spin or soon after it went to sleep. */
static void spin_adapt(int spun, int grow) {
    if (atomic_load_explicit(&oversubscribed, memory_order_relaxed)) return;
    int next = grow ? spun * 2 : spun / 4;
    spin_budget = next < SPIN_MIN ? SPIN_MIN : next > SPIN_MAX ? SPIN_MAX : next;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A wait whose spin failed goes to sleep: when (a clock read, a host
 * call, on the slow path only). */
static uint64_t sleep_begins(void) { return now_ns(); }

/* The wait that slept since `began` is over. */
static void sleep_ended(int spun, uint64_t began) {
    spin_adapt(spun, now_ns() - began < WOKEN_SOON_NS);
}

static void futex_wake_all(void *addr) {
    __builtin_wasm_memory_atomic_notify((int *)addr, UINT32_MAX);
}

/* A word threads wait on, with a count of those asleep: waking costs a
 * host call, which a waiter still spinning does not need. A sleeper counts
 * itself before it checks the word and a waker changes the word before it
 * reads the count (all wasm atomics are sequentially consistent), so one
 * of them sees the other. */
struct waitword {
    _Atomic uint32_t value;
    _Atomic uint32_t sleepers;
};

/* Waits while w->value == value. */
static void waitword_wait(struct waitword *w, uint32_t value) {
    int spins = spin_limit();
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(&w->value, memory_order_acquire) != value) {
            if (i > spins / 2) spin_adapt(spins, 1);
            return;
        }
    }
    uint64_t began = sleep_begins();
    while (atomic_load(&w->value) == value) {
        atomic_fetch_add(&w->sleepers, 1);
        if (atomic_load(&w->value) == value)
            __builtin_wasm_memory_atomic_wait32((int *)&w->value, (int)value, -1);
        atomic_fetch_sub(&w->sleepers, 1);
    }
    sleep_ended(spins, began);
}

/* Wakes every sleeper, after the caller changed w->value. */
static void waitword_wake(struct waitword *w) {
    if (atomic_load(&w->sleepers)) futex_wake_all(&w->value);
}

/* Waits until *addr == value. */
static void wait_until64(_Atomic uint64_t *addr, uint64_t value) {
    for (int i = 0, n = spin_limit(); i < n; i++)
        if (atomic_load_explicit(addr, memory_order_acquire) == value) return;
    for (;;) {
        uint64_t seen = atomic_load_explicit(addr, memory_order_acquire);
        if (seen == value) return;
        __builtin_wasm_memory_atomic_wait64((long long *)addr, (long long)seen, -1);
    }
}

/* A futex lock: 0 free, 1 held, 2 held with sleepers. */
static int lock_try(_Atomic uint32_t *lock) {
    uint32_t free = 0;
    return atomic_compare_exchange_strong(lock, &free, 1);
}

static void lock_acquire(_Atomic uint32_t *lock) {
    if (lock_try(lock)) return;
    for (int i = 0, n = spin_limit(); i < n; i++)
        if (atomic_load_explicit(lock, memory_order_relaxed) == 0 && lock_try(lock)) return;
    while (atomic_exchange(lock, 2) != 0) __builtin_wasm_memory_atomic_wait32((int *)lock, 2, -1);
}

static void lock_release(_Atomic uint32_t *lock) {
    if (atomic_exchange(lock, 0) == 2) __builtin_wasm_memory_atomic_notify((int *)lock, 1);
}

/* ---- teams and threads ------------------------------------------------ */

/* Internal control variables a thread carries and hands to the members of
 * the teams it forks. */
struct icv {
    int nthreads;
    int run_sched; /* SCHED_STATIC, _DYNAMIC, _GUIDED or _AUTO */
    int run_chunk; /* 0: the kind's default */
    int dynamic;
    /* The host `teams` region the thread is in (see "teams" below): its
     * team's number, how many teams, and its thread_limit (0: none). */
    int team_num, num_teams;
    int thread_limit;
};

/* One open work-sharing loop of a team. */
struct dispatch_buffer {
    _Atomic uint32_t construct; /* the loop it serves: the team's n-th */
    _Atomic uint32_t finished;  /* members done with it */
    _Atomic uint64_t next;      /* first iteration nobody has claimed */
    _Atomic uint64_t ordered;   /* the iteration whose ordered part may run */
    /* A doacross loop's iterations that have posted: a bit each. */
    _Atomic(uint32_t *) doacross;
    _Atomic uint32_t doacross_sleepers; /* local mode: members asleep on a bit */
    /* Chain mode: the bitmap's home lock and condition variable, the loop
     * that made it (plus one), members done with it, and where its memory
     * goes back to its allocator. */
    uint32_t doacross_lock, doacross_cond;
    uint32_t doacross_construct, doacross_done;
    void **doacross_returns;
};

struct team {
    int nthreads;
    int level;        /* enclosing parallel regions, this one included */
    int active_level; /* those of them with more than one thread */
    struct team *parent;
    int parent_tid; /* the master's number in the parent team */
    microtask_t fn;
    int argc;
    void **argv;
    struct icv member_icv;
    /* Barriers and tasks (see "tasks" below): members arrived at the
     * current barrier in the high half, the team's deferred tasks not yet
     * finished in the low half, so that one atomic operation sees both. */
    _Atomic uint64_t work;
    _Atomic uint32_t barrier_generation;
    struct waitword event;   /* bumped when a task is queued or ends, and a barrier opens */
    _Atomic uint32_t pool_lock; /* the task queue's (a home lock in chain mode) */
    uint32_t pool_waiters;   /* chain mode: members waiting at home on `event` */
    _Atomic uint32_t queued; /* tasks in the queue */
    struct task_node *queue_head, *queue_tail;
    _Atomic uint32_t single_next;
    void *copyprivate;
    struct waitword running; /* local mode: workers still in the region */
    void *serialized;         /* an `if(false)` region's allocation */
    /* Chain mode: barriers that run tasks while they wait (a few sync
     * calls per member) or home barriers (one), chosen by the master for
     * the whole region; and whether a task was deferred in it. */
    int task_barriers;
    uint32_t deferred;
    struct crew *crew; /* chain mode: the crew the members come from */
    /* Cancellation (with OMP_CANCELLATION): whether the region is
     * cancelled, and which work-sharing construct (its number + 1 in
     * each member's count) is; behind a home lock in chain mode. */
    uint32_t cancel_parallel;
    uint32_t cancel_workshare;
    _Atomic uint32_t cancel_lock;
    /* The reductions of a region's and of its current work-sharing
     * construct's `reduction(task, ...)`, under the pool lock. */
    struct taskgroup *task_modifier[2];
    struct dispatch_buffer dispatch[DISPATCH_RING];
};

/* A task: our header in front of each task object the compiler allocates
 * (kmp_task_t follows it), and the record of each implicit task. */
struct task_node {
    struct task_node *next, *prev; /* in the team's queue */
    struct task_node *parent;      /* the task that created it */
    struct taskgroup *group;       /* the taskgroup it counts in, or NULL */
    struct team *team;             /* whose queue it goes to */
    _Atomic uint32_t children;     /* its deferred children not finished */
    _Atomic uint32_t refs;         /* itself until it ends, and each unfinished child */
    int32_t flags;                 /* the compiler's (TASK_*) */
    int final;                     /* its descendants run at once */
    int implicit;
    int resume; /* an untied task asked to go on from its next part */
    /* detach: its completion also waits for its event to be fulfilled
     * (the pool lock guards these). */
    int detachable, body_done, fulfilled;
    /* depend: its dependences, how many earlier siblings it waits for, the
     * later ones waiting for it, and the unfinished children with
     * dependences of its own (a list through dep_next). */
    struct task_dep *deps;
    int32_t ndeps;
    uint32_t predecessors;
    struct task_edge *successors;
    struct task_node *dep_next;
    struct task_node *dep_children;
    uint32_t task_size, shareds_size; /* for the copies a taskloop makes */
    uint32_t block_size; /* of its allocation, when the task cache may keep it */
    void **returns; /* chain mode: where its memory goes back to its creator */
    int outer_thread_limit; /* an included task's encountering thread's */
} __attribute__((aligned(16)));

enum loop_kind { LOOP_STATIC, LOOP_STATIC_CHUNKED, LOOP_DYNAMIC, LOOP_GUIDED };

/* Loops of a doacross nest (`ordered(n)`) the runtime takes. */
#define DOACROSS_DIMS 8

/* This thread's part of the doacross loop nest it is in. */
struct doacross_loop {
    int active;
    int ndims;
    int64_t lo[DOACROSS_DIMS], up[DOACROSS_DIMS], st[DOACROSS_DIMS];
    uint64_t range[DOACROSS_DIMS]; /* iterations of each loop */
    struct dispatch_buffer *slot;
    uint32_t *flags;
};

/* This thread's part of the work-sharing loop it is in. */
struct loop {
    int active;
    struct dispatch_buffer *buffer; /* NULL for a chain-mode team's loop */
    enum loop_kind kind;
    int ordered;
    uint64_t trip;  /* iterations in all */
    uint64_t chunk; /* iterations per chunk */
    uint64_t lb;    /* the first iteration's value, as bits */
    int64_t st;     /* and the step between iterations */
    uint64_t next_chunk; /* static chunked: the next chunk of this thread */
    int static_done;
    uint64_t current, end; /* ordered: the iteration running, its chunk's end */
    int ordered_done;      /* the current iteration ran its ordered part */
    uint32_t construct;    /* chain mode: the team's n-th loop */
};

struct task_node;
struct taskgroup;

struct omp_thread {
    struct team *team;
    int tid;
    struct task_node *task;  /* the task it runs: implicit or explicit */
    struct taskgroup *group; /* the innermost taskgroup new tasks join */
    uint32_t singles; /* single constructs this thread met in its team */
    uint32_t loops;   /* work-sharing loops it met in its team */
    uint32_t workshares; /* work-sharing constructs (loops, sections) it met */
    struct loop loop;
    struct doacross_loop doacross;
    struct icv icv;
    int pushed_nthreads; /* num_threads clause of the next region */
    int pushed_num_teams, pushed_teams_limit; /* clauses of the next teams */
    int32_t gtid;
    int queued_tasks; /* chain mode: it queued tasks since its last barrier */
    /* Chain mode, a member of a crew's team: the list through which other
     * members give back the task memory this thread allocated (see
     * "memory of tasks"); NULL where every thread frees its own. */
    void **returns;
};

static _Thread_local struct omp_thread self_storage;
static _Thread_local int self_ready;

/* The initial thread's implicit region: a team of one at level 0. */
static _Thread_local struct team solo_team;
static _Thread_local struct task_node solo_task;

/* Process-wide settings, read from the environment at first use. */
static struct {
    _Atomic int ready;
    _Atomic uint32_t lock;
    struct icv icv;
    int max_active_levels;
    int thread_limit;
    int procs;
    int chain;
    size_t stack_size;
    int max_task_priority; /* OMP_MAX_TASK_PRIORITY */
    int cancellation;      /* OMP_CANCELLATION */
    int level_nthreads[8]; /* OMP_NUM_THREADS as a list, one per level */
    int level_count;
    int nteams;              /* OMP_NUM_TEAMS, omp_set_num_teams; 0: unset */
    int teams_thread_limit;  /* OMP_TEAMS_THREAD_LIMIT, omp_set_teams_thread_limit */
} global;

static void team_init(struct team *t, int nthreads, struct team *parent, int parent_tid) {
    memset(t, 0, sizeof *t);
    t->nthreads = nthreads;
    t->parent = parent;
    t->parent_tid = parent_tid;
    t->level = parent ? parent->level + 1 : 0;
    t->active_level = (parent ? parent->active_level : 0) + (nthreads > 1);
    for (uint32_t i = 0; i < DISPATCH_RING; i++) t->dispatch[i].construct = i;
}

static void read_environment(void);

static struct omp_thread *self(void) {
    struct omp_thread *me = &self_storage;
    if (!self_ready) {
        read_environment();
        self_ready = 1;
        /* The host's thread id: unique, and no shared counter that every
         * chained thread would write. */
        me->gtid = (int32_t)weft_thread_current_id();
        me->icv = global.icv;
        team_init(&solo_team, 1, NULL, 0);
        me->team = &solo_team;
        solo_task.implicit = 1;
        solo_task.team = &solo_team;
        me->task = &solo_task;
    }
    return me;
}

/* A member of a team of more than one in chain mode: constructs that need
 * another member's writes while the region runs go through home. */
static int chain_team(struct omp_thread *me) { return global.chain && me->team->nthreads > 1; }

/* ---- environment ------------------------------------------------------ */

static int parse_bool(const char *s, int fallback) {
    if (!s) return fallback;
    if (!strcasecmp(s, "true") || !strcmp(s, "1")) return 1;
    if (!strcasecmp(s, "false") || !strcmp(s, "0")) return 0;
    return fallback;
}

static int parse_positive(const char *s, int fallback) {
    if (!s) return fallback;
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && v > 0 && v <= INT_MAX ? (int)v : fallback;
}

/* "static", "dynamic,4", "nonmonotonic:guided,2", "auto". */
static void parse_schedule(const char *s, struct icv *icv) {
    if (!s) return;
    const char *colon = strchr(s, ':');
    if (colon) s = colon + 1;
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {{"static", SCHED_STATIC},
                 {"dynamic", SCHED_DYNAMIC},
                 {"guided", SCHED_GUIDED},
                 {"auto", SCHED_AUTO}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].name);
        if (strncasecmp(s, kinds[i].name, n) == 0 && (s[n] == 0 || s[n] == ',')) {
            icv->run_sched = kinds[i].kind;
            icv->run_chunk = s[n] == ',' ? parse_positive(s + n + 1, 0) : 0;
            return;
        }
    }
}

/* "64M", "512k", "1G", "4096B"; a bare number is in KiB. */
static size_t parse_size(const char *s, size_t fallback) {
    if (!s) return fallback;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return fallback;
    unsigned long long unit = 1024;
    switch (*end) {
    case 'b': case 'B': unit = 1; break;
    case 'k': case 'K': unit = 1024; break;
    case 'm': case 'M': unit = 1024 * 1024; break;
    case 'g': case 'G': unit = 1024 * 1024 * 1024; break;
    case 0: break;
    default: return fallback;
    }
    unsigned long long bytes = v * unit;
    return bytes >= 16384 && bytes <= (1ull << 30) ? (size_t)bytes : fallback;
}

static void read_environment(void) {
    if (atomic_load(&global.ready)) return;
    lock_acquire(&global.lock);
    if (!atomic_load(&global.ready)) {
        /* The processors the program may use: libweft answers with the
         * slots the host gives the program. */
        long procs = sysconf(_SC_NPROCESSORS_ONLN);
        global.procs = procs > 0 && procs < INT_MAX ? (int)procs : 1;
        global.chain = weft_chain_mode();
        global.icv.nthreads = global.procs;
        global.icv.run_sched = SCHED_STATIC;
        global.icv.num_teams = 1;
        const char *list = getenv("OMP_NUM_THREADS");
        while (list && global.level_count < 8) {
            char *end;
            long v = strtol(list, &end, 10);
            if (end == list || v <= 0 || v > INT_MAX) break;
            global.level_nthreads[global.level_count++] = (int)v;
            if (*end != ',') break;
            list = end + 1;
        }
        if (global.level_count) global.icv.nthreads = global.level_nthreads[0];
        parse_schedule(getenv("OMP_SCHEDULE"), &global.icv);
        global.icv.dynamic = parse_bool(getenv("OMP_DYNAMIC"), 0);
        int nested = parse_bool(getenv("OMP_NESTED"), -1);
        global.max_active_levels = nested == 1             ? INT_MAX
                                   : global.level_count > 1 ? global.level_count
                                                            : 1;
        global.max_active_levels =
            parse_positive(getenv("OMP_MAX_ACTIVE_LEVELS"), global.max_active_levels);
        global.thread_limit = parse_positive(getenv("OMP_THREAD_LIMIT"), INT_MAX);
        global.stack_size = parse_size(getenv("OMP_STACKSIZE"), 0);
        global.max_task_priority = parse_positive(getenv("OMP_MAX_TASK_PRIORITY"), 0);
        global.cancellation = parse_bool(getenv("OMP_CANCELLATION"), 0);
        global.nteams = parse_positive(getenv("OMP_NUM_TEAMS"), 0);
        global.teams_thread_limit = parse_positive(getenv("OMP_TEAMS_THREAD_LIMIT"), 0);
        atomic_store(&global.ready, 1);
    }
    lock_release(&global.lock);
}

/* ---- parallel regions ------------------------------------------------- */

/* invoke_microtask and MAX_REGION_ARGS, generated by gen-omp-dispatch.py. */
#include "omp_dispatch.inc"

/* Runs the region's body as member `tid` of `t`, then gives the thread
 * its state back. */
static void tasks_drain(struct omp_thread *me);
static void region_end_chain(struct omp_thread *me);
struct crew;
static void **crew_returns(struct crew *c, int tid);
static void returned_free(void *list);

/* OMP_DISPLAY_AFFINITY's line for a thread's first region (omp_display.c). */
void weft_omp_member_started(void);

static void run_member(struct omp_thread *me, struct team *t, int tid) {
    struct omp_thread saved = *me;
    struct task_node implicit;
    memset(&implicit, 0, sizeof implicit);
    implicit.implicit = 1;
    implicit.team = t;
    implicit.final = saved.task && saved.task->final;
    me->team = t;
    me->tid = tid;
    me->task = &implicit;
    me->group = NULL;
    me->queued_tasks = 0;
    me->singles = 0;
    me->loops = 0;
    me->workshares = 0;
    me->icv = t->member_icv;
    me->pushed_nthreads = 0;
    me->returns = t->crew ? crew_returns(t->crew, tid) : NULL;
    int32_t gtid = me->gtid, btid = tid;
    weft_omp_member_started();
    invoke_microtask(t->fn, &gtid, &btid, t->argc, t->argv);
    /* The region's end is a barrier for tasks too: none outlives it (in
     * chain mode also the join: every member's writes go home). */
    if (t->nthreads > 1) {
        if (global.chain) region_end_chain(me);
        else tasks_drain(me);
    }
    int32_t keep_gtid = me->gtid;
    *me = saved;
    me->gtid = keep_gtid;
}

/* A member's stack without OMP_STACKSIZE: main's size. libgomp's members
 * get the native default (8 MiB of address space); a thread's 64 KiB here
 * is heap taken at once, and was overflowed by ordinary code (a few local
 * arrays of 20,000 ints, as in BOTS' alignment). */
#define MEMBER_STACK (1u << 20)

static int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, global.stack_size ? global.stack_size : MEMBER_STACK);
    int rc = pthread_create(thread, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}

/* Chain mode refuses a smaller team than asked: say why. */
static _Noreturn void chain_start_failed(int tid, int nthreads, int rc) {
    /* Either limit may be the one met: a chained thread takes a heap
     * arena from the guest's memory (the host's warning above says when
     * that was full) and a place under `weft run --max-threads`. */
    char line[320];
    snprintf(line, sizeof line,
             "could not start thread %d of a team of %d in chain mode (%s): each chained "
             "thread needs a heap arena in the guest's memory (weft-cc's WEFT_MAX_MEMORY sets "
             "its size) and a place under --max-threads; lower OMP_NUM_THREADS",
             tid, nthreads, strerror(rc));
    fail(line);
}

/* ---- teams that last ----------------------------------------------------
 * A thread keeps the workers of the teams it forks, one crew per nesting
 * level, alive between regions: member i of each team it forks at a level
 * is the same pthread, so threadprivate data (clang puts it in wasm TLS)
 * persists from region to region, and a region costs wake-ups rather than
 * thread starts. A crew grows when a region asks for more threads; members
 * beyond a team's size stay parked.
 *
 * Local mode: a member sleeps on its own wait word between regions.
 * Chain mode: members are chained threads parked on a home semaphore
 * each, so a region's start is an acquire for them. Its end is a release
 * only: a member posts the crew's `done` semaphore (which goes on without
 * waiting for an answer) and parks again, and the owner's waits on `done`
 * are the join's acquires. A parked member takes nothing until its next
 * region: what others wrote meanwhile (the rest of the result) is no
 * member's business unless it runs again. A member writes nothing but its
 * own stack and TLS. A chained thread keeps crews too (its members, like
 * any thread it starts, are created at home and synchronise there), so a
 * nested region costs a round of sync points, not a thread per member. */

struct crew;

/* Whether the program can defer a task at all: omp_tasks.c, which holds
 * the one entry every deferred task is made by, defines it as 1, and the
 * linker takes that file only into programs that call the entry. A
 * program without tasks then never pays for barriers that run them: in
 * chain mode those take a home lock, whose acquire brings a member every
 * byte the others wrote, even at a region's end. */
__attribute__((weak)) int weft_omp_creates_tasks = 0;

struct crew_member {
    struct crew *crew;
    int tid;
    pthread_t thread;
    struct waitword go; /* bumped by the owner for each region, and to leave */
    uint32_t go_sem;    /* chain mode: posted by the owner for the same */
    struct team *team;  /* what to run when `go` moves; NULL: leave */
    void *returned;     /* chain mode: task memory given back to this member */
};

struct crew {
    int level;     /* of the teams it serves */
    int size;      /* with the owner: members[1 .. size-1] are started */
    int capacity;  /* of members */
    struct crew_member **members;
    struct crew *next;  /* the owner's crew of another level */
    uint32_t done_sem;  /* chain mode: posted by each member at a region's end */
    int task_barriers;  /* chain mode: the last region deferred tasks */
    void *owner_returned; /* chain mode: task memory given back to the owner */
};

/* Chain mode: the list through which member `tid` of a team of `c` gets
 * its task memory back. */
static void **crew_returns(struct crew *c, int tid) {
    return tid ? &c->members[tid]->returned : &c->owner_returned;
}

/* This thread's crews, also the value of crew_key: its destructor lets the
 * members go when the owner ends (libgomp does the same), else a program
 * whose main calls pthread_exit would wait for them forever. */
static _Thread_local struct crew *crews;
static pthread_key_t crew_key;
static _Atomic int crew_key_ready;

static void task_cache_drain(void);

static void *member_main(void *arg) {
    struct crew_member *m = arg;
    struct omp_thread *me = self();
    uint32_t seen = 0;
    for (;;) {
        struct team *t;
        if (global.chain) {
            weft_home_sem_wait(&m->go_sem);
            t = m->team;
        } else {
            waitword_wait(&m->go, seen);
            seen = atomic_load(&m->go.value);
            t = m->team;
        }
        if (!t) {
            task_cache_drain();
            return NULL;
        }
        run_member(me, t, m->tid);
        if (global.chain) continue; /* run_member ended with a release home */
        /* The last touch of the team: the master may return at once. */
        if (atomic_fetch_sub(&t->running.value, 1) == 1) waitword_wake(&t->running);
    }
}

/* Tells every member of `c` to leave and waits for them. */
static void crew_dismiss(struct crew *c) {
    for (int i = 1; i < c->size; i++) {
        c->members[i]->team = NULL;
        atomic_fetch_add(&c->members[i]->go.value, 1);
    }
    for (int i = 1; i < c->size; i++) {
        if (global.chain) weft_home_sem_post(&c->members[i]->go_sem);
        else waitword_wake(&c->members[i]->go);
    }
    /* Task memory given back after its allocator's last look: the members'
     * arena blocks are counted free in their arenas from here. */
    returned_free(c->owner_returned);
    for (int i = 1; i < c->size; i++) {
        pthread_join(c->members[i]->thread, NULL);
        returned_free(c->members[i]->returned);
        free(c->members[i]);
    }
    free(c->members);
    free(c);
}

static void crews_dismiss(void *head) {
    for (struct crew *c = head, *next; c; c = next) {
        next = c->next;
        crew_dismiss(c);
    }
    crews = NULL;
}

/* The key whose destructor lets a thread's crews go. */
static void crew_key_init(void) {
    if (atomic_load(&crew_key_ready)) return;
    lock_acquire(&global.lock);
    if (!atomic_load(&crew_key_ready) && pthread_key_create(&crew_key, crews_dismiss) == 0)
        atomic_store(&crew_key_ready, 1);
    lock_release(&global.lock);
}

/* The runtime's settings and the crew key are made once, by the main
 * thread before `main`: in chain mode pthreads whose first OpenMP call
 * comes at the same time would each make them on a copy of their own, and
 * their writes would conflict. */
__attribute__((constructor)) static void omp_runtime_init(void) {
    read_environment();
    crew_key_init();
}

/* This thread's crew for teams at `level`; NULL without memory. */
static struct crew *crew_at(int level) {
    for (struct crew *c = crews; c; c = c->next)
        if (c->level == level) return c;
    crew_key_init();
    struct crew *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->level = level;
    /* Until a region that queues no task, in a program that makes any. */
    c->task_barriers = weft_omp_creates_tasks;
    c->size = 1;
    if (global.chain) weft_home_sem_init(&c->done_sem, 0);
    c->next = crews;
    crews = c;
    if (atomic_load(&crew_key_ready)) pthread_setspecific(crew_key, crews);
    return c;
}

/* Starts members until `c` has `n` threads with its owner, as far as the
 * host lets it; how many it has then. */
static int crew_grow(struct crew *c, int n) {
    if (n > c->capacity) {
        int capacity = c->capacity * 2 > n ? c->capacity * 2 : n;
        struct crew_member **members = realloc(c->members, (size_t)capacity * sizeof *members);
        if (!members) return c->size;
        c->members = members;
        c->capacity = capacity;
    }
    while (c->size < n) {
        struct crew_member *m = calloc(1, sizeof *m);
        if (!m) break;
        m->crew = c;
        m->tid = c->size;
        if (global.chain) weft_home_sem_init(&m->go_sem, 0);
        int rc = start_thread(&m->thread, member_main, m);
        if (rc != 0) {
            free(m);
            if (global.chain) chain_start_failed(c->size, n, rc);
            break;
        }
        c->members[c->size++] = m;
    }
    return c->size;
}

/* Runs `t` with members 1 .. nthreads-1 of this thread's crew at its
 * level. The team has fewer threads when the host has no more (OpenMP
 * allows it; the size is fixed before any member starts). */
static void fork_crew(struct omp_thread *me, struct team *t, int nthreads) {
    struct crew *c = crew_at(t->level);
    int got = c ? crew_grow(c, nthreads) : 1;
    if (got > nthreads) got = nthreads;
    t->nthreads = got;
    t->active_level = t->parent->active_level + (got > 1);
    if (got == 1) {
        run_member(me, t, 0);
        return;
    }
    if (global.chain) {
        /* The owner's writes up to here, the team included, go home with
         * the first post; each member's wake-up brings them. */
        t->task_barriers = c->task_barriers;
        t->crew = c;
        for (int i = 1; i < got; i++) c->members[i]->team = t;
        for (int i = 1; i < got; i++) weft_home_sem_post(&c->members[i]->go_sem);
        run_member(me, t, 0);
        /* run_member ended with the join. Whether this region deferred
         * tasks decides how the next one's barriers wait. */
        c->task_barriers = t->deferred != 0;
        return;
    }
    if (got > global.procs) atomic_store_explicit(&oversubscribed, 1, memory_order_relaxed);
    atomic_store(&t->running.value, (uint32_t)(got - 1));
    for (int i = 1; i < got; i++) {
        struct crew_member *m = c->members[i];
        m->team = t;
        atomic_fetch_add(&m->go.value, 1);
        waitword_wake(&m->go);
    }
    run_member(me, t, 0);
    for (uint32_t left; (left = atomic_load(&t->running.value)) != 0;)
        waitword_wait(&t->running, left);
}

/* The size of the team a region encountered by `me` gets. */
static int team_size(struct omp_thread *me) {
    int n = me->pushed_nthreads ? me->pushed_nthreads : me->icv.nthreads;
    me->pushed_nthreads = 0;
    if (me->team->active_level >= global.max_active_levels) return 1;
    if (n > global.thread_limit) n = global.thread_limit;
    if (me->icv.thread_limit && n > me->icv.thread_limit) n = me->icv.thread_limit;
    return n < 1 ? 1 : n;
}

/* The nthreads ICV the members of a team at `level` start with. */
static struct icv member_icv(struct omp_thread *me, int level) {
    struct icv icv = me->icv;
    if (level < global.level_count) icv.nthreads = global.level_nthreads[level];
    return icv;
}

/* Copies a region's shared-variable pointers from `ap` into `argv`; its
 * microtask takes at most MAX_REGION_ARGS of them. */
static void region_args(const char *construct, int32_t argc, void **argv, va_list ap) {
    if (argc < 0 || argc > MAX_REGION_ARGS) {
        char line[120];
        snprintf(line, sizeof line,
                 "a %s region with %d shared variables (at most %d are supported)", construct,
                 argc, MAX_REGION_ARGS);
        fail(line);
    }
    for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, void *);
}

void __kmpc_fork_call(ident_t *loc, int32_t argc, microtask_t fn, ...) {
    (void)loc;
    struct omp_thread *me = self();
    void *argv[MAX_REGION_ARGS];
    va_list ap;
    va_start(ap, fn);
    region_args("parallel", argc, argv, ap);
    va_end(ap);

    int nthreads = team_size(me);
    struct team t;
    team_init(&t, nthreads, me->team, me->tid);
    t.fn = fn;
    t.argc = argc;
    t.argv = argv;
    t.member_icv = member_icv(me, t.level);
    if (nthreads == 1) run_member(me, &t, 0);
    else fork_crew(me, &t, nthreads);
}

void __kmpc_push_num_threads(ident_t *loc, int32_t gtid, int32_t nthreads) {
    (void)loc, (void)gtid;
    self()->pushed_nthreads = nthreads > 0 ? nthreads : 0;
}

void __kmpc_push_proc_bind(ident_t *loc, int32_t gtid, int32_t bind) {
    (void)loc, (void)gtid, (void)bind; /* no places: binding is the OS's */
}

/* ---- teams ---------------------------------------------------------------
 * A host `teams` region (also what a `target teams` region runs as on the
 * host, the only device) runs its teams one after another on the
 * encountering thread, as libgomp does. Teams may not synchronise with
 * one another, so one at a time is a valid league, and every team's
 * `parallel` regions still get their threads. A team's number, the
 * league's size and the team's thread_limit are ICVs, so the threads of
 * a team's parallel regions see them too; `distribute` splits its loop
 * over the league by them. Without a num_teams clause there are
 * OMP_NUM_TEAMS (omp_set_num_teams) teams, else 3, libgomp's default. */

#define DEFAULT_NUM_TEAMS 3

void __kmpc_push_num_teams(ident_t *loc, int32_t gtid, int32_t num_teams, int32_t thread_limit) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    me->pushed_num_teams = num_teams > 0 ? num_teams : 0;
    me->pushed_teams_limit = thread_limit > 0 ? thread_limit : 0;
}

/* `target thread_limit(n)`: the target region is an included task (or a
 * deferred one for nowait) that sets it first; the task's end puts the
 * encountering thread's back. */
void __kmpc_set_thread_limit(ident_t *loc, int32_t gtid, int32_t thread_limit) {
    (void)loc, (void)gtid;
    if (thread_limit > 0) self()->icv.thread_limit = thread_limit;
}

/* OpenMP 5.1's num_teams(lower:upper): any count in between will do; the
 * upper bound, as a single value would ask. */
void __kmpc_push_num_teams_51(ident_t *loc, int32_t gtid, int32_t lower, int32_t upper,
                              int32_t thread_limit) {
    __kmpc_push_num_teams(loc, gtid, upper > 0 ? upper : lower, thread_limit);
}

void __kmpc_fork_teams(ident_t *loc, int32_t argc, microtask_t fn, ...) {
    (void)loc;
    struct omp_thread *me = self();
    void *argv[MAX_REGION_ARGS];
    va_list ap;
    va_start(ap, fn);
    region_args("teams", argc, argv, ap);
    va_end(ap);

    int num_teams = me->pushed_num_teams ? me->pushed_num_teams
                    : global.nteams      ? global.nteams
                                         : DEFAULT_NUM_TEAMS;
    /* Without a clause or setting, the limit the encountering thread has
     * (a `target thread_limit` around the teams) holds, as in libgomp. */
    int thread_limit = me->pushed_teams_limit   ? me->pushed_teams_limit
                       : global.teams_thread_limit ? global.teams_thread_limit
                                                   : me->icv.thread_limit;
    me->pushed_num_teams = me->pushed_teams_limit = 0;
    /* Each team starts from the encountering thread's ICVs: what one team
     * sets (omp_set_num_threads, say) is not the next one's. */
    struct icv encountering = me->icv;
    for (int team = 0; team < num_teams; team++) {
        me->icv = encountering;
        me->icv.team_num = team;
        me->icv.num_teams = num_teams;
        me->icv.thread_limit = thread_limit;
        int32_t gtid = me->gtid, btid = 0;
        invoke_microtask(fn, &gtid, &btid, argc, argv);
    }
    me->icv = encountering;
}

/* `if(false)` regions: the encountering thread alone, one level deeper. */
struct serialized {
    struct team team;
    struct task_node implicit;
    struct omp_thread saved;
};

void __kmpc_serialized_parallel(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    me->pushed_nthreads = 0;
    struct serialized *s = malloc(sizeof *s);
    if (!s) fail("out of memory for a serialized parallel region");
    s->saved = *me;
    team_init(&s->team, 1, me->team, me->tid);
    s->team.member_icv = member_icv(me, s->team.level);
    s->team.serialized = s;
    memset(&s->implicit, 0, sizeof s->implicit);
    s->implicit.implicit = 1;
    s->implicit.team = &s->team;
    s->implicit.final = me->task && me->task->final;
    me->team = &s->team;
    me->task = &s->implicit;
    me->group = NULL;
    me->tid = 0;
    me->singles = 0;
    me->loops = 0;
    me->workshares = 0;
    me->icv = s->team.member_icv;
}

void __kmpc_end_serialized_parallel(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct serialized *s = me->team->serialized;
    int32_t keep_gtid = me->gtid;
    *me = s->saved;
    me->gtid = keep_gtid;
    free(s);
}

int32_t __kmpc_global_thread_num(ident_t *loc) {
    (void)loc;
    return self()->gtid;
}

int32_t __kmpc_bound_thread_num(ident_t *loc) {
    (void)loc;
    return self()->tid;
}

int32_t __kmpc_bound_num_threads(ident_t *loc) {
    (void)loc;
    return self()->team->nthreads;
}

int32_t __kmpc_in_parallel(ident_t *loc) {
    (void)loc;
    return self()->team->active_level > 0;
}

int32_t __kmpc_ok_to_fork(ident_t *loc) {
    (void)loc;
    return 1;
}

void __kmpc_begin(ident_t *loc, int32_t flags) { (void)loc, (void)flags; }
void __kmpc_end(ident_t *loc) { (void)loc; }

/* ---- barriers and simple constructs ----------------------------------- */

static void team_barrier(struct omp_thread *me);

void __kmpc_barrier(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    team_barrier(self());
}

/* ---- cancellation ----------------------------------------------------- */

/* With OMP_CANCELLATION=true a cancel construct returns 1 and the
 * compiler sends its thread to the construct's end; the others see the
 * request at their cancellation points (and, for a region, at its
 * barriers). Without it nothing is ever cancelled. A work-sharing
 * construct is named by its number in each member's count, which every
 * member keeps alike, so a request never outlives its construct and
 * needs no reset. In chain mode the requests are read and written under
 * a home lock: its release and acquire carry them between members. */
enum { CANCEL_PARALLEL = 1, CANCEL_LOOP = 2, CANCEL_SECTIONS = 3, CANCEL_TASKGROUP = 4 };

static uint32_t cancel_read(struct omp_thread *me, uint32_t *request) {
    struct team *t = me->team;
    if (!chain_team(me)) return __atomic_load_n(request, __ATOMIC_ACQUIRE);
    weft_home_lock(&t->cancel_lock, 0, -1);
    uint32_t value = *request;
    weft_home_unlock(&t->cancel_lock, 0);
    return value;
}

static void cancel_write(struct omp_thread *me, uint32_t *request, uint32_t value) {
    struct team *t = me->team;
    if (!chain_team(me)) {
        __atomic_store_n(request, value, __ATOMIC_RELEASE);
        return;
    }
    weft_home_lock(&t->cancel_lock, 0, -1);
    *request = value;
    weft_home_unlock(&t->cancel_lock, 0);
}

static void group_cancel(struct omp_thread *me, struct taskgroup *g);
static int group_cancelled(const struct taskgroup *g);

int32_t __kmpc_cancel(ident_t *loc, int32_t gtid, int32_t kind) {
    (void)loc, (void)gtid;
    read_environment();
    if (!global.cancellation) return 0;
    struct omp_thread *me = self();
    switch (kind) {
    case CANCEL_PARALLEL:
        cancel_write(me, &me->team->cancel_parallel, 1);
        return 1;
    case CANCEL_LOOP:
    case CANCEL_SECTIONS:
        cancel_write(me, &me->team->cancel_workshare, me->workshares);
        return 1;
    case CANCEL_TASKGROUP:
        if (!me->group) return 0;
        group_cancel(me, me->group);
        return 1;
    }
    return 0;
}

int32_t __kmpc_cancellationpoint(ident_t *loc, int32_t gtid, int32_t kind) {
    (void)loc, (void)gtid;
    read_environment();
    if (!global.cancellation) return 0;
    struct omp_thread *me = self();
    switch (kind) {
    case CANCEL_PARALLEL:
        return cancel_read(me, &me->team->cancel_parallel) != 0;
    case CANCEL_LOOP:
    case CANCEL_SECTIONS:
        return me->workshares && cancel_read(me, &me->team->cancel_workshare) == me->workshares;
    case CANCEL_TASKGROUP:
        return group_cancelled(me->group);
    }
    return 0;
}

/* A barrier of a region that may be cancelled: 1 when it is, and the
 * compiler then sends the member to the region's end. */
int32_t __kmpc_cancel_barrier(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    team_barrier(me);
    return global.cancellation && cancel_read(me, &me->team->cancel_parallel) != 0;
}

void __kmpc_flush(ident_t *loc) {
    (void)loc;
    if (chain_team(self())) weft_home_sync_point();
    atomic_thread_fence(memory_order_seq_cst);
}

int32_t __kmpc_master(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    return self()->tid == 0;
}

void __kmpc_end_master(ident_t *loc, int32_t gtid) { (void)loc, (void)gtid; }

int32_t __kmpc_masked(ident_t *loc, int32_t gtid, int32_t filter) {
    (void)loc, (void)gtid;
    return self()->tid == filter;
}

void __kmpc_end_masked(ident_t *loc, int32_t gtid) { (void)loc, (void)gtid; }

/* The first member to reach its n-th single construct runs it. In chain
 * mode each member has its own copy of the counter, so member 0 runs it. */
int32_t __kmpc_single(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct team *t = me->team;
    if (t->nthreads <= 1) return 1;
    if (global.chain) return me->tid == 0;
    uint32_t mine = me->singles++;
    return atomic_compare_exchange_strong(&t->single_next, &mine, mine + 1);
}

void __kmpc_end_single(ident_t *loc, int32_t gtid) { (void)loc, (void)gtid; }

void __kmpc_copyprivate(ident_t *loc, int32_t gtid, size_t size, void *data,
                        void (*copy)(void *, void *), int32_t didit) {
    (void)loc, (void)gtid, (void)size;
    struct omp_thread *me = self();
    struct team *t = me->team;
    if (t->nthreads <= 1) return;
    if (didit) t->copyprivate = data;
    team_barrier(me);
    if (!didit) copy(data, t->copyprivate);
    team_barrier(me);
}

/* A critical section's lock is the first word of the compiler's 32-byte
 * zeroed name object, shared by every file that names it (weft-cc makes
 * those objects weak). */
void __kmpc_critical(ident_t *loc, int32_t gtid, void *name) {
    (void)loc, (void)gtid;
    if (global.chain) {
        weft_home_lock(name, 0, -1);
        return;
    }
    lock_acquire(name);
}

void __kmpc_critical_with_hint(ident_t *loc, int32_t gtid, void *name, uint32_t hint) {
    (void)hint;
    __kmpc_critical(loc, gtid, name);
}

void __kmpc_end_critical(ident_t *loc, int32_t gtid, void *name) {
    (void)loc, (void)gtid;
    if (global.chain) {
        weft_home_unlock(name, 0);
        return;
    }
    lock_release(name);
}

/* Reductions: always answer 1, "combine into the shared variables
 * yourself, holding `lock`", which works for every type and operator. */
int32_t __kmpc_reduce_nowait(ident_t *loc, int32_t gtid, int32_t nvars, size_t size, void *data,
                             void (*reduce)(void *, void *), void *lock) {
    (void)loc, (void)gtid, (void)nvars, (void)size, (void)data, (void)reduce;
    struct omp_thread *me = self();
    if (me->team->nthreads <= 1) return 1;
    if (global.chain) weft_home_lock(lock, 0, -1);
    else lock_acquire(lock);
    return 1;
}

void __kmpc_end_reduce_nowait(ident_t *loc, int32_t gtid, void *lock) {
    (void)loc, (void)gtid;
    if (self()->team->nthreads <= 1) return;
    if (global.chain) weft_home_unlock(lock, 0);
    else lock_release(lock);
}

int32_t __kmpc_reduce(ident_t *loc, int32_t gtid, int32_t nvars, size_t size, void *data,
                      void (*reduce)(void *, void *), void *lock) {
    return __kmpc_reduce_nowait(loc, gtid, nvars, size, data, reduce, lock);
}

void __kmpc_end_reduce(ident_t *loc, int32_t gtid, void *lock) {
    __kmpc_end_reduce_nowait(loc, gtid, lock);
    team_barrier(self());
}

/* ---- work-sharing loops ------------------------------------------------
 * Iterations are numbered 0..trip-1; iteration i has the value lb + i*st,
 * computed modulo 2^64 and truncated to the loop's type, which is exact
 * for the four integer types. */

static uint64_t trip_count(int is_signed, uint64_t lb, uint64_t ub, int64_t st) {
    if (st == 0) return 0;
    int empty = is_signed ? (st > 0 ? (int64_t)ub < (int64_t)lb : (int64_t)ub > (int64_t)lb)
                          : (st > 0 ? ub < lb : ub > lb);
    if (empty) return 0;
    uint64_t span = st > 0 ? ub - lb : lb - ub;
    uint64_t step = st > 0 ? (uint64_t)st : -(uint64_t)st;
    return span / step + 1;
}

static uint64_t iteration_value(uint64_t lb, int64_t st, uint64_t i) {
    return lb + i * (uint64_t)st;
}

/* This member's block of a loop split evenly: the first trip % n members
 * get one iteration more, as libgomp and libomp split it. */
static void balanced_block(uint64_t trip, int nthreads, int tid, uint64_t *begin,
                           uint64_t *count) {
    uint64_t q = trip / (uint64_t)nthreads, r = trip % (uint64_t)nthreads;
    uint64_t t = (uint64_t)tid;
    *begin = t * q + (t < r ? t : r);
    *count = q + (t < r);
}

/* Member `tid` of `nthreads`'s part of a static schedule of the loop
 * *plb..*pub by incr. */
static void static_split(int32_t sched, int is_signed, int nthreads, int tid, int32_t *last,
                         uint64_t *plb, uint64_t *pub, int64_t *pstride, int64_t incr,
                         int64_t chunk) {
    uint64_t lb = *plb, trip = trip_count(is_signed, lb, *pub, incr);
    sched &= ~SCHED_MODIFIERS;
    if (trip == 0) {
        *last = 0;
        *pstride = incr;
        return;
    }
    int chunked = (sched == SCHED_STATIC_CHUNKED || sched == SCHED_DIST_STATIC_CHUNKED ||
                   sched == SCHED_STATIC_BALANCED_CHUNKED) &&
                  chunk > 0;
    if (chunked) {
        uint64_t c = (uint64_t)chunk;
        uint64_t span = c * (uint64_t)incr;
        *plb = lb + (uint64_t)tid * span;
        *pub = *plb + span - (uint64_t)incr;
        *pstride = (int64_t)(span * (uint64_t)nthreads);
        *last = (uint64_t)tid == ((trip - 1) / c) % (uint64_t)nthreads;
        return;
    }
    uint64_t begin, count;
    balanced_block(trip, nthreads, tid, &begin, &count);
    if (count == 0) { /* nothing for this member: an empty range */
        *plb = iteration_value(lb, incr, trip);
        *pub = iteration_value(lb, incr, trip - 1);
        *last = 0;
    } else {
        *plb = iteration_value(lb, incr, begin);
        *pub = iteration_value(lb, incr, begin + count - 1);
        *last = begin + count == trip;
    }
    *pstride = (int64_t)(trip * (uint64_t)incr);
}

static int distribute_schedule(int32_t sched) {
    sched &= ~SCHED_MODIFIERS;
    return sched == SCHED_DIST_STATIC || sched == SCHED_DIST_STATIC_CHUNKED;
}

/* A static loop: a work-sharing loop split over the thread's team, or a
 * `distribute` loop over the league's teams. */
static void static_init(int32_t sched, int is_signed, int32_t *last, uint64_t *plb,
                        uint64_t *pub, int64_t *pstride, int64_t incr, int64_t chunk) {
    struct omp_thread *me = self();
    if (distribute_schedule(sched)) {
        static_split(sched, is_signed, me->icv.num_teams, me->icv.team_num, last, plb, pub,
                     pstride, incr, chunk);
        return;
    }
    me->workshares++;
    static_split(sched, is_signed, me->team->nthreads, me->tid, last, plb, pub, pstride, incr,
                 chunk);
}

/* `distribute parallel for` in one call: the team's block of the loop
 * (its upper bound to *pupperdist), then this member's part of it. */
static void dist_static_init(int32_t sched, int is_signed, int32_t *last, uint64_t *plb,
                             uint64_t *pub, uint64_t *pupperdist, int64_t *pstride, int64_t incr,
                             int64_t chunk) {
    struct omp_thread *me = self();
    int32_t team_last = 0, member_last = 0;
    int64_t team_stride;
    static_split(SCHED_DIST_STATIC, is_signed, me->icv.num_teams, me->icv.team_num, &team_last,
                 plb, pub, &team_stride, incr, 0);
    *pupperdist = *pub;
    if (trip_count(is_signed, *plb, *pub, incr) == 0) { /* nothing for this team */
        *last = 0;
        *pstride = incr;
        return;
    }
    me->workshares++;
    static_split(sched, is_signed, me->team->nthreads, me->tid, &member_last, plb, pub, pstride,
                 incr, chunk);
    *last = team_last && member_last;
}

#define STATIC_INIT(suffix, T, ST, SIGNED)                                                     \
    void __kmpc_for_static_init_##suffix(ident_t *loc, int32_t gtid, int32_t sched,            \
                                         int32_t *last, T *plb, T *pub, ST *pstride, ST incr, \
                                         ST chunk) {                                           \
        (void)loc, (void)gtid;                                                                 \
        uint64_t lb = (uint64_t)(int64_t)*plb, ub = (uint64_t)(int64_t)*pub;                   \
        if (!SIGNED) lb = (uint64_t)*plb, ub = (uint64_t)*pub;                                 \
        int64_t stride = 0;                                                                    \
        static_init(sched, SIGNED, last, &lb, &ub, &stride, incr, chunk);                      \
        *plb = (T)lb;                                                                          \
        *pub = (T)ub;                                                                          \
        *pstride = (ST)stride;                                                                 \
    }
STATIC_INIT(4, int32_t, int32_t, 1)
STATIC_INIT(4u, uint32_t, int32_t, 0)
STATIC_INIT(8, int64_t, int64_t, 1)
STATIC_INIT(8u, uint64_t, int64_t, 0)

void __kmpc_for_static_fini(ident_t *loc, int32_t gtid) { (void)loc, (void)gtid; }

#define DIST_INIT(suffix, T, ST, SIGNED)                                                    \
    void __kmpc_dist_for_static_init_##suffix(ident_t *loc, int32_t gtid, int32_t sched,    \
                                              int32_t *last, T *plb, T *pub, T *pupperdist, \
                                              ST *pstride, ST incr, ST chunk) {             \
        (void)loc, (void)gtid;                                                              \
        uint64_t lb = (uint64_t)(int64_t)*plb, ub = (uint64_t)(int64_t)*pub, upper = 0;     \
        if (!SIGNED) lb = (uint64_t)*plb, ub = (uint64_t)*pub;                              \
        int64_t stride = 0;                                                                 \
        dist_static_init(sched, SIGNED, last, &lb, &ub, &upper, &stride, incr, chunk);      \
        *plb = (T)lb;                                                                       \
        *pub = (T)ub;                                                                       \
        *pupperdist = (T)upper;                                                             \
        *pstride = (ST)stride;                                                              \
    }
DIST_INIT(4, int32_t, int32_t, 1)
DIST_INIT(4u, uint32_t, int32_t, 0)
DIST_INIT(8, int64_t, int64_t, 1)
DIST_INIT(8u, uint64_t, int64_t, 0)

static enum loop_kind loop_kind(int sched, struct icv *icv, int64_t *chunk) {
    switch (sched) {
    case SCHED_RUNTIME:
    case SCHED_RUNTIME_SIMD:
        *chunk = icv->run_chunk;
        return icv->run_sched == SCHED_DYNAMIC  ? LOOP_DYNAMIC
               : icv->run_sched == SCHED_GUIDED ? LOOP_GUIDED
               : *chunk > 0                     ? LOOP_STATIC_CHUNKED
                                                : LOOP_STATIC;
    case SCHED_DYNAMIC:
    case SCHED_TRAPEZOIDAL:
    case SCHED_STATIC_STEAL:
        return LOOP_DYNAMIC;
    case SCHED_GUIDED:
    case SCHED_GUIDED_ITERATIVE:
    case SCHED_GUIDED_ANALYTICAL:
    case SCHED_GUIDED_SIMD:
        return LOOP_GUIDED;
    case SCHED_STATIC_CHUNKED:
    case SCHED_STATIC_BALANCED_CHUNKED:
        return *chunk > 0 ? LOOP_STATIC_CHUNKED : LOOP_STATIC;
    default: /* static, auto, greedy, balanced */
        return LOOP_STATIC;
    }
}

static struct dispatch_buffer *slot_take(struct team *t, uint32_t construct);

static void dispatch_init(int32_t sched, int is_signed, uint64_t lb, uint64_t ub, int64_t st,
                          int64_t chunk) {
    struct omp_thread *me = self();
    me->workshares++;
    struct team *t = me->team;
    struct loop *l = &me->loop;
    sched &= ~SCHED_MODIFIERS;
    l->ordered = sched >= SCHED_ORDERED_FIRST && sched <= SCHED_ORDERED_LAST;
    if (l->ordered) sched -= SCHED_ORDERED_FIRST - SCHED_STATIC_CHUNKED;
    l->kind = loop_kind(sched, &me->icv, &chunk);
    /* Chain mode: one counter per copy would hand out every chunk to
     * every member; split the loop statically instead. */
    if (global.chain && (l->kind == LOOP_DYNAMIC || l->kind == LOOP_GUIDED))
        l->kind = chunk > 0 ? LOOP_STATIC_CHUNKED : LOOP_STATIC;
    l->trip = trip_count(is_signed, lb, ub, st);
    l->chunk = chunk > 0 ? (uint64_t)chunk : 1;
    l->lb = lb;
    l->st = st;
    l->next_chunk = (uint64_t)me->tid;
    l->static_done = 0;
    l->current = l->end = 0;
    l->ordered_done = 0;
    l->active = 1;
    l->buffer = NULL;
    uint32_t construct = me->loops++;
    l->construct = construct;
    if (chain_team(me)) return; /* static, on this member's own copy */
    l->buffer = slot_take(t, construct);
}

/* Local mode: the dispatch buffer of the team's `construct`-th loop, once
 * the loop DISPATCH_RING constructs earlier has let it go. */
static struct dispatch_buffer *slot_take(struct team *t, uint32_t construct) {
    struct dispatch_buffer *b = &t->dispatch[construct % DISPATCH_RING];
    for (uint32_t seen; (seen = atomic_load(&b->construct)) != construct;)
        __builtin_wasm_memory_atomic_wait32((int *)&b->construct, (int)seen, -1);
    return b;
}

/* Local mode: a member is done with buffer `b`: the last one frees it for
 * the loop DISPATCH_RING constructs later. */
static void slot_release(struct omp_thread *me, struct dispatch_buffer *b) {
    if (atomic_fetch_add(&b->finished, 1) + 1 == (uint32_t)me->team->nthreads) {
        free(atomic_exchange(&b->doacross, NULL));
        atomic_store(&b->next, 0);
        atomic_store(&b->ordered, 0);
        atomic_store(&b->finished, 0);
        atomic_fetch_add(&b->construct, DISPATCH_RING);
        futex_wake_all(&b->construct);
    }
}

/* The member is done with its loop. */
static void loop_finished(struct omp_thread *me) {
    struct dispatch_buffer *b = me->loop.buffer;
    me->loop.active = 0;
    me->loop.buffer = NULL;
    if (b) slot_release(me, b);
}

/* The next chunk [begin, end) of iterations for this member; 0 when the
 * loop has none left. */
static int next_chunk(struct omp_thread *me, uint64_t *begin, uint64_t *end) {
    struct loop *l = &me->loop;
    if (!l->active) return 0;
    int nthreads = me->team->nthreads;
    uint64_t trip = l->trip, b, n;
    switch (l->kind) {
    case LOOP_STATIC:
        if (l->static_done) return 0;
        l->static_done = 1;
        balanced_block(trip, nthreads, me->tid, &b, &n);
        if (n == 0) return 0;
        *begin = b;
        *end = b + n;
        return 1;
    case LOOP_STATIC_CHUNKED:
        if (l->next_chunk >= (trip + l->chunk - 1) / l->chunk) return 0;
        b = l->next_chunk * l->chunk;
        l->next_chunk += (uint64_t)nthreads;
        *begin = b;
        *end = trip - b < l->chunk ? trip : b + l->chunk;
        return 1;
    case LOOP_DYNAMIC:
        b = atomic_fetch_add(&l->buffer->next, l->chunk);
        if (b >= trip) return 0;
        *begin = b;
        *end = trip - b < l->chunk ? trip : b + l->chunk;
        return 1;
    case LOOP_GUIDED:
        b = atomic_load(&l->buffer->next);
        for (;;) {
            if (b >= trip) return 0;
            uint64_t left = trip - b;
            n = (left + (uint64_t)nthreads - 1) / (uint64_t)nthreads;
            if (n < l->chunk) n = l->chunk;
            if (n > left) n = left;
            if (atomic_compare_exchange_weak(&l->buffer->next, &b, b + n)) break;
        }
        *begin = b;
        *end = b + n;
        return 1;
    }
    return 0;
}

static int dispatch_next(int32_t *last, uint64_t *plb, uint64_t *pub, int64_t *pst) {
    struct omp_thread *me = self();
    struct loop *l = &me->loop;
    uint64_t begin, end;
    if (!next_chunk(me, &begin, &end)) {
        loop_finished(me);
        return 0;
    }
    l->current = begin;
    l->end = end;
    l->ordered_done = 0;
    *plb = iteration_value(l->lb, l->st, begin);
    *pub = iteration_value(l->lb, l->st, end - 1);
    *pst = l->st;
    if (last) *last = end == l->trip;
    return 1;
}

#define DISPATCH(suffix, T, ST, SIGNED)                                                        \
    void __kmpc_dispatch_init_##suffix(ident_t *loc, int32_t gtid, int32_t sched, T lb, T ub, \
                                       ST st, ST chunk) {                                      \
        (void)loc, (void)gtid;                                                                 \
        dispatch_init(sched, SIGNED, SIGNED ? (uint64_t)(int64_t)lb : (uint64_t)lb,            \
                      SIGNED ? (uint64_t)(int64_t)ub : (uint64_t)ub, st, chunk);               \
    }                                                                                          \
    int32_t __kmpc_dispatch_next_##suffix(ident_t *loc, int32_t gtid, int32_t *last, T *plb,  \
                                          T *pub, ST *pst) {                                   \
        (void)loc, (void)gtid;                                                                 \
        uint64_t lb, ub;                                                                       \
        int64_t st;                                                                            \
        if (!dispatch_next(last, &lb, &ub, &st)) return 0;                                     \
        *plb = (T)lb;                                                                          \
        *pub = (T)ub;                                                                          \
        if (pst) *pst = (ST)st;                                                                \
        return 1;                                                                              \
    }                                                                                          \
    void __kmpc_dispatch_fini_##suffix(ident_t *loc, int32_t gtid) {                          \
        (void)loc, (void)gtid;                                                                 \
        ordered_iteration_done(self());                                                        \
    }

/* Chain mode's ordered loops: the turn (which construct, which iteration)
 * is kept in the loop's dispatch slot, in memory a home mutex makes
 * coherent. A member takes the mutex, waits on a home condition variable
 * until the turn is its iteration, runs its ordered part holding the
 * mutex, then passes the turn on and releases the mutex: a release, so
 * its writes go home and the next member's acquire brings them. A slot
 * last used by an older loop gives the turn to iteration 0. */
static void chain_turn_wait(struct omp_thread *me) {
    struct loop *l = &me->loop;
    struct dispatch_buffer *b = &me->team->dispatch[l->construct % DISPATCH_RING];
    weft_home_lock(&b->finished, 0, -1);
    for (;;) {
        uint32_t owner = atomic_load(&b->construct);
        uint64_t turn = atomic_load(&b->ordered);
        if (owner == l->construct ? turn == l->current : l->current == 0) return;
        weft_home_cond_wait(&b->next, &b->finished);
    }
}

static void chain_turn_pass(struct omp_thread *me) {
    struct loop *l = &me->loop;
    struct dispatch_buffer *b = &me->team->dispatch[l->construct % DISPATCH_RING];
    atomic_store(&b->construct, l->construct);
    atomic_store(&b->ordered, l->current + 1);
    weft_home_cond_broadcast(&b->next);
    weft_home_unlock(&b->finished, 0);
}

/* Ordered loops: iteration i's ordered part runs after i-1's. Each
 * iteration ends with dispatch_fini, which passes the turn on even when
 * the iteration skipped its ordered part. */
static void ordered_iteration_done(struct omp_thread *me) {
    struct loop *l = &me->loop;
    if (l->ordered && chain_team(me)) {
        if (!l->ordered_done) {
            chain_turn_wait(me);
            chain_turn_pass(me);
        }
        l->current++;
        l->ordered_done = 0;
        return;
    }
    if (!l->ordered || !l->buffer) return;
    if (!l->ordered_done) {
        wait_until64(&l->buffer->ordered, l->current);
        atomic_store(&l->buffer->ordered, l->current + 1);
        futex_wake_all(&l->buffer->ordered);
    }
    l->current++;
    l->ordered_done = 0;
}

DISPATCH(4, int32_t, int32_t, 1)
DISPATCH(4u, uint32_t, int32_t, 0)
DISPATCH(8, int64_t, int64_t, 1)
DISPATCH(8u, uint64_t, int64_t, 0)

void __kmpc_dispatch_deinit(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    loop_finished(self());
}

void __kmpc_ordered(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct loop *l = &me->loop;
    if (l->ordered && chain_team(me)) {
        chain_turn_wait(me);
        return;
    }
    if (!l->ordered || !l->buffer) return;
    wait_until64(&l->buffer->ordered, l->current);
}

void __kmpc_end_ordered(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct loop *l = &me->loop;
    if (l->ordered && chain_team(me)) {
        chain_turn_pass(me);
        l->ordered_done = 1;
        return;
    }
    if (!l->ordered || !l->buffer) return;
    atomic_store(&l->buffer->ordered, l->current + 1);
    futex_wake_all(&l->buffer->ordered);
    l->ordered_done = 1;
}

/* ---- doacross loops -------------------------------------------------------
 * `ordered(n)` with `depend(sink: ...)` / `depend(source)` (or `doacross`):
 * an iteration waits until the iterations it names have posted. The nest's
 * iteration space is numbered row-major, one bit per iteration in a bitmap
 * the loop's dispatch buffer holds (the first member to arrive makes it,
 * the last to leave frees it). Local mode: posting sets the bit, waiting
 * spins on it, then sleeps on its word. Chain mode: the bitmap is read and
 * written under a home lock, and waiters wait on a home condition variable,
 * so a post is a release and a wait that sees the bit an acquire: the
 * waiting iteration sees what the posting one wrote. */

struct kmp_dim { /* the compiler's: one loop of the nest, bounds inclusive */
    int64_t lo, up, st;
};

static void task_memory_free(struct omp_thread *me, void *block, void **returns);
static void pool_lock(struct team *t);
static void pool_unlock(struct team *t);

/* The number of iteration `vec` of the nest, or -1 outside it (a sink
 * before the first iteration names nothing to wait for). */
static int64_t doacross_index(const struct doacross_loop *d, const int64_t *vec) {
    uint64_t index = 0;
    for (int i = 0; i < d->ndims; i++) {
        int64_t v = vec[i];
        uint64_t k;
        if (d->st[i] > 0) {
            if (v < d->lo[i] || v > d->up[i]) return -1;
            k = ((uint64_t)v - (uint64_t)d->lo[i]) / (uint64_t)d->st[i];
        } else {
            if (v > d->lo[i] || v < d->up[i]) return -1;
            k = ((uint64_t)d->lo[i] - (uint64_t)v) / -(uint64_t)d->st[i];
        }
        index = index * d->range[i] + k;
    }
    return (int64_t)index;
}

void __kmpc_doacross_init(ident_t *loc, int32_t gtid, int32_t ndims, const struct kmp_dim *dims) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct team *t = me->team;
    struct doacross_loop *d = &me->doacross;
    if (ndims < 1 || ndims > DOACROSS_DIMS) fail("a doacross loop nest of more than 8 loops");
    d->ndims = ndims;
    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        int64_t st = dims[i].st ? dims[i].st : 1;
        d->lo[i] = dims[i].lo;
        d->up[i] = dims[i].up;
        d->st[i] = st;
        uint64_t span = st > 0 ? (uint64_t)dims[i].up - (uint64_t)dims[i].lo
                               : (uint64_t)dims[i].lo - (uint64_t)dims[i].up;
        int empty = st > 0 ? dims[i].up < dims[i].lo : dims[i].up > dims[i].lo;
        d->range[i] = empty ? 0 : span / (st > 0 ? (uint64_t)st : -(uint64_t)st) + 1;
        if (d->range[i] && total > (UINT64_C(1) << 32) / d->range[i])
            fail("a doacross loop nest of more than 2^32 iterations");
        total *= d->range[i];
    }
    /* One member runs every iteration in order: nothing to wait for. The
     * dispatch slot is counted by every member alike all the same. */
    uint32_t construct = me->loops++;
    d->active = t->nthreads > 1 && total > 0;
    d->slot = NULL;
    d->flags = NULL;
    if (t->nthreads <= 1) return;
    size_t words = (size_t)((total + 31) / 32);
    if (words == 0) words = 1;
    struct dispatch_buffer *b;
    if (!chain_team(me)) {
        b = slot_take(t, construct);
        uint32_t *flags = atomic_load(&b->doacross);
        if (!flags) {
            uint32_t *mine = calloc(words, sizeof *mine);
            if (!mine) fail("out of memory for a doacross loop");
            if (atomic_compare_exchange_strong(&b->doacross, &flags, mine)) flags = mine;
            else free(mine);
        }
        d->slot = b;
        d->flags = flags;
        return;
    }
    b = &t->dispatch[construct % DISPATCH_RING];
    weft_home_lock(&b->doacross_lock, 0, -1);
    if (b->doacross_construct != construct + 1) {
        if (atomic_load(&b->doacross))
            fail("a doacross loop more than 8 work-sharing loops behind the team in chain mode");
        uint32_t *mine = calloc(words, sizeof *mine);
        if (!mine) fail("out of memory for a doacross loop");
        atomic_store(&b->doacross, mine);
        b->doacross_construct = construct + 1;
        b->doacross_done = 0;
        b->doacross_returns = me->returns;
    }
    d->slot = b;
    d->flags = atomic_load(&b->doacross);
    weft_home_unlock(&b->doacross_lock, 0);
}

/* Posts iteration `vec` of this thread's doacross loop, or waits until it
 * has posted (nothing to do outside the nest's iteration space). */
static void doacross_sync(const int64_t *vec, int post) {
    struct omp_thread *me = self();
    struct doacross_loop *d = &me->doacross;
    if (!d->active) return;
    int64_t index = doacross_index(d, vec);
    if (index < 0) return;
    _Atomic uint32_t *word = (_Atomic uint32_t *)&d->flags[index >> 5];
    uint32_t bit = 1u << (index & 31);
    struct dispatch_buffer *b = d->slot;
    if (chain_team(me)) {
        weft_home_lock(&b->doacross_lock, 0, -1);
        if (post) {
            atomic_fetch_or(word, bit);
            weft_home_cond_broadcast(&b->doacross_cond);
        }
        while (!(atomic_load(word) & bit)) weft_home_cond_wait(&b->doacross_cond, &b->doacross_lock);
        weft_home_unlock(&b->doacross_lock, 0);
        return;
    }
    if (post) {
        atomic_fetch_or(word, bit);
        if (atomic_load(&b->doacross_sleepers)) futex_wake_all(word);
        return;
    }
    int spins = spin_limit();
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) & bit) {
            if (i > spins / 2) spin_adapt(spins, 1);
            return;
        }
    }
    uint64_t began = sleep_begins();
    for (;;) {
        atomic_fetch_add(&b->doacross_sleepers, 1);
        uint32_t seen = atomic_load(word);
        if (!(seen & bit)) __builtin_wasm_memory_atomic_wait32((int *)word, (int)seen, -1);
        atomic_fetch_sub(&b->doacross_sleepers, 1);
        if (seen & bit) break;
    }
    sleep_ended(spins, began);
}

void __kmpc_doacross_wait(ident_t *loc, int32_t gtid, const int64_t *vec) {
    (void)loc, (void)gtid;
    doacross_sync(vec, 0);
}

void __kmpc_doacross_post(ident_t *loc, int32_t gtid, const int64_t *vec) {
    (void)loc, (void)gtid;
    doacross_sync(vec, 1);
}

void __kmpc_doacross_fini(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct doacross_loop *d = &me->doacross;
    struct dispatch_buffer *b = d->slot;
    d->active = 0;
    d->slot = NULL;
    d->flags = NULL;
    if (!b) return;
    if (!chain_team(me)) {
        slot_release(me, b);
        return;
    }
    weft_home_lock(&b->doacross_lock, 0, -1);
    uint32_t *flags = NULL;
    void **returns = NULL;
    if (++b->doacross_done == (uint32_t)me->team->nthreads) {
        flags = atomic_exchange(&b->doacross, NULL);
        returns = b->doacross_returns;
    }
    weft_home_unlock(&b->doacross_lock, 0);
    if (!flags) return;
    /* The bitmap is its allocator's block: given back like a task's. */
    if (returns && returns != me->returns) {
        pool_lock(me->team);
        task_memory_free(me, flags, returns);
        pool_unlock(me->team);
    } else {
        free(flags);
    }
}

/* ---- tasks ---------------------------------------------------------------
 * A deferred task goes to its team's queue, a list under the team's pool
 * lock. Members take tasks whenever they wait: in taskwait and at the end
 * of a taskgroup they take the newest (their own children first, depth
 * first), and in a task only its descendants (the scheduling constraint of
 * tied tasks, which keeps a lock held by a suspended task from being asked
 * for again on the same thread); at barriers and at the region's end they
 * take the oldest (in recursive programs, the largest pieces). A barrier
 * opens only when every member has arrived and every task of the team has
 * ended. A team of one, and the descendants of a final task, run tasks at
 * once (included tasks).
 *
 * Local mode: the queue's lock is a futex lock, the counters are atomics,
 * and waiters sleep on the team's event word, bumped when a task is queued
 * or ends and when a barrier opens.
 * Chain mode: the queue and every counter change under the pool lock, a
 * home lock, and waiters wait on a home condition variable: queueing a
 * task is a release (the task object and what its creator wrote before
 * reach home), taking one an acquire, and a task's end a release, so a
 * task run by another member sees its creator's writes up to its
 * creation, and whoever waits for it sees the task's writes. */

typedef int32_t (*task_entry_t)(int32_t, void *);

/* The head of the compiler's task object (kmp_task_t). */
struct task {
    void *shareds;
    task_entry_t routine;
    int32_t part_id;
    task_entry_t destructors; /* with TASK_DESTRUCTORS */
    int32_t priority;
};

/* The compiler's task flags (kmp_tasking_flags_t). */
#define TASK_FINAL 2
#define TASK_DESTRUCTORS 8

/* A dependence as the compiler passes it (kmp_depend_info), and its kinds. */
struct task_dep {
    uintptr_t addr;
    size_t len;
    uint8_t flags;
};
#define DEP_IN 1
#define DEP_INOUTSET 8
#define DEP_ALL_MEMORY 0x80

struct task_edge {
    struct task_node *to;
    struct task_edge *next;
    void **returns; /* its allocator's, as a task_node's */
};

/* A task reduction of a taskgroup: one private copy per member. */
struct taskred_input { /* kmp_taskred_input_t */
    void *shared;
    void *orig;
    size_t size;
    void (*init)(void *, void *);
    void (*fini)(void *);
    void (*comb)(void *, void *);
    int32_t flags;
};

struct task_reduction {
    struct taskred_input item;
    char *copies; /* nthreads copies of item.size bytes */
    /* A task modifier's: each member's private variable, by member (the
     * item its tasks name), else NULL. */
    void **keys;
};

struct taskgroup {
    _Atomic uint32_t count; /* its tasks not ended, descendants included */
    _Atomic uint32_t cancelled; /* its tasks not started are discarded */
    struct taskgroup *parent;
    struct task_reduction *reductions;
    int nreductions;
    int nthreads; /* of the team the reductions' copies serve */
    int owner;    /* a task modifier's: the member that made it */
};

static struct task *task_of(struct task_node *n) { return (struct task *)(n + 1); }
static struct task_node *node_of(void *task) { return (struct task_node *)task - 1; }

static void pool_lock(struct team *t) {
    if (global.chain) weft_home_lock(&t->pool_lock, 0, -1);
    else lock_acquire(&t->pool_lock);
}

static void pool_unlock(struct team *t) {
    if (global.chain) weft_home_unlock(&t->pool_lock, 0);
    else lock_release(&t->pool_lock);
}

/* Wakes members waiting for the team's tasks or barrier to change (chain
 * mode: with the pool lock held). */
static void pool_changed(struct team *t) {
    if (global.chain) {
        if (t->pool_waiters) weft_home_cond_wake(&t->event, 1);
        return;
    }
    atomic_fetch_add(&t->event.value, 1);
    waitword_wake(&t->event);
}

/* Waits for pool_changed (chain mode, the pool lock held). */
static void pool_wait(struct team *t) {
    t->pool_waiters++;
    weft_home_cond_wait(&t->event, &t->pool_lock);
    t->pool_waiters--;
}

static void queue_push(struct team *t, struct task_node *n) {
    n->next = NULL;
    n->prev = t->queue_tail;
    if (t->queue_tail) t->queue_tail->next = n;
    else t->queue_head = n;
    t->queue_tail = n;
    atomic_fetch_add(&t->queued, 1);
}

static void queue_remove(struct team *t, struct task_node *n) {
    if (n->prev) n->prev->next = n->next;
    else t->queue_head = n->next;
    if (n->next) n->next->prev = n->prev;
    else t->queue_tail = n->prev;
    n->next = n->prev = NULL;
    atomic_fetch_sub(&t->queued, 1);
}

static int descends(const struct task_node *n, const struct task_node *ancestor) {
    for (; n; n = n->parent)
        if (n == ancestor) return 1;
    return 0;
}

/* How far a task looks through the queue for one of its descendants. */
#define DESCENDANT_SCAN 64

/* A task `me` may run now, out of the queue (pool lock held); NULL if none. */
static struct task_node *queue_take(struct omp_thread *me, int newest) {
    struct team *t = me->team;
    struct task_node *n;
    if (!me->task->implicit) {
        int scanned = 0;
        for (n = t->queue_tail; n && scanned < DESCENDANT_SCAN; n = n->prev, scanned++)
            if (descends(n, me->task)) break;
        if (scanned == DESCENDANT_SCAN) n = NULL;
    } else {
        n = newest ? t->queue_tail : t->queue_head;
    }
    if (n) queue_remove(t, n);
    return n;
}

/* Memory of tasks in chain mode. A chained member allocates from its own
 * heap arena, and a free of another thread's block can only be deferred
 * to the freeing thread's end (arena.c), which for crew members is the
 * program's end: a task object created by one member and ended by
 * another would stay allocated. So the memory of a task (the object, its
 * dependences, the edges to it) goes back to the thread that allocated
 * it: another member links it into its allocator's list (`returns`, in
 * the crew, which outlives teams) holding the pool lock, and the
 * allocator takes the list holding the pool lock (it sees every block
 * given back before its acquire) and frees the blocks into its own heap.
 * A block given back is dead, so the list runs through its first word. */
static void task_memory_free(struct omp_thread *me, void *block, void **returns) {
    if (!block) return;
    if (!returns || returns == me->returns) {
        free(block);
        return;
    }
    *(void **)block = *returns;
    *returns = block;
}

/* The blocks given back to `me` (pool lock held): returned_free frees them
 * once the lock is let go. */
static void *returns_take(struct omp_thread *me) {
    if (!me->returns || !*me->returns) return NULL;
    void *list = *me->returns;
    *me->returns = NULL;
    return list;
}

static void returned_free(void *list) {
    while (list) {
        void *next = *(void **)list;
        free(list);
        list = next;
    }
}

/* References: a task holds one on itself until it ends and one on its
 * parent until it is freed, so a parent outlives its children (they point
 * at it). Implicit tasks live on their thread's stack and are not counted.
 * Chain mode: called with the pool lock held whenever another member may
 * hold a reference too. */
static void node_ref(struct task_node *n) {
    if (!n->implicit) atomic_fetch_add(&n->refs, 1);
}

/* ---- task memory cache ---------------------------------------------------
 * Recursive programs make and end tasks by the hundred thousand, most of
 * them run at once in their creator (below a final or if cutoff, BOTS'
 * style). A task's block goes back to a short list of the thread that
 * ends it instead of to free(), and that thread's next task of at most its
 * size takes it. Only a block of the ending thread's own heap is kept (in
 * chain mode, one that would go back to this thread anyway). */

#define TASK_CACHE 8
#define TASK_CACHE_LARGEST 2048

static _Thread_local struct {
    void *blocks[TASK_CACHE];
    uint32_t sizes[TASK_CACHE];
    int count;
} task_cache;

/* A zeroed block of `size` bytes for a task (its node's block_size set),
 * or NULL. */
static struct task_node *task_block_take(size_t size) {
    for (int i = task_cache.count - 1; i >= 0; i--) {
        if (task_cache.sizes[i] < size) continue;
        struct task_node *n = task_cache.blocks[i];
        uint32_t block = task_cache.sizes[i];
        int last = --task_cache.count;
        task_cache.blocks[i] = task_cache.blocks[last];
        task_cache.sizes[i] = task_cache.sizes[last];
        memset(n, 0, block);
        n->block_size = block;
        return n;
    }
    struct task_node *n = calloc(1, size);
    if (n && size <= TASK_CACHE_LARGEST) n->block_size = (uint32_t)size;
    return n;
}

/* A task's block, ended on the thread whose heap it is part of. */
static void task_block_give(struct task_node *n) {
    uint32_t block = n->block_size;
    if (block == 0 || task_cache.count == TASK_CACHE) {
        free(n);
        return;
    }
    task_cache.blocks[task_cache.count] = n;
    task_cache.sizes[task_cache.count++] = block;
}

/* The thread's kept blocks go back to its heap (a member that leaves). */
static void task_cache_drain(void) {
    while (task_cache.count) free(task_cache.blocks[--task_cache.count]);
}

static void node_release(struct omp_thread *me, struct task_node *n) {
    while (n && !n->implicit && atomic_fetch_sub(&n->refs, 1) == 1) {
        struct task_node *parent = n->parent;
        struct task *t = task_of(n);
        if ((n->flags & TASK_DESTRUCTORS) && t->destructors) t->destructors(me->gtid, t);
        task_memory_free(me, n->deps, n->returns);
        if (!n->returns || n->returns == me->returns) task_block_give(n);
        else task_memory_free(me, n, n->returns);
        n = parent;
    }
}

static int deps_conflict(const struct task_dep *a, const struct task_dep *b) {
    if ((a->flags & DEP_ALL_MEMORY) || (b->flags & DEP_ALL_MEMORY)) return 1;
    if (a->addr != b->addr) return 0;
    if (a->flags == DEP_IN && b->flags == DEP_IN) return 0;
    if (a->flags == DEP_INOUTSET && b->flags == DEP_INOUTSET) return 0;
    return 1; /* out, inout, mutexinoutset (run one after another) */
}

static int node_conflicts(const struct task_node *n, const struct task_dep *deps, int32_t ndeps) {
    for (int32_t i = 0; i < n->ndeps; i++)
        for (int32_t j = 0; j < ndeps; j++)
            if (deps_conflict(&n->deps[i], &deps[j])) return 1;
    return 0;
}

/* A new child of `parent` with dependences (pool lock held): an edge from
 * every unfinished earlier sibling it conflicts with. How many it waits for. */
static uint32_t deps_register(struct task_node *parent, struct task_node *n) {
    for (struct task_node *s = parent->dep_children; s; s = s->dep_next) {
        if (!node_conflicts(s, n->deps, n->ndeps)) continue;
        struct task_edge *e = malloc(sizeof *e);
        if (!e) fail("out of memory for a task dependence");
        e->returns = n->returns; /* n's creator is the caller */
        e->to = n;
        e->next = s->successors;
        s->successors = e;
        n->predecessors++;
    }
    n->dep_next = parent->dep_children;
    parent->dep_children = n;
    return n->predecessors;
}

/* `n` ended (pool lock held): it leaves its parent's list, and successors
 * it was the last predecessor of go to the queue. */
static void deps_release(struct omp_thread *me, struct team *t, struct task_node *n) {
    for (struct task_node **p = &n->parent->dep_children; *p; p = &(*p)->dep_next) {
        if (*p == n) {
            *p = n->dep_next;
            break;
        }
    }
    for (struct task_edge *e = n->successors, *next; e; e = next) {
        next = e->next;
        if (--e->to->predecessors == 0) queue_push(t, e->to);
        task_memory_free(me, e, e->returns);
    }
    n->successors = NULL;
}

/* Whether an earlier unfinished child of `parent` conflicts with `deps`
 * (pool lock held). */
static int deps_pending(const struct task_node *parent, const struct task_dep *deps,
                        int32_t ndeps) {
    for (const struct task_node *s = parent->dep_children; s; s = s->dep_next)
        if (node_conflicts(s, deps, ndeps)) return 1;
    return 0;
}

static void task_execute(struct omp_thread *me, struct task_node *n);
static void task_body(struct omp_thread *me, struct task_node *n);
static void task_finish_held(struct omp_thread *me, struct task_node *n);
static void detachable_included(struct task_node *n);

enum wait_kind { WAIT_CHILDREN, WAIT_GROUP, WAIT_TEAM, WAIT_DEPS, WAIT_BARRIER };

struct wait_for {
    enum wait_kind kind;
    struct taskgroup *group;
    const struct task_dep *deps;
    int32_t ndeps;
    uint32_t generation; /* of the barrier waited at */
};

/* Whether the barrier of `generation` is open; it opens when every member
 * has arrived and the team's tasks have all ended (t->work is then exactly
 * nthreads << 32): one atomic operation sees both. */
static int barrier_open(struct team *t, uint32_t generation) {
    if (atomic_load(&t->barrier_generation) != generation) return 1;
    uint64_t all = (uint64_t)t->nthreads << 32, expected = all;
    if (atomic_load(&t->work) != all || !atomic_compare_exchange_strong(&t->work, &expected, 0))
        return 0;
    atomic_store(&t->barrier_generation, generation + 1);
    pool_changed(t);
    return 1;
}

/* Whether the wait is over (chain mode, and WAIT_DEPS: pool lock held). */
static int wait_over(struct omp_thread *me, const struct wait_for *w) {
    switch (w->kind) {
    case WAIT_CHILDREN: return atomic_load(&me->task->children) == 0;
    case WAIT_GROUP: return atomic_load(&w->group->count) == 0;
    case WAIT_TEAM: return (uint32_t)atomic_load(&me->team->work) == 0;
    case WAIT_DEPS: return !deps_pending(me->task, w->deps, w->ndeps);
    case WAIT_BARRIER: return barrier_open(me->team, w->generation);
    }
    return 1;
}

/* Runs queued tasks until the wait is over: the newest first, but at
 * barriers and the region's end the oldest. A barrier's arrival is counted
 * here (in chain mode under the same hold of the pool lock). */
static void tasks_wait(struct omp_thread *me, struct wait_for *w) {
    struct team *t = me->team;
    int newest = w->kind != WAIT_TEAM && w->kind != WAIT_BARRIER;
    if (global.chain) pool_lock(t);
    if (w->kind == WAIT_BARRIER) {
        w->generation = atomic_load(&t->barrier_generation);
        atomic_fetch_add(&t->work, 1ull << 32);
    }
    if (global.chain) {
        void *returned = returns_take(me);
        while (!wait_over(me, w)) {
            struct task_node *n = queue_take(me, newest);
            if (!n) {
                pool_wait(t);
                continue;
            }
            pool_unlock(t);
            task_body(me, n);
            /* The task's end and the next look at the queue share one
             * hold of the lock: one sync point fewer per task. */
            pool_lock(t);
            task_finish_held(me, n);
        }
        pool_unlock(t);
        returned_free(returned);
        return;
    }
    for (;;) {
        uint32_t seen = atomic_load(&t->event.value);
        int over;
        if (w->kind == WAIT_DEPS) {
            lock_acquire(&t->pool_lock);
            over = wait_over(me, w);
            lock_release(&t->pool_lock);
        } else {
            over = wait_over(me, w);
        }
        if (over) return;
        if (atomic_load(&t->queued)) {
            lock_acquire(&t->pool_lock);
            struct task_node *n = queue_take(me, newest);
            lock_release(&t->pool_lock);
            if (n) {
                task_execute(me, n);
                continue;
            }
        }
        waitword_wait(&t->event, seen);
    }
}

/* The implicit barrier at a region's end, for tasks: none outlives it. */
static void tasks_drain(struct omp_thread *me) {
    struct wait_for w = {.kind = WAIT_TEAM};
    tasks_wait(me, &w);
}

/* Chain mode, a region whose barriers are home barriers: one sync call
 * each. A member that queued tasks since its last barrier first waits
 * until the team's tasks have ended, running them; the others go straight
 * to the home barrier, so every task has ended when it opens (a task is
 * only created by a member not yet there, which then waits for it). Only
 * members that queued tasks run them here: members waiting at the home
 * barrier cannot, hence the other kind of barrier for regions that follow
 * one that used tasks. (Deciding after the barrier from the count of
 * unfinished tasks is not possible: the main thread reads the home memory
 * itself, where members that went on already change it.) */
/* Runs the tasks this member queued since its last barrier (chain mode's
 * barriers that do not run tasks: none may outlive them). */
static void drain_own_tasks(struct omp_thread *me) {
    if (me->queued_tasks) {
        tasks_drain(me);
        me->queued_tasks = 0;
    }
}

static void home_barrier(struct omp_thread *me, const void *addr) {
    drain_own_tasks(me);
    weft_home_barrier(addr, (uint32_t)me->team->nthreads);
}

/* A barrier of the team that runs queued tasks while it waits. */
static void team_barrier(struct omp_thread *me) {
    struct team *t = me->team;
    if (t->nthreads <= 1) return;
    if (global.chain && !t->task_barriers) {
        home_barrier(me, &t->barrier_generation); /* unused by this kind */
        return;
    }
    struct wait_for w = {.kind = WAIT_BARRIER};
    tasks_wait(me, &w);
}

/* Chain mode, the end of a region: the join, where every member's writes
 * go home, after the team's tasks (which members that arrived early run
 * too when the region's barriers run tasks). */
static void region_end_chain(struct omp_thread *me) {
    struct team *t = me->team;
    if (t->task_barriers) {
        struct wait_for w = {.kind = WAIT_BARRIER};
        tasks_wait(me, &w);
        weft_home_barrier(&t->running, (uint32_t)t->nthreads);
        return;
    }
    if (!t->crew) {
        home_barrier(me, &t->running);
        return;
    }
    drain_own_tasks(me);
    /* A crew's region: the members' releases, the owner's acquires. */
    if (me->tid != 0) {
        weft_home_sem_post(&t->crew->done_sem);
        return;
    }
    for (int i = 1; i < t->nthreads; i++) weft_home_sem_wait(&t->crew->done_sem);
}

/* A deferred task ended: its parent, taskgroup and team count it out. */
static void task_finish_held(struct omp_thread *me, struct task_node *n) {
    struct team *t = n->team;
    if (n->detachable && !n->fulfilled) {
        n->body_done = 1; /* omp_fulfill_event completes it */
        return;
    }
    if (n->ndeps) deps_release(me, t, n);
    if (n->group) atomic_fetch_sub(&n->group->count, 1);
    atomic_fetch_sub(&n->parent->children, 1);
    node_release(me, n);
    atomic_fetch_sub(&t->work, 1);
    pool_changed(t);
}

/* The same, taking the pool lock where it is needed. */
static void task_finish(struct omp_thread *me, struct task_node *n) {
    /* The node may be freed by task_finish_held: its team is read first. */
    struct team *t = n->team;
    int locked = global.chain || n->ndeps || n->detachable;
    if (locked) pool_lock(t);
    task_finish_held(me, n);
    if (locked) pool_unlock(t);
}

/* Runs a task's body as the thread's current task. */
/* Whether task `n` is discarded rather than run: its region or one of
 * its taskgroups was cancelled before it started (a detachable task
 * runs, so that its event is fulfilled). In chain mode the member took
 * the task from the queue under the pool lock, an acquire that brought
 * a taskgroup's request. */
static int task_discarded(struct omp_thread *me, struct task_node *n) {
    if (!global.cancellation || n->detachable) return 0;
    for (const struct taskgroup *g = n->group; g; g = g->parent)
        if (group_cancelled(g)) return 1;
    return cancel_read(me, &me->team->cancel_parallel) != 0;
}

static void group_cancel(struct omp_thread *me, struct taskgroup *g) {
    /* In chain mode the pool lock's release carries the request to the
     * members that take the group's tasks. */
    pool_lock(me->team);
    atomic_store(&g->cancelled, 1);
    pool_unlock(me->team);
}

static int group_cancelled(const struct taskgroup *g) { return g && atomic_load(&g->cancelled); }

static void task_body(struct omp_thread *me, struct task_node *n) {
    if (task_discarded(me, n)) return;
    struct task_node *saved_task = me->task;
    struct taskgroup *saved_group = me->group;
    int saved_thread_limit = me->icv.thread_limit;
    me->task = n;
    me->group = n->group;
    do {
        n->resume = 0;
        task_of(n)->routine(me->gtid, task_of(n));
    } while (n->resume);
    me->task = saved_task;
    me->group = saved_group;
    me->icv.thread_limit = saved_thread_limit;
}

static void task_execute(struct omp_thread *me, struct task_node *n) {
    task_body(me, n);
    task_finish(me, n);
}

/* Whether tasks created by `me` now may be deferred: not in a team of one,
 * nor in a final task. */
static int tasks_deferred(struct omp_thread *me) {
    return me->team->nthreads > 1 && !me->task->final;
}

/* A task that runs at once in its creator (included or undeferred) takes
 * its place in the task tree; another member may touch the parent's
 * references unless the team is of one or the parent is final. */
static int tree_shared(struct omp_thread *me) {
    return global.chain && me->team->nthreads > 1 && !me->task->final;
}

static void task_adopt(struct omp_thread *me, struct task_node *n) {
    n->team = me->team;
    n->parent = me->task;
    n->group = me->group;
    n->final = me->task->final || (n->flags & TASK_FINAL);
    int shared = tree_shared(me);
    if (shared) pool_lock(me->team);
    node_ref(n->parent);
    if (shared) pool_unlock(me->team);
}

static void task_drop(struct omp_thread *me, struct task_node *n) {
    int shared = tree_shared(me);
    if (shared) pool_lock(me->team);
    node_release(me, n);
    if (shared) pool_unlock(me->team);
}

/* `__kmpc_omp_task_alloc` (omp_tasks.c). */
void *weft_omp_task_alloc(ident_t *loc, int32_t gtid, int32_t flags, size_t task_size,
                          size_t shareds_size, task_entry_t routine) {
    (void)loc, (void)gtid;
    size_t head = sizeof(struct task_node);
    size_t body = (task_size + 7) & ~(size_t)7;
    if (task_size < sizeof(struct task) - 2 * sizeof(int32_t) || body < task_size ||
        body > UINT32_MAX || shareds_size > UINT32_MAX || shareds_size > SIZE_MAX - head - body)
        fail("a task larger than the address space");
    struct task_node *n = task_block_take(head + body + shareds_size);
    if (!n) fail("out of memory for a task");
    n->returns = self()->returns;
    n->flags = flags;
    n->refs = 1;
    n->task_size = (uint32_t)body;
    n->shareds_size = (uint32_t)shareds_size;
    struct task *t = task_of(n);
    t->shareds = shareds_size ? (char *)t + body : NULL;
    t->routine = routine;
    return t;
}

/* Queues a task, or runs it at once when nobody could help or it is in a
 * final task; `deps` are the caller's, copied here. */
static void task_submit(struct omp_thread *me, struct task_node *n, const struct task_dep *deps,
                        int32_t ndeps, const struct task_dep *more, int32_t nmore) {
    struct team *t = me->team;
    if (!tasks_deferred(me)) {
        detachable_included(n);
        task_adopt(me, n);
        task_body(me, n);
        task_drop(me, n);
        return;
    }
    if (ndeps + nmore > 0) {
        n->deps = malloc((size_t)(ndeps + nmore) * sizeof *n->deps);
        if (!n->deps) fail("out of memory for task dependences");
        if (ndeps) memcpy(n->deps, deps, (size_t)ndeps * sizeof *deps);
        if (nmore) memcpy(n->deps + ndeps, more, (size_t)nmore * sizeof *more);
        n->ndeps = ndeps + nmore;
    }
    n->team = t;
    n->parent = me->task;
    n->group = me->group;
    n->final = (n->flags & TASK_FINAL) != 0;
    pool_lock(t);
    void *returned = returns_take(me);
    node_ref(n->parent);
    atomic_fetch_add(&n->parent->children, 1);
    if (n->group) atomic_fetch_add(&n->group->count, 1);
    atomic_fetch_add(&t->work, 1);
    t->deferred++;
    me->queued_tasks = 1;
    if (!n->ndeps || deps_register(me->task, n) == 0) queue_push(t, n);
    pool_changed(t);
    pool_unlock(t);
    returned_free(returned);
}

int32_t __kmpc_omp_task(ident_t *loc, int32_t gtid, void *task) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    /* An untied task splits at its scheduling points: it records its next
     * part, queues itself and returns. It goes on here, on the same
     * thread (as a tied task would, which OpenMP allows). */
    if (node_of(task) == me->task) {
        me->task->resume = 1;
        return 0;
    }
    task_submit(me, node_of(task), NULL, 0, NULL, 0);
    return 0;
}

/* The `affinity` clause of a task: a hint where to run it, which a runtime
 * may ignore; Weft's members have no placement to follow. */
int32_t __kmpc_omp_reg_task_with_affinity(ident_t *loc, int32_t gtid, void *task, int32_t naffins,
                                          void *affinities) {
    (void)loc, (void)gtid, (void)task, (void)naffins, (void)affinities;
    return 0;
}

static int32_t checked_deps(int32_t n) {
    if (n < 0 || n > (1 << 20)) fail("a task with more dependences than supported (2^20)");
    return n;
}

int32_t __kmpc_omp_task_with_deps(ident_t *loc, int32_t gtid, void *task, int32_t ndeps,
                                  void *deps, int32_t ndeps_noalias, void *noalias) {
    (void)loc, (void)gtid;
    task_submit(self(), node_of(task), deps, checked_deps(ndeps), noalias,
                checked_deps(ndeps_noalias));
    return 0;
}

/* Before an undeferred task with dependences (if(0)), and `taskwait
 * depend`: the earlier siblings it depends on end first. */
static void wait_deps(const struct task_dep *deps, int32_t ndeps) {
    struct omp_thread *me = self();
    if (ndeps <= 0 || !tasks_deferred(me)) return;
    struct wait_for w = {.kind = WAIT_DEPS, .deps = deps, .ndeps = checked_deps(ndeps)};
    tasks_wait(me, &w);
}

void __kmpc_omp_wait_deps(ident_t *loc, int32_t gtid, int32_t ndeps, void *deps,
                          int32_t ndeps_noalias, void *noalias) {
    (void)loc, (void)gtid;
    wait_deps(deps, ndeps);
    wait_deps(noalias, ndeps_noalias);
}

void __kmpc_omp_taskwait_deps_51(ident_t *loc, int32_t gtid, int32_t ndeps, void *deps,
                                 int32_t ndeps_noalias, void *noalias, int32_t has_no_wait) {
    (void)has_no_wait;
    __kmpc_omp_wait_deps(loc, gtid, ndeps, deps, ndeps_noalias, noalias);
}

/* if(0): the compiler calls the task's routine itself between these. */
void __kmpc_omp_task_begin_if0(ident_t *loc, int32_t gtid, void *task) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct task_node *n = node_of(task);
    detachable_included(n);
    task_adopt(me, n);
    me->task = n;
    n->outer_thread_limit = me->icv.thread_limit;
}

void __kmpc_omp_task_complete_if0(ident_t *loc, int32_t gtid, void *task) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct task_node *n = node_of(task);
    /* The compiler ran the first part of an untied task, which queued
     * itself at a scheduling point: its other parts run here, as
     * task_body runs them. */
    while (n->resume) {
        n->resume = 0;
        task_of(n)->routine(me->gtid, task_of(n));
    }
    me->icv.thread_limit = n->outer_thread_limit;
    me->task = n->parent;
    task_drop(me, n);
}

int32_t __kmpc_omp_taskwait(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    if (!tasks_deferred(me)) return 0;
    struct wait_for w = {.kind = WAIT_CHILDREN};
    tasks_wait(me, &w);
    return 0;
}

/* A task scheduling point: run one queued task if there is one. */
int32_t __kmpc_omp_taskyield(ident_t *loc, int32_t gtid, int32_t end_part) {
    (void)loc, (void)gtid, (void)end_part;
    struct omp_thread *me = self();
    struct team *t = me->team;
    if (!tasks_deferred(me) || (!global.chain && !atomic_load(&t->queued))) return 0;
    pool_lock(t);
    struct task_node *n = queue_take(me, 1);
    pool_unlock(t);
    if (n) task_execute(me, n);
    return 0;
}

void __kmpc_taskgroup(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct taskgroup *g = calloc(1, sizeof *g);
    if (!g) fail("out of memory for a taskgroup");
    g->parent = me->group;
    me->group = g;
}

static void reductions_finish(struct taskgroup *g) {
    for (int i = 0; i < g->nreductions; i++) {
        struct task_reduction *r = &g->reductions[i];
        for (int k = 0; k < g->nthreads; k++) {
            void *copy = r->copies + (size_t)k * r->item.size;
            r->item.comb(r->item.shared, copy);
            if (r->item.fini) r->item.fini(copy);
        }
        free(r->copies);
    }
    free(g->reductions);
}

void __kmpc_end_taskgroup(ident_t *loc, int32_t gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = self();
    struct taskgroup *g = me->group;
    if (!g) return;
    if (me->team->nthreads > 1) {
        struct wait_for w = {.kind = WAIT_GROUP, .group = g};
        tasks_wait(me, &w);
    }
    reductions_finish(g);
    me->group = g->parent;
    free(g);
}

/* Task reductions (taskgroup task_reduction, taskloop reduction): a
 * private copy per member of the team, combined into the shared variable
 * when the taskgroup ends. */
/* `num` task reductions of `in` into g, one copy per member of a team of
 * `nthreads`, each initialised from the item's original. */
static void reductions_make(struct taskgroup *g, int num, const struct taskred_input *in,
                            int nthreads) {
    g->nthreads = nthreads;
    g->reductions = calloc((size_t)num, sizeof *g->reductions);
    if (!g->reductions) fail("out of memory for a task reduction");
    g->nreductions = num;
    for (int i = 0; i < num; i++) {
        struct task_reduction *r = &g->reductions[i];
        r->item = in[i];
        if (!r->item.comb) fail("a task reduction without a combiner");
        if (r->item.size == 0 || r->item.size > (SIZE_MAX >> 8) / (size_t)g->nthreads)
            fail("a task reduction larger than the address space");
        r->copies = malloc(r->item.size * (size_t)g->nthreads);
        if (!r->copies) fail("out of memory for a task reduction");
        void *orig = r->item.orig ? r->item.orig : r->item.shared;
        for (int k = 0; k < g->nthreads; k++) {
            void *copy = r->copies + (size_t)k * r->item.size;
            if (r->item.init) r->item.init(copy, orig);
            else memset(copy, 0, r->item.size);
        }
    }
}

void *__kmpc_taskred_init(int32_t gtid, int32_t num, void *data) {
    (void)gtid;
    struct omp_thread *me = self();
    struct taskgroup *g = me->group;
    if (!g) fail("a task reduction outside a taskgroup");
    if (g->nreductions || num <= 0 || num > 4096) fail("a taskgroup with task reductions twice");
    reductions_make(g, num, data, me->team->nthreads);
    return g;
}

/* `reduction(task, ...)` on a parallel region (is_ws 0) or a work-sharing
 * construct (1): every member calls this. The first makes the
 * reductions, one private copy per member, for the tasks of the
 * construct (in_reduction names an item by the private variable of the
 * member that made the task, hence the keys); each member then counts its
 * tasks in a taskgroup of its own. */
void *__kmpc_taskred_modifier_init(ident_t *loc, int32_t gtid, int32_t is_ws, int32_t num,
                                   void *data) {
    struct omp_thread *me = self();
    struct team *t = me->team;
    struct taskred_input *in = data;
    if (num <= 0 || num > 4096) fail("a task reduction of an unsupported number of items");
    pool_lock(t);
    struct taskgroup *shared = t->task_modifier[is_ws != 0];
    if (!shared) {
        shared = calloc(1, sizeof *shared);
        if (!shared) fail("out of memory for a task reduction");
        shared->owner = me->tid;
        reductions_make(shared, num, in, t->nthreads);
        for (int i = 0; i < num; i++) {
            shared->reductions[i].keys = calloc((size_t)t->nthreads, sizeof(void *));
            if (!shared->reductions[i].keys) fail("out of memory for a task reduction");
        }
        t->task_modifier[is_ws != 0] = shared;
    } else if (shared->nreductions != num) {
        fail("members of a team disagree on a task reduction's items");
    }
    for (int i = 0; i < num; i++) shared->reductions[i].keys[me->tid] = in[i].shared;
    pool_unlock(t);
    __kmpc_taskgroup(loc, gtid);
    return shared;
}

/* The end of such a construct: once every member's tasks have ended, the
 * member that made the reductions combines the copies into its own
 * private variable (which the construct's ordinary reduction then
 * combines with the others') and lets them go; a second barrier keeps the
 * next construct from finding them. */
void __kmpc_task_reduction_modifier_fini(ident_t *loc, int32_t gtid, int32_t is_ws) {
    struct omp_thread *me = self();
    struct team *t = me->team;
    __kmpc_end_taskgroup(loc, gtid);
    team_barrier(me);
    struct taskgroup *shared = t->task_modifier[is_ws != 0];
    if (shared && shared->owner == me->tid) {
        for (int i = 0; i < shared->nreductions; i++) free(shared->reductions[i].keys);
        reductions_finish(shared);
        free(shared);
        pool_lock(t);
        t->task_modifier[is_ws != 0] = NULL;
        pool_unlock(t);
    }
    team_barrier(me);
}

void *__kmpc_task_reduction_get_th_data(int32_t gtid, void *tg, void *item) {
    (void)gtid;
    struct omp_thread *me = self();
    for (struct taskgroup *g = tg ? tg : me->group; g; g = g->parent) {
        for (int i = 0; i < g->nreductions; i++) {
            struct task_reduction *r = &g->reductions[i];
            size_t all = r->item.size * (size_t)g->nthreads;
            if ((char *)item >= r->copies && (char *)item < r->copies + all) return item;
            int named = item == r->item.shared || item == r->item.orig;
            for (int m = 0; r->keys && !named && m < g->nthreads; m++) named = item == r->keys[m];
            if (named) {
                int k = me->tid < g->nthreads ? me->tid : 0;
                return r->copies + (size_t)k * r->item.size;
            }
        }
    }
    fail("a task reduction item outside any taskgroup's reductions");
}

/* A taskloop: the pattern task copied once per chunk of iterations (the
 * compiler's task_dup copies what memcpy cannot and marks the last chunk
 * for lastprivate), each queued as a task. */
void __kmpc_taskloop(ident_t *loc, int32_t gtid, void *task, int32_t if_val, uint64_t *lb,
                     uint64_t *ub, int64_t st, int32_t nogroup, int32_t sched, uint64_t grainsize,
                     void *task_dup) {
    struct omp_thread *me = self();
    struct task_node *pattern = node_of(task);
    void (*dup)(void *, void *, int32_t) = (void (*)(void *, void *, int32_t))task_dup;
    uint64_t lower = *lb, upper = *ub, trip;
    if (st == 0) trip = 0;
    else if (st > 0) trip = (int64_t)upper < (int64_t)lower ? 0 : (upper - lower) / (uint64_t)st + 1;
    else trip = (int64_t)upper > (int64_t)lower ? 0 : (lower - upper) / -(uint64_t)st + 1;
    size_t lb_at = (size_t)((char *)lb - (char *)task), ub_at = (size_t)((char *)ub - (char *)task);
    if (lb_at + 8 > pattern->task_size || ub_at + 8 > pattern->task_size)
        fail("a taskloop whose bounds are outside its task");
    uint64_t ntasks;
    switch (sched) {
    case 1: ntasks = grainsize ? trip / grainsize : trip; break; /* grainsize */
    case 2: ntasks = grainsize; break;                            /* num_tasks */
    default: ntasks = (uint64_t)me->team->nthreads * 4; break;
    }
    if (ntasks > trip) ntasks = trip;
    if (ntasks == 0 && trip) ntasks = 1;
    if (!nogroup) __kmpc_taskgroup(loc, gtid);
    size_t bytes = sizeof(struct task_node) + pattern->task_size + pattern->shareds_size;
    for (uint64_t i = 0; i < ntasks; i++) {
        uint64_t begin = i * (trip / ntasks) + (i < trip % ntasks ? i : trip % ntasks);
        uint64_t count = trip / ntasks + (i < trip % ntasks);
        struct task_node *n = malloc(bytes);
        if (!n) fail("out of memory for a taskloop's task");
        memcpy(n, pattern, bytes);
        memset(n, 0, sizeof *n);
        n->returns = me->returns;
        n->flags = pattern->flags;
        n->refs = 1;
        n->task_size = pattern->task_size;
        n->shareds_size = pattern->shareds_size;
        struct task *t = task_of(n);
        if (t->shareds) t->shareds = (char *)t + n->task_size;
        uint64_t first = lower + begin * (uint64_t)st, last = lower + (begin + count - 1) * (uint64_t)st;
        memcpy((char *)t + lb_at, &first, 8);
        memcpy((char *)t + ub_at, &last, 8);
        if (dup) dup(t, task, i + 1 == ntasks);
        if (if_val) {
            task_submit(me, n, NULL, 0, NULL, 0);
        } else {
            task_adopt(me, n);
            task_body(me, n);
            task_drop(me, n);
        }
    }
    if ((pattern->flags & TASK_DESTRUCTORS) && task_of(pattern)->destructors)
        task_of(pattern)->destructors(gtid, task_of(pattern));
    free(pattern);
    if (!nogroup) __kmpc_end_taskgroup(loc, gtid);
}

void __kmpc_taskloop_5(ident_t *loc, int32_t gtid, void *task, int32_t if_val, uint64_t *lb,
                       uint64_t *ub, int64_t st, int32_t nogroup, int32_t sched,
                       uint64_t grainsize, int32_t modifier, void *task_dup) {
    (void)modifier; /* strict: the chunks are the same size either way here */
    __kmpc_taskloop(loc, gtid, task, if_val, lb, ub, st, nogroup, sched, grainsize, task_dup);
}

/* threadprivate without TLS (clang uses wasm TLS, so this is only for
 * objects it cannot place there): one copy per thread, found by address. */
struct private_copy {
    const void *data;
    void *copy;
    struct private_copy *next;
};
static _Thread_local struct private_copy *private_copies;

void *__kmpc_threadprivate(ident_t *loc, int32_t gtid, void *data, size_t size) {
    (void)loc, (void)gtid;
    if (self()->gtid == WEFT_MAIN_THREAD_ID) return data; /* the initial thread keeps it */
    for (struct private_copy *p = private_copies; p; p = p->next)
        if (p->data == data) return p->copy;
    struct private_copy *p = malloc(sizeof *p);
    void *copy = malloc(size ? size : 1);
    if (!p || !copy) fail("out of memory for a threadprivate copy");
    memcpy(copy, data, size);
    *p = (struct private_copy){data, copy, private_copies};
    private_copies = p;
    return copy;
}

void *__kmpc_threadprivate_cached(ident_t *loc, int32_t gtid, void *data, size_t size,
                                  void ***cache) {
    (void)cache;
    return __kmpc_threadprivate(loc, gtid, data, size);
}

/* ---- the omp_* API ---------------------------------------------------- */

void omp_set_num_threads(int n) {
    if (n > 0) self()->icv.nthreads = n;
}

int omp_get_num_threads(void) { return self()->team->nthreads; }

int omp_get_max_threads(void) {
    struct omp_thread *me = self();
    if (me->team->active_level >= global.max_active_levels) return 1;
    int limit = omp_get_thread_limit();
    return me->icv.nthreads < limit ? me->icv.nthreads : limit;
}

int omp_get_thread_num(void) { return self()->tid; }

int omp_get_num_procs(void) {
    read_environment();
    return global.procs;
}

int omp_in_parallel(void) { return self()->team->active_level > 0; }
void omp_set_dynamic(int on) { self()->icv.dynamic = on != 0; }
int omp_get_dynamic(void) { return self()->icv.dynamic; }
int omp_get_cancellation(void) {
    read_environment();
    return global.cancellation;
}

void omp_set_nested(int on) {
    read_environment();
    global.max_active_levels = on ? INT_MAX : 1;
}

int omp_get_nested(void) {
    read_environment();
    return global.max_active_levels > 1;
}

void omp_set_schedule(omp_sched_t kind, int chunk) {
    struct omp_thread *me = self();
    switch ((int)((unsigned)kind & ~(unsigned)omp_sched_monotonic)) {
    case omp_sched_static: me->icv.run_sched = SCHED_STATIC; break;
    case omp_sched_dynamic: me->icv.run_sched = SCHED_DYNAMIC; break;
    case omp_sched_guided: me->icv.run_sched = SCHED_GUIDED; break;
    case omp_sched_auto: me->icv.run_sched = SCHED_AUTO; break;
    default: return;
    }
    me->icv.run_chunk = chunk > 0 ? chunk : 0;
}

void omp_get_schedule(omp_sched_t *kind, int *chunk) {
    struct omp_thread *me = self();
    switch (me->icv.run_sched) {
    case SCHED_DYNAMIC: *kind = omp_sched_dynamic; break;
    case SCHED_GUIDED: *kind = omp_sched_guided; break;
    case SCHED_AUTO: *kind = omp_sched_auto; break;
    default: *kind = omp_sched_static; break;
    }
    *chunk = me->icv.run_chunk ? me->icv.run_chunk : (*kind == omp_sched_static ? 0 : 1);
}

int omp_get_thread_limit(void) {
    struct omp_thread *me = self();
    if (me->icv.thread_limit && me->icv.thread_limit < global.thread_limit)
        return me->icv.thread_limit;
    return global.thread_limit;
}

int omp_get_supported_active_levels(void) { return INT_MAX; }

void omp_set_max_active_levels(int levels) {
    read_environment();
    if (levels >= 0) global.max_active_levels = levels;
}

int omp_get_max_active_levels(void) {
    read_environment();
    return global.max_active_levels;
}

int omp_get_level(void) { return self()->team->level; }
int omp_get_active_level(void) { return self()->team->active_level; }

static struct team *team_at(int level, int *tid) {
    struct omp_thread *me = self();
    struct team *t = me->team;
    *tid = me->tid;
    if (level < 0 || level > t->level) return NULL;
    while (t->level > level) {
        *tid = t->parent_tid;
        t = t->parent;
    }
    return t;
}

int omp_get_ancestor_thread_num(int level) {
    int tid;
    return team_at(level, &tid) ? tid : -1;
}

int omp_get_team_size(int level) {
    int tid;
    struct team *t = team_at(level, &tid);
    return t ? t->nthreads : -1;
}

int omp_in_final(void) { return self()->task->final; }
omp_proc_bind_t omp_get_proc_bind(void) { return omp_proc_bind_false; }
int omp_get_num_places(void) { return 0; }
int omp_get_place_num(void) { return -1; }
/* No places: a place number is never valid, so these answer for none. */
int omp_get_place_num_procs(int place) { return (void)place, 0; }
void omp_get_place_proc_ids(int place, int *ids) { (void)place, (void)ids; }
int omp_get_partition_num_places(void) { return 0; }
void omp_get_partition_place_nums(int *places) { (void)places; }
/* A priority is a hint; the queue takes tasks in its own order. */
int omp_get_max_task_priority(void) {
    read_environment();
    return global.max_task_priority;
}

/* Nothing to give back: a pause outside every region succeeds and the
 * next region runs as before; inside one it fails, as the API says. */
int omp_pause_resource(omp_pause_resource_t kind, int device) {
    if ((kind != omp_pause_soft && kind != omp_pause_hard) || device != omp_get_initial_device())
        return -1;
    return omp_get_level() == 0 ? 0 : -1;
}

int omp_pause_resource_all(omp_pause_resource_t kind) {
    return omp_pause_resource(kind, omp_get_initial_device());
}
int omp_get_num_devices(void) { return 0; }
int omp_get_device_num(void) { return omp_get_initial_device(); }
int omp_get_default_device(void) { return 0; }
void omp_set_default_device(int device) { (void)device; }
int omp_get_initial_device(void) { return omp_get_num_devices(); }
int omp_is_initial_device(void) { return 1; }
int omp_get_num_teams(void) { return self()->icv.num_teams; }
int omp_get_team_num(void) { return self()->icv.team_num; }

/* The league size and thread_limit of later `teams` regions without
 * clauses (device-wide ICVs; 0: unset). */
void omp_set_num_teams(int num_teams) {
    read_environment();
    if (num_teams > 0) global.nteams = num_teams;
}

int omp_get_max_teams(void) {
    read_environment();
    return global.nteams;
}

void omp_set_teams_thread_limit(int thread_limit) {
    read_environment();
    if (thread_limit >= 0) global.teams_thread_limit = thread_limit;
}

int omp_get_teams_thread_limit(void) {
    read_environment();
    return global.teams_thread_limit;
}

double omp_get_wtime(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

double omp_get_wtick(void) { return 1e-9; }

/* ---- locks -------------------------------------------------------------- */

void omp_init_lock(omp_lock_t *lock) { atomic_store((_Atomic uint32_t *)&lock->state, 0); }

void omp_init_lock_with_hint(omp_lock_t *lock, omp_sync_hint_t hint) {
    (void)hint;
    omp_init_lock(lock);
}

void omp_destroy_lock(omp_lock_t *lock) { (void)lock; }

void omp_set_lock(omp_lock_t *lock) {
    read_environment();
    if (global.chain) weft_home_lock(lock, 0, -1);
    else lock_acquire((_Atomic uint32_t *)&lock->state);
}

void omp_unset_lock(omp_lock_t *lock) {
    if (global.chain) weft_home_unlock(lock, 0);
    else lock_release((_Atomic uint32_t *)&lock->state);
}

/* Chain mode: a test that failed gives the thread's worker slot up for a
 * moment. A loop of tests is a wait, and the holder may be queued for a
 * slot (it gave its own up at a wait while holding the lock): a poller
 * keeping its slot would never let it finish. The main thread holds no
 * slot. */
static int chain_test_result(int rc) {
    if (rc == 0) return 1;
    if (weft_chain_entry.arena) {
        weft_wait_begin();
        weft_wait_end();
    }
    return 0;
}

int omp_test_lock(omp_lock_t *lock) {
    read_environment();
    if (global.chain) return chain_test_result(weft_home_lock(lock, WEFT_SYNC_TRY, -1));
    return lock_try((_Atomic uint32_t *)&lock->state);
}

void omp_init_nest_lock(omp_nest_lock_t *lock) {
    atomic_store((_Atomic uint32_t *)&lock->state, 0);
    lock->owner = -1;
    lock->depth = 0;
}

void omp_init_nest_lock_with_hint(omp_nest_lock_t *lock, omp_sync_hint_t hint) {
    (void)hint;
    omp_init_nest_lock(lock);
}

void omp_destroy_nest_lock(omp_nest_lock_t *lock) { (void)lock; }

/* The owner field is written only by the holder, so a thread that reads
 * its own id there holds the lock. */
static int nest_owned(omp_nest_lock_t *lock, int32_t gtid) {
    return atomic_load((_Atomic int32_t *)&lock->owner) == gtid;
}

void omp_set_nest_lock(omp_nest_lock_t *lock) {
    struct omp_thread *me = self();
    if (global.chain) {
        weft_home_lock(lock, 1, -1);
        lock->depth++;
        return;
    }
    if (!nest_owned(lock, me->gtid)) {
        lock_acquire((_Atomic uint32_t *)&lock->state);
        atomic_store((_Atomic int32_t *)&lock->owner, me->gtid);
    }
    lock->depth++;
}

void omp_unset_nest_lock(omp_nest_lock_t *lock) {
    if (global.chain) {
        lock->depth--;
        weft_home_unlock(lock, 1);
        return;
    }
    if (--lock->depth == 0) {
        atomic_store((_Atomic int32_t *)&lock->owner, -1);
        lock_release((_Atomic uint32_t *)&lock->state);
    }
}

int omp_test_nest_lock(omp_nest_lock_t *lock) {
    struct omp_thread *me = self();
    if (global.chain) {
        if (!chain_test_result(weft_home_lock(lock, 1 | WEFT_SYNC_TRY, -1))) return 0;
        return ++lock->depth;
    }
    if (!nest_owned(lock, me->gtid)) {
        if (!lock_try((_Atomic uint32_t *)&lock->state)) return 0;
        atomic_store((_Atomic int32_t *)&lock->owner, me->gtid);
    }
    return ++lock->depth;
}

/* detach: the task's event is the task itself; it completes when its body
 * has ended and its event is fulfilled, whichever comes last (both under
 * the pool lock: in chain mode a fulfilment is a release that the
 * waiters for the task acquire). Only deferred tasks can wait for their
 * event: an included one (a team of one, a final task's descendant,
 * if(0)) would hold its creator. */
omp_event_handle_t __kmpc_task_allow_completion_event(ident_t *loc, int32_t gtid, void *task) {
    (void)loc, (void)gtid;
    node_of(task)->detachable = 1;
    return (omp_event_handle_t)(uintptr_t)task;
}

static void detachable_included(struct task_node *n) {
    if (n->detachable)
        fail("a detachable task that is not deferred (in a team of one, a final task or if(0)) "
             "is not supported");
}

void omp_fulfill_event(omp_event_handle_t event) {
    struct omp_thread *me = self();
    struct task_node *n = node_of((void *)(uintptr_t)event);
    struct team *t = n->team; /* task_finish_held may free the node */
    pool_lock(t);
    if (!n->detachable || n->fulfilled) fail("omp_fulfill_event: an event fulfilled twice");
    n->fulfilled = 1;
    if (n->body_done) task_finish_held(me, n);
    pool_unlock(t);
}

/* ---- memory allocators ----------------------------------------------------
 * One kind of memory: every memory space is the heap (in chain mode the
 * thread's arena), and the predefined allocators are malloc with the
 * default alignment. An allocator made from traits keeps its alignment
 * and fallback; other traits (pool size, access, pinning, partition)
 * describe memory this machine has only one of and change nothing. The
 * `allocate` clause and `depobj` come here through __kmpc_alloc and
 * __kmpc_free. */

struct allocator {
    uint32_t magic;
    size_t alignment;
    int fallback; /* omp_atv_*_fb: what a failed allocation does */
    omp_allocator_handle_t fb_data;
};

#define ALLOCATOR_MAGIC 0x4f4d5041u /* "OMPA" */

static _Thread_local omp_allocator_handle_t default_allocator = omp_default_mem_alloc;

/* The allocator a handle names, NULL for a predefined one. */
static struct allocator *allocator_of(omp_allocator_handle_t handle) {
    if ((uintptr_t)handle <= (uintptr_t)omp_thread_mem_alloc) return NULL;
    struct allocator *a = (struct allocator *)(uintptr_t)handle;
    if (a->magic != ALLOCATOR_MAGIC) fail("an OpenMP allocator handle that no omp_init_allocator made");
    return a;
}

omp_allocator_handle_t omp_init_allocator(omp_memspace_handle_t space, int ntraits,
                                          const omp_alloctrait_t *traits) {
    if ((uintptr_t)space > (uintptr_t)omp_low_lat_mem_space || ntraits < 0) return omp_null_allocator;
    struct allocator *a = calloc(1, sizeof *a);
    if (!a) return omp_null_allocator;
    a->magic = ALLOCATOR_MAGIC;
    a->alignment = 16;
    a->fallback = omp_atv_default_mem_fb;
    for (int i = 0; i < ntraits; i++) {
        uintptr_t v = traits[i].value;
        switch (traits[i].key) {
        case omp_atk_alignment:
            /* A power of two, as the specification requires. */
            if (v == 0 || (v & (v - 1))) {
                free(a);
                return omp_null_allocator;
            }
            if (v > a->alignment) a->alignment = v;
            break;
        case omp_atk_fallback: a->fallback = (int)v; break;
        case omp_atk_fb_data: a->fb_data = (omp_allocator_handle_t)v; break;
        default: break;
        }
    }
    return (omp_allocator_handle_t)(uintptr_t)a;
}

void omp_destroy_allocator(omp_allocator_handle_t handle) {
    struct allocator *a = allocator_of(handle);
    if (!a) return;
    a->magic = 0;
    free(a);
}

/* The `uses_allocators` clause's calls. */
omp_allocator_handle_t __kmpc_init_allocator(int32_t gtid, omp_memspace_handle_t space,
                                             int ntraits, const omp_alloctrait_t traits[]) {
    (void)gtid;
    return omp_init_allocator(space, ntraits, traits);
}

void __kmpc_destroy_allocator(int32_t gtid, omp_allocator_handle_t handle) {
    (void)gtid;
    omp_destroy_allocator(handle);
}

void omp_set_default_allocator(omp_allocator_handle_t handle) { default_allocator = handle; }
omp_allocator_handle_t omp_get_default_allocator(void) { return default_allocator; }

/* `size` bytes aligned to `align` (0: the default) by `handle`, zeroed if
 * `zero`; a failure goes where the allocator's fallback says. */
static void *allocate(size_t size, size_t align, int zero, omp_allocator_handle_t handle) {
    if (handle == omp_null_allocator) handle = default_allocator;
    if (handle == omp_null_allocator) handle = omp_default_mem_alloc;
    struct allocator *a = allocator_of(handle);
    if (a && a->alignment > align) align = a->alignment;
    if (align && (align & (align - 1))) return NULL;
    if (size == 0) return NULL;
    void *p;
    if (align > 16) {
        size_t rounded = (size + align - 1) & ~(align - 1);
        p = rounded >= size ? aligned_alloc(align, rounded) : NULL;
        if (p && zero) memset(p, 0, rounded);
    } else {
        p = zero ? calloc(1, size) : malloc(size);
    }
    if (p || !a) return p;
    switch (a->fallback) {
    case omp_atv_abort_fb: fail("an OpenMP allocator with the abort fallback is out of memory");
    case omp_atv_allocator_fb: return allocate(size, align, zero, a->fb_data);
    case omp_atv_null_fb: return NULL;
    default: return allocate(size, align, zero, omp_default_mem_alloc);
    }
}

void *omp_alloc(size_t size, omp_allocator_handle_t handle) { return allocate(size, 0, 0, handle); }

void *omp_aligned_alloc(size_t align, size_t size, omp_allocator_handle_t handle) {
    return allocate(size, align, 0, handle);
}

void *omp_calloc(size_t n, size_t size, omp_allocator_handle_t handle) {
    if (size && n > SIZE_MAX / size) return NULL;
    return allocate(n * size, 0, 1, handle);
}

void *omp_aligned_calloc(size_t align, size_t n, size_t size, omp_allocator_handle_t handle) {
    if (size && n > SIZE_MAX / size) return NULL;
    return allocate(n * size, align, 1, handle);
}

void *omp_realloc(void *p, size_t size, omp_allocator_handle_t handle,
                  omp_allocator_handle_t free_handle) {
    (void)free_handle; /* every allocator's blocks are the heap's */
    if (!p) return omp_alloc(size, handle);
    if (size == 0) {
        free(p);
        return NULL;
    }
    struct allocator *a = allocator_of(handle == omp_null_allocator ? default_allocator : handle);
    void *q = realloc(p, size);
    if (!q || !a || ((uintptr_t)q & (a->alignment - 1)) == 0) return q;
    /* realloc kept the contents but not the allocator's alignment. */
    void *r = allocate(size, 0, 0, handle);
    if (r) memcpy(r, q, size);
    free(q);
    return r;
}

void omp_free(void *p, omp_allocator_handle_t handle) {
    (void)handle;
    free(p);
}

void *__kmpc_alloc(int32_t gtid, size_t size, omp_allocator_handle_t handle) {
    (void)gtid;
    return omp_alloc(size, handle);
}

void *__kmpc_aligned_alloc(int32_t gtid, size_t align, size_t size, omp_allocator_handle_t handle) {
    (void)gtid;
    return omp_aligned_alloc(align, size, handle);
}

void *__kmpc_calloc(int32_t gtid, size_t n, size_t size, omp_allocator_handle_t handle) {
    (void)gtid;
    return omp_calloc(n, size, handle);
}

void *__kmpc_realloc(int32_t gtid, void *p, size_t size, omp_allocator_handle_t handle,
                     omp_allocator_handle_t free_handle) {
    (void)gtid;
    return omp_realloc(p, size, handle, free_handle);
}

void __kmpc_free(int32_t gtid, void *p, omp_allocator_handle_t handle) {
    (void)gtid;
    omp_free(p, handle);
}
