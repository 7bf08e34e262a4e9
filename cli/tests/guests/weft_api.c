/* The weft:threads interface from C: mode and thread ids. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <weft/threads.h>

static void *worker(void *arg) {
    (void)arg;
    return (void *)(uintptr_t)weft_thread_current_id();
}

int main(void) {
    printf("mode %s\n", weft_thread_mode() == WEFT_MODE_LOCAL ? "local" : "chain");
    printf("main id %#x\n", weft_thread_current_id());
    pthread_t a, b;
    void *ia, *ib;
    pthread_create(&a, NULL, worker, NULL);
    pthread_join(a, &ia);
    pthread_create(&b, NULL, worker, NULL);
    pthread_join(b, &ib);
    uint32_t x = (uint32_t)(uintptr_t)ia, y = (uint32_t)(uintptr_t)ib;
    printf("thread ids in range %d, distinct %d\n", x >= 1 && x <= 0x1fffffff && y >= 1 && y <= 0x1fffffff, x != y);
    return 0;
}
