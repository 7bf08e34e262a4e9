/* An HTTP test function that must start as a fresh process at every call,
 * whatever memory it runs on: it reports what an earlier call could have
 * left (its initialised global, a zeroed array, a marker left on the
 * heap, the stack and in that array anywhere in memory, the memory's size
 * at start) and then leaves those marks itself. Input "grow" also grows
 * the memory by 4 MiB first. Output: "counter=7 scratch=clean
 * leftovers=0 pages=N". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/chain.h>

#define MARK_LEN 64

static int counter = 7;
static unsigned char scratch[8192];

/* Read at run time, so the compiler cannot fold the marker into a
 * constant in the data (where the scan would find it). */
static volatile unsigned char salt = 0xc3;

/* The marker, computed at run time into one known place. */
static unsigned char needle[MARK_LEN];

static __attribute__((noinline)) void mark(void) {
    for (int i = 0; i < MARK_LEN; i++) {
        needle[i] = (unsigned char)(i * 37 + 11) ^ salt;
    }
}

/* Copies of the marker in memory, besides `needle` itself. */
static __attribute__((noinline)) int leftovers(void) {
    const unsigned char *self = needle;
    unsigned char first = self[0];
    size_t end = __builtin_wasm_memory_size(0) * 65536;
    int found = 0;
    for (size_t at = 1024; at + MARK_LEN <= end; at++) {
        const volatile unsigned char *p = (const volatile unsigned char *)at;
        if (*p != first || (const unsigned char *)p == self) {
            continue;
        }
        int same = 1;
        for (int i = 1; i < MARK_LEN && same; i++) {
            same = p[i] == self[i];
        }
        found += same;
    }
    return found;
}

/* Leaves the marker on the stack, where a later call's frames will be. */
static __attribute__((noinline)) void stain_stack(const unsigned char *m) {
    volatile unsigned char frame[1024];
    for (int i = 0; i < (int)sizeof frame; i++) {
        frame[i] = m[i % MARK_LEN];
    }
}

int main(void) {
    unsigned long pages = __builtin_wasm_memory_size(0);
    char input[16];
    weft_chain_input_string(input, sizeof input);
    mark();
    const unsigned char *m = needle;
    int clean = 1;
    for (size_t i = 0; i < sizeof scratch; i++) {
        clean &= scratch[i] == 0;
    }
    char out[128];
    int written = snprintf(out, sizeof out, "counter=%d scratch=%s leftovers=%d pages=%lu",
                           counter, clean ? "clean" : "dirty", leftovers(), pages);
    if (strcmp(input, "grow") == 0 && __builtin_wasm_memory_grow(0, 64) == (size_t)-1) {
        written = snprintf(out, sizeof out, "could not grow");
    }
    counter++;
    memcpy(scratch, m, MARK_LEN);
    unsigned char *heap = malloc(4096);
    for (int i = 0; i < 4096; i++) {
        heap[i] = m[i % MARK_LEN];
    }
    stain_stack(m);
    weft_chain_set_output(out, (size_t)written);
    return 0;
}
