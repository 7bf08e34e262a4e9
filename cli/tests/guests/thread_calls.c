// Threads that call functions by name: each calls `square` on two numbers
// (one awaited alone, one with await-all) and returns the sum of the
// results. Run on other hosts, the calls go home.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/chain.h>

static long square_of(uint32_t id) {
    uint8_t *out;
    size_t len;
    if (weft_chain_output(id, &out, &len)) return -1000;
    char number[32] = {0};
    memcpy(number, out, len < 31 ? len : 31);
    free(out);
    return atol(number);
}

static void *work(void *arg) {
    long n = (long)(intptr_t)arg;
    char text[2][16];
    uint32_t ids[2];
    for (int i = 0; i < 2; i++) {
        int len = snprintf(text[i], sizeof text[i], "%ld", n + i);
        if (weft_chain_call("square", text[i], (size_t)len, &ids[i])) return (void *)-1;
    }
    int32_t code;
    if (weft_chain_await(ids[0], &code) || code != 0) return (void *)-2;
    int32_t codes[1];
    if (weft_chain_await_all(&ids[1], 1, codes) || codes[0] != 0) return (void *)-3;
    int32_t again;
    if (weft_chain_await(ids[0], &again) != WEFT_CALL_ALREADY_AWAITED) return (void *)-4;
    return (void *)(intptr_t)(square_of(ids[0]) + square_of(ids[1]));
}

int main(void) {
    pthread_t threads[3];
    for (long i = 0; i < 3; i++) pthread_create(&threads[i], NULL, work, (void *)(intptr_t)(10 * i + 1));
    for (int i = 0; i < 3; i++) {
        void *sum;
        pthread_join(threads[i], &sum);
        printf("thread %d: %ld\n", i, (long)(intptr_t)sum);
    }
    return 0;
}
