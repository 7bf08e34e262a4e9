/* Registers merge regions through weft:threads and prints each result. */
#include <stdint.h>
#include <stdio.h>
#include <weft/threads.h>

static int64_t totals[8];
static char flags[16];

int main(void) {
    printf("sum over totals: %d\n", weft_merge_region(totals, sizeof totals, WEFT_MERGE_SUM, WEFT_ELEM_I64));
    printf("overlapping: %d\n", weft_merge_region(&totals[4], 8, WEFT_MERGE_MAX, WEFT_ELEM_I64));
    printf("empty: %d\n", weft_merge_region(flags, 0, WEFT_MERGE_BYTEWISE, WEFT_ELEM_I32));
    printf("misaligned: %d\n", weft_merge_region(flags + 1, 8, WEFT_MERGE_SUM, WEFT_ELEM_I64));
    printf("bytewise at any byte: %d\n", weft_merge_region(flags + 1, 3, WEFT_MERGE_IGNORE, WEFT_ELEM_I32));
    printf("out of bounds: %d\n",
           weft_merge_region((void *)(uintptr_t)0xfffff000u, 64, WEFT_MERGE_XOR, WEFT_ELEM_I32));
    return 0;
}
