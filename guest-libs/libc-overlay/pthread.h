/* Weft's pthread.h: wasi-libc's, plus what wasi-libc leaves out and
 * libweft provides (pthread_exit, cancellation, the scheduling calls). */
#ifndef WEFT_PTHREAD_H
#define WEFT_PTHREAD_H

#include_next <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

_Noreturn void pthread_exit(void *);

/* Deferred cancellation (libweft's cancel.c). Renamed so that the
 * programs that cancel are the ones that link weft_pthread_cancel: their
 * waits in chain mode then look for requests. */
int pthread_cancel(pthread_t);
int weft_pthread_cancel(pthread_t);
#ifndef WEFT_NO_CANCEL_RENAME
#define pthread_cancel weft_pthread_cancel
#endif

/* A thread's scheduling policy and priority (libweft's sched.c). */
int pthread_getschedparam(pthread_t, int *__restrict, struct sched_param *__restrict);
int pthread_setschedparam(pthread_t, int, const struct sched_param *);
int pthread_setschedprio(pthread_t, int);

int pthread_attr_getschedparam(const pthread_attr_t *__restrict, struct sched_param *__restrict);
int pthread_attr_setschedparam(pthread_attr_t *__restrict, const struct sched_param *__restrict);
int pthread_attr_getinheritsched(const pthread_attr_t *__restrict, int *__restrict);
int pthread_attr_setinheritsched(pthread_attr_t *, int);

/* Chain mode keeps rwlocks at the home host (libweft's pthread.c); in
 * local mode these call libc's. */
int weft_rwlock_rdlock(pthread_rwlock_t *);
int weft_rwlock_tryrdlock(pthread_rwlock_t *);
int weft_rwlock_timedrdlock(pthread_rwlock_t *__restrict, const struct timespec *__restrict);
int weft_rwlock_wrlock(pthread_rwlock_t *);
int weft_rwlock_trywrlock(pthread_rwlock_t *);
int weft_rwlock_timedwrlock(pthread_rwlock_t *__restrict, const struct timespec *__restrict);
int weft_rwlock_unlock(pthread_rwlock_t *);
#ifndef WEFT_NO_RWLOCK_RENAME
#define pthread_rwlock_rdlock weft_rwlock_rdlock
#define pthread_rwlock_tryrdlock weft_rwlock_tryrdlock
#define pthread_rwlock_timedrdlock weft_rwlock_timedrdlock
#define pthread_rwlock_wrlock weft_rwlock_wrlock
#define pthread_rwlock_trywrlock weft_rwlock_trywrlock
#define pthread_rwlock_timedwrlock weft_rwlock_timedwrlock
#define pthread_rwlock_unlock weft_rwlock_unlock
#endif

#ifdef __cplusplus
}
#endif
#endif
