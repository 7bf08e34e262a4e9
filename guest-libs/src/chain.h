/* libweft internals shared by pthread.c and arena.c (chain mode). */
#ifndef WEFT_CHAIN_H
#define WEFT_CHAIN_H

struct arena;

/* Set by the host in a chained thread's copy of memory only: the thread's
 * start routine and argument, and its heap arena. NULL arena: not a
 * chained thread (local mode, the main thread, or an exit path running on
 * the parent's memory). */
struct weft_chain_entry {
    void *(*start)(void *);
    void *arg;
    struct arena *arena;
};

extern struct weft_chain_entry weft_chain_entry;

/* In the chained thread, before its start routine. */
void weft_chain_thread_started(void);
/* In the thread's exit path on the parent's memory. */
void weft_chain_thread_exiting(void);

#endif
