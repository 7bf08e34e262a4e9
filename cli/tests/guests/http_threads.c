/* An HTTP test function with threads: input N, four threads add their
 * quarter of 1..N into a total under a mutex; output the total. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/chain.h>

#define THREADS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long total;
static long n;

static void *part(void *arg) {
    long k = (long)arg;
    long long sum = 0;
    for (long i = k + 1; i <= n; i += THREADS) sum += i;
    pthread_mutex_lock(&lock);
    total += sum;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    char text[32];
    weft_chain_input_string(text, sizeof text);
    n = atol(text);
    pthread_t t[THREADS];
    for (long k = 0; k < THREADS; k++) pthread_create(&t[k], NULL, part, (void *)k);
    for (int k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
    char out[32];
    int written = snprintf(out, sizeof out, "%lld", total);
    weft_chain_set_output(out, (size_t)written);
    return 0;
}
