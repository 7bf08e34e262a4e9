/* Prints the addresses of some data, for the symbol look-up test. */
#include <stdint.h>
#include <stdio.h>

int counter = 1;
long table[8] = {1};
static double private_total;
_Thread_local int per_thread;

int main(void) {
    private_total += counter;
    printf("counter %lu\n", (unsigned long)(uintptr_t)&counter);
    printf("table+12 %lu\n", (unsigned long)(uintptr_t)&table[3]);
    printf("private_total %lu\n", (unsigned long)(uintptr_t)&private_total);
    return (int)private_total - 1 + per_thread;
}
