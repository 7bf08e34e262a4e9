/* libweft internals: signal delivery points (signal.c), used by the
 * waits and sleeps of cancel.c. */
#ifndef WEFT_SIGNALS_H
#define WEFT_SIGNALS_H

#include <pthread.h>

/* Whether the program has used signals at all (waits then wait in slices
 * so that a blocked thread sees a signal sent to it). */
int weft_signals_used(void);

/* Runs the handlers of the signals pending for the calling thread that it
 * does not block; returns how many handlers ran (0: none, so nothing
 * interrupted the caller). */
int weft_signal_deliver(void);

/* How many handlers have run in the calling thread so far: a wait that
 * compares it before and after knows whether a handler interrupted it,
 * whichever delivery point (a clock read, say) ran the handler. */
unsigned weft_signals_handled(void);
/* The same, counting only handlers installed without SA_RESTART (which
 * interrupt a semaphore wait; with it, the wait goes on, as on Linux). */
unsigned weft_signals_interrupting(void);

/* The calling thread's mask of blocked signals (bit s: signal s), which
 * a new thread inherits from its creator. */
unsigned weft_signal_mask(void);
void weft_signal_set_mask(unsigned mask);

/* Drops what is pending for `thread`, a new thread's id that an ended
 * thread may have had; before the new thread runs. */
void weft_signals_forget(pthread_t thread);

#endif
