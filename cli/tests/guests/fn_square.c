/* Function `square`: input a decimal number, output its square; it also
 * records the largest number it saw in shared state. */
#include <stdio.h>
#include <stdlib.h>

#include <weft/chain.h>
#include <weft/state.h>

int main(void) {
    char text[32];
    weft_chain_input_string(text, sizeof text);
    long n = atol(text);
    char out[32];
    int written = snprintf(out, sizeof out, "%ld", n * n);
    weft_chain_set_output(out, (size_t)written);

    weft_state_lock("largest", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE);
    long largest = 0;
    if (weft_state_pull("largest") == 0) weft_state_get_range("largest", 0, sizeof largest, &largest);
    if (n > largest) {
        weft_state_set("largest", &n, sizeof n);
        weft_state_push("largest");
    }
    weft_state_unlock("largest", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE);
    return n < 0 ? 3 : 0; /* an exit code the caller sees */
}
