/* Threads run on the stack their attributes ask for, and
 * pthread_getattr_np reports it as set: a size (the thread then has that
 * much room: a large array on its stack), a stack of the program's own
 * (the same address and size), the default, and the main thread's. The
 * creator reads a running thread's attributes too. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB 1024

static pthread_barrier_t barrier;

struct report {
    int rc;
    void *addr;
    size_t size, guard;
    int local_inside, array_inside;
    unsigned sum;
};

static int inside(const void *p, void *addr, size_t size) {
    return (uintptr_t)p >= (uintptr_t)addr && (uintptr_t)p < (uintptr_t)addr + size;
}

/* Fills and sums a large array on the stack: the stack must have room. */
__attribute__((noinline)) static void use_stack(struct report *r, size_t bytes) {
    volatile unsigned char big[200 * KIB];
    for (size_t i = 0; i < bytes; i++) big[i] = (unsigned char)i;
    for (size_t i = 0; i < bytes; i++) r->sum += big[i];
    r->array_inside = inside((const void *)&big[0], r->addr, r->size) &&
                      inside((const void *)&big[bytes - 1], r->addr, r->size);
}

/* Reads the calling thread's own attributes; with `size` set, uses that
 * many bytes of stack. */
static void *worker(void *arg) {
    struct report *r = arg;
    size_t array = r->size;
    pthread_attr_t a;
    r->rc = pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &r->addr, &r->size);
    pthread_attr_getguardsize(&a, &r->guard);
    pthread_attr_destroy(&a);
    int local = 0;
    r->local_inside = inside(&local, r->addr, r->size);
    r->array_inside = 1;
    r->sum = 0;
    if (array) use_stack(r, array);
    pthread_barrier_wait(&barrier); /* the creator reads these attributes */
    pthread_barrier_wait(&barrier);
    return NULL;
}

/* The creator's view of a running thread's stack: what the thread sees. */
static void from_outside(pthread_t t, const char *what, const struct report *r) {
    pthread_attr_t a;
    void *addr;
    size_t size;
    pthread_barrier_wait(&barrier);
    int rc = pthread_getattr_np(t, &a);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    printf("%s, seen by its creator: %d, as the thread sees it %d\n", what, rc,
           addr == r->addr && size == r->size);
    pthread_barrier_wait(&barrier);
}

int main(void) {
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    pthread_attr_t attr;

    /* A size. */
    struct report sized = {.size = 200 * KIB};
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KIB);
    pthread_attr_setguardsize(&attr, 8 * KIB);
    pthread_create(&t, &attr, worker, &sized);
    pthread_attr_destroy(&attr);
    from_outside(t, "stack of 256 KiB", &sized);
    pthread_join(t, NULL);
    printf("stack of 256 KiB: getattr %d, size %zu, guard %zu, local inside %d, "
           "200 KiB array inside %d, sum %u\n",
           sized.rc, sized.size, sized.guard, sized.local_inside, sized.array_inside, sized.sum);

    /* A stack of the program's own. */
    size_t own_size = 512 * KIB;
    void *own = NULL;
    if (posix_memalign(&own, 64 * KIB, own_size)) return 1;
    struct report owned = {.size = 200 * KIB};
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, own, own_size);
    pthread_create(&t, &attr, worker, &owned);
    pthread_attr_destroy(&attr);
    from_outside(t, "own stack of 512 KiB", &owned);
    pthread_join(t, NULL);
    printf("own stack of 512 KiB: getattr %d, same address %d, size %zu, local inside %d, "
           "200 KiB array inside %d, sum %u\n",
           owned.rc, owned.addr == own, owned.size, owned.local_inside, owned.array_inside,
           owned.sum);
    free(own);

    /* The default. */
    struct report plain = {.size = 0};
    pthread_create(&t, NULL, worker, &plain);
    from_outside(t, "default stack", &plain);
    pthread_join(t, NULL);
    printf("default stack: getattr %d, local inside %d\n", plain.rc, plain.local_inside);

    /* The main thread's. */
    pthread_attr_t a;
    void *addr;
    size_t size;
    int rc = pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &addr, &size);
    int local = 0;
    printf("main thread: getattr %d, local inside %d\n", rc, inside(&local, addr, size));
    pthread_attr_destroy(&a);
    pthread_barrier_destroy(&barrier);
    return 0;
}
