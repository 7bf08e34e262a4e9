/* Function `recurse`: input a depth d; calls itself with d + 1 and passes
 * its callee's output on. When the call cannot start, it answers
 * "depth d, error e": the deepest a chain of calls reached. */
#include <stdio.h>
#include <stdlib.h>

#include <weft/chain.h>

int main(void) {
    char text[32];
    weft_chain_input_string(text, sizeof text);
    long depth = atol(text);
    char next[32];
    int len = snprintf(next, sizeof next, "%ld", depth + 1);
    uint32_t id;
    int error = weft_chain_call("recurse", next, (size_t)len, &id);
    int32_t code = 0;
    if (error == 0) error = weft_chain_await(id, &code);
    if (error != 0) {
        char out[64];
        int n = snprintf(out, sizeof out, "depth %ld, error %d", depth, error - 1);
        weft_chain_set_output(out, (size_t)n);
        return 0;
    }
    uint8_t *output;
    size_t output_len;
    if (weft_chain_output(id, &output, &output_len) != 0) return 2;
    weft_chain_set_output(output, output_len);
    return code;
}
