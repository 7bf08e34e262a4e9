/* Scheduling attributes are validated as POSIX (and Linux) say: unknown
 * policies and priorities outside the policy's range are EINVAL. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static void *child(void *arg) { return arg; }

static const char *name(int rc) {
    return rc == 0 ? "0" : rc == EINVAL ? "EINVAL" : rc == ENOTSUP ? "ENOTSUP" : "other";
}

int main(void) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    struct sched_param p;
    int policy = -1;

    printf("setschedpolicy 999: %s\n", name(pthread_attr_setschedpolicy(&a, 999)));
    pthread_attr_getschedpolicy(&a, &policy);
    printf("policy unchanged: %d\n", policy == SCHED_OTHER);
    p.sched_priority = 0;
    printf("other, priority 0: %s\n", name(pthread_attr_setschedparam(&a, &p)));
    p.sched_priority = 50;
    printf("other, priority 50: %s\n", name(pthread_attr_setschedparam(&a, &p)));
    printf("setschedpolicy fifo: %s\n", name(pthread_attr_setschedpolicy(&a, SCHED_FIFO)));
    printf("fifo, priority 50: %s\n", name(pthread_attr_setschedparam(&a, &p)));
    p.sched_priority = 100;
    printf("fifo, priority 100: %s\n", name(pthread_attr_setschedparam(&a, &p)));
    p.sched_priority = 0;
    printf("fifo, priority 0: %s\n", name(pthread_attr_setschedparam(&a, &p)));
    pthread_attr_getschedparam(&a, &p);
    printf("priority kept: %d\n", p.sched_priority);
    printf("fifo range: %d..%d\n", sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_FIFO));
    printf("setinheritsched 7: %s\n", name(pthread_attr_setinheritsched(&a, 7)));
    pthread_attr_destroy(&a);

    /* A thread with the default attributes still starts. */
    pthread_t t;
    void *value = NULL;
    int rc = pthread_create(&t, NULL, child, (void *)5);
    if (rc == 0) pthread_join(t, &value);
    printf("thread: %s, returned %d\n", name(rc), (int)(long)value);
    return 0;
}
