/* libweft internals: cancellation (cancel.c, cancel_request.c), used by
 * chain mode's waits at home (pthread.c). */
#ifndef WEFT_CANCEL_H
#define WEFT_CANCEL_H

#include <pthread.h>
#include <stdint.h>

/* Whether the program can cancel a thread at all, i.e. it calls
 * pthread_cancel: 1 from cancel_request.c, which only such a program
 * links, over cancel.c's weak 0. Programs that never cancel pay nothing
 * in their waits. */
#ifndef WEFT_CANCEL_MARKER /* (cancel_request.c: the strong definition) */
extern const char weft_cancel_linked;
#endif
#define weft_program_cancels (weft_cancel_linked != 0)

/* Set (local mode) once a request has been made: waits then check for
 * requests in short slices. */
extern volatile int weft_cancel_used;

/* How long a cancellable wait goes without checking for a request. */
int64_t weft_cancel_slice_ns(void);

/* Whether the calling thread would act on a request now (cancellation
 * enabled, and the program can cancel). */
int weft_cancellable(void);

/* Set while clock_nanosleep sleeps one of its slices (it checks for
 * requests between them itself): io_waits.c's poll wrapper, which the
 * slice goes through, then passes it on unchanged. */
extern _Thread_local int weft_sleeping_a_slice;

/* pthread_cancel (see cancel.c). */
int weft_cancel_request(pthread_t thread);

/* A cancellation point: acts on a pending request (pthread_testcancel). */
void __testcancel(void);

#endif
