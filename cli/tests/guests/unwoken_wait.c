// A thread waits on an address no one will ever wake
// (memory.atomic.wait32 without a time-out) while main joins it: natively
// and in local mode it hangs for good; in chain mode it waits at home,
// where the deadlock detector ends the program with one line.
#include <pthread.h>
#include <stdio.h>

static int word;

static void *sleeper(void *arg) {
    __builtin_wasm_memory_atomic_wait32(&word, 0, -1);
    return arg;
}

int main(void) {
    pthread_t t;
    printf("waiting\n");
    fflush(stdout);
    pthread_create(&t, NULL, sleeper, NULL);
    pthread_join(t, NULL);
    printf("woken\n");
    return 0;
}
