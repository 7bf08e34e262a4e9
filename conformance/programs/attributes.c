/* Every pthread_attr_* call: setters succeed, getters report what was set,
 * and threads created with the attributes run. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *worker(void *arg) {
    volatile char buffer[16 * 1024];  /* uses the requested stack */
    for (int i = 0; i < (int)sizeof buffer; i++) buffer[i] = (char)i;
    return (void *)(intptr_t)(buffer[100] + (intptr_t)arg);
}

static void check(const char *what, int rc) { printf("%-28s %s\n", what, rc == 0 ? "ok" : "error"); }

int main(void) {
    pthread_attr_t a;
    check("attr_init", pthread_attr_init(&a));

    int state = -1;
    check("setdetachstate(joinable)", pthread_attr_setdetachstate(&a, PTHREAD_CREATE_JOINABLE));
    pthread_attr_getdetachstate(&a, &state);
    printf("  detachstate joinable: %d\n", state == PTHREAD_CREATE_JOINABLE);
    printf("  setdetachstate(bogus) EINVAL: %d\n", pthread_attr_setdetachstate(&a, 77) == EINVAL);

    size_t size = 0;
    check("setstacksize(256 KiB)", pthread_attr_setstacksize(&a, 256 * 1024));
    pthread_attr_getstacksize(&a, &size);
    printf("  stacksize: %zu\n", size);

    check("setguardsize(8 KiB)", pthread_attr_setguardsize(&a, 8192));
    pthread_attr_getguardsize(&a, &size);
    printf("  guardsize: %zu\n", size);
    check("setguardsize(0)", pthread_attr_setguardsize(&a, 0));
    pthread_attr_getguardsize(&a, &size);
    printf("  guardsize: %zu\n", size);
    pthread_attr_setguardsize(&a, 4096);

    int scope = -1;
    check("setscope(system)", pthread_attr_setscope(&a, PTHREAD_SCOPE_SYSTEM));
    pthread_attr_getscope(&a, &scope);
    printf("  scope system: %d\n", scope == PTHREAD_SCOPE_SYSTEM);
    printf("  setscope(process) ENOTSUP: %d\n", pthread_attr_setscope(&a, PTHREAD_SCOPE_PROCESS) == ENOTSUP);

    int policy = -1, inherit = -1;
    struct sched_param param = {0}, got = {0};
    check("setinheritsched(explicit)", pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
    pthread_attr_getinheritsched(&a, &inherit);
    printf("  inheritsched explicit: %d\n", inherit == PTHREAD_EXPLICIT_SCHED);
    check("setschedpolicy(other)", pthread_attr_setschedpolicy(&a, SCHED_OTHER));
    pthread_attr_getschedpolicy(&a, &policy);
    printf("  schedpolicy other: %d\n", policy == SCHED_OTHER);
    param.sched_priority = sched_get_priority_min(SCHED_OTHER);
    check("setschedparam(min)", pthread_attr_setschedparam(&a, &param));
    pthread_attr_getschedparam(&a, &got);
    printf("  priority: %d\n", got.sched_priority);
    printf("  fifo priority range: %d..%d\n", sched_get_priority_min(SCHED_FIFO),
           sched_get_priority_max(SCHED_FIFO));
    check("setinheritsched(inherit)", pthread_attr_setinheritsched(&a, PTHREAD_INHERIT_SCHED));

    pthread_t t;
    void *result = NULL;
    check("create with attributes", pthread_create(&t, &a, worker, (void *)1));
    check("join", pthread_join(t, &result));
    printf("  result: %ld\n", (long)(intptr_t)result);

    /* A caller-provided stack. */
    size_t stack_size = 512 * 1024;
    void *stack = aligned_alloc(4096, stack_size);
    void *stack_addr = NULL;
    pthread_attr_t s;
    pthread_attr_init(&s);
    check("setstack", pthread_attr_setstack(&s, stack, stack_size));
    pthread_attr_getstack(&s, &stack_addr, &size);
    printf("  getstack same: %d size: %zu\n", stack_addr == stack, size);
    check("create on own stack", pthread_create(&t, &s, worker, (void *)2));
    check("join", pthread_join(t, &result));
    printf("  result: %ld\n", (long)(intptr_t)result);
    check("attr_destroy", pthread_attr_destroy(&s));
    free(stack);

    /* Detached through the attribute. */
    check("setdetachstate(detached)", pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
    pthread_attr_getdetachstate(&a, &state);
    printf("  detachstate detached: %d\n", state == PTHREAD_CREATE_DETACHED);
    check("attr_destroy", pthread_attr_destroy(&a));
    return 0;
}
