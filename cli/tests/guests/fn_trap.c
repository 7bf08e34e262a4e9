/* Function `trap`: sets some output, then traps. */
#include <weft/chain.h>

int main(void) {
    weft_chain_set_output("partial", 7);
    __builtin_trap();
}
