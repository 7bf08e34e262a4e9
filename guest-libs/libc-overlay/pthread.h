/* Weft's pthread.h: wasi-libc's, plus what wasi-libc leaves out and
 * libweft provides (pthread_exit and the scheduling attribute calls). */
#ifndef WEFT_PTHREAD_H
#define WEFT_PTHREAD_H

#include_next <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

_Noreturn void pthread_exit(void *);

int pthread_attr_getschedparam(const pthread_attr_t *__restrict, struct sched_param *__restrict);
int pthread_attr_setschedparam(pthread_attr_t *__restrict, const struct sched_param *__restrict);
int pthread_attr_getinheritsched(const pthread_attr_t *__restrict, int *__restrict);
int pthread_attr_setinheritsched(pthread_attr_t *, int);

#ifdef __cplusplus
}
#endif
#endif
