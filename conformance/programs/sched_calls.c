/* A thread's scheduling policy and priority: read, set and validated as
 * Linux does for the calls that need no privilege (SCHED_OTHER, the
 * batch and idle policies, priority 0), inherited or explicit at creation,
 * and the sched_* calls on the calling thread. */
#define _GNU_SOURCE /* SCHED_BATCH, SCHED_IDLE */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static const char *name(int rc) {
    return rc == 0 ? "0" : rc == EINVAL ? "EINVAL" : rc == ESRCH ? "ESRCH" : rc == EPERM ? "EPERM" : "other";
}

static const char *policy_name(int policy) {
    switch (policy) {
    case SCHED_OTHER: return "other";
    case SCHED_FIFO: return "fifo";
    case SCHED_RR: return "rr";
    case SCHED_BATCH: return "batch";
    case SCHED_IDLE: return "idle";
    default: return "unknown";
    }
}

static void show(const char *who, pthread_t t) {
    int policy = -1;
    struct sched_param p = {.sched_priority = -1};
    int rc = pthread_getschedparam(t, &policy, &p);
    printf("%s: %s %s priority %d\n", who, name(rc), policy_name(policy), p.sched_priority);
}

static void *child(void *arg) {
    (void)arg;
    show("  child", pthread_self());
    return NULL;
}

static void start(const char *what, const pthread_attr_t *attr) {
    pthread_t t;
    printf("%s\n", what);
    if (pthread_create(&t, attr, child, NULL) == 0) pthread_join(t, NULL);
}

int main(void) {
    pthread_t self = pthread_self();
    struct sched_param p = {.sched_priority = 0};
    show("main", self);

    printf("set other 0: %s\n", name(pthread_setschedparam(self, SCHED_OTHER, &p)));
    p.sched_priority = 5;
    printf("set other 5: %s\n", name(pthread_setschedparam(self, SCHED_OTHER, &p)));
    printf("set policy 999: %s\n", name(pthread_setschedparam(self, 999, &p)));
    p.sched_priority = 0;
    printf("set batch 0: %s\n", name(pthread_setschedparam(self, SCHED_BATCH, &p)));
    show("main", self);
    printf("setschedprio 3 (batch): %s\n", name(pthread_setschedprio(self, 3)));
    printf("setschedprio 0 (batch): %s\n", name(pthread_setschedprio(self, 0)));

    start("inherited from main:", NULL);

    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&a, SCHED_OTHER);
    p.sched_priority = 0;
    pthread_attr_setschedparam(&a, &p);
    start("explicit other:", &a);
    pthread_attr_destroy(&a);

    printf("sched_getscheduler(0): %s\n", policy_name(sched_getscheduler(0)));
    p.sched_priority = -1;
    int got = sched_getparam(0, &p);
    printf("sched_getparam(0): %d, priority %d\n", got, p.sched_priority);
    p.sched_priority = 0;
    int rc = sched_setscheduler(0, SCHED_OTHER, &p);
    printf("sched_setscheduler(0, other): %d\n", rc);
    printf("now: %s\n", policy_name(sched_getscheduler(0)));
    errno = 0;
    rc = sched_setscheduler(0, 999, &p);
    printf("sched_setscheduler(0, 999): %d %s\n", rc, name(errno));
    p.sched_priority = 7;
    errno = 0;
    rc = sched_setparam(0, &p);
    printf("sched_setparam(0, 7): %d %s\n", rc, name(errno));
    errno = 0;
    rc = sched_getscheduler(-1);
    printf("sched_getscheduler(-1): %d %s\n", rc, name(errno));
    printf("batch range: %d..%d, idle range: %d..%d\n", sched_get_priority_min(SCHED_BATCH),
           sched_get_priority_max(SCHED_BATCH), sched_get_priority_min(SCHED_IDLE),
           sched_get_priority_max(SCHED_IDLE));
    return 0;
}
