/* The lost-update test: THREADS threads each add 1 to a shared counter
 * ROUNDS times, each time under the global write lock: pull, read, write,
 * push. Without the lock updates would be lost. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/state.h>

#define THREADS 8
#define ROUNDS 200

static void *add(void *arg) {
    (void)arg;
    long failures = 0;
    for (int i = 0; i < ROUNDS; i++) {
        failures += weft_state_lock("counter", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE) != 0;
        failures += weft_state_pull("counter") != 0;
        uint64_t n = 0;
        failures += weft_state_get_range("counter", 0, sizeof n, &n) != 0;
        n++;
        failures += weft_state_set_range("counter", 0, &n, sizeof n) != 0;
        failures += weft_state_push_partial("counter") != 0;
        failures += weft_state_unlock("counter", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE) != 0;
    }
    return (void *)failures;
}

/* `nested`: two threads each start half of the adders and join them. */
static void *add_in_half(void *arg) {
    (void)arg;
    pthread_t t[THREADS / 2];
    long failures = 0;
    for (int i = 0; i < THREADS / 2; i++) pthread_create(&t[i], NULL, add, NULL);
    for (int i = 0; i < THREADS / 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)r;
    }
    return (void *)failures;
}

int main(int argc, char **argv) {
    int nested = argc > 1 && strcmp(argv[1], "nested") == 0;
    uint64_t zero = 0;
    if (weft_state_set("counter", &zero, sizeof zero) || weft_state_push("counter")) return 1;
    int threads = nested ? 2 : THREADS;
    pthread_t t[THREADS];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, nested ? add_in_half : add, NULL);
    long failures = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)r;
    }
    uint64_t n = 0;
    weft_state_pull("counter");
    weft_state_get_range("counter", 0, sizeof n, &n);
    printf("counter %llu (expected %d), failed calls %ld\n", (unsigned long long)n,
           THREADS * ROUNDS, failures);
    return 0;
}
