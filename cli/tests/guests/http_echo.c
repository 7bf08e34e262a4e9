/* An HTTP test function: its output is its input. */
#include <weft/chain.h>

int main(void) {
    size_t len;
    uint8_t *input = weft_chain_input(&len);
    weft_chain_set_output(input, len);
    return 0;
}
