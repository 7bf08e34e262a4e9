// A thread that changes shared state and then computes for a long time
// (ITERATIONS from argv[1]): losing its host after the change must not
// make the change happen twice.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/state.h>

static uint64_t iterations;

static void *work(void *arg) {
    (void)arg;
    if (weft_state_append("log", "started", 7) != 0) return (void *)1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return (void *)(uintptr_t)(x & 0xff);
}

int main(int argc, char **argv) {
    iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000;
    pthread_t thread;
    if (pthread_create(&thread, NULL, work, NULL) != 0) return 1;
    void *value;
    pthread_join(thread, &value);
    uint32_t count = 0;
    weft_state_appended_count("log", &count);
    printf("thread returned %d, log has %u record(s)\n", (int)(uintptr_t)value, count);
    return 0;
}
