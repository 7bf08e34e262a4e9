/* An HTTP test function that sets output, then exits with code 3. */
#include <stdlib.h>

#include <weft/chain.h>

int main(void) {
    weft_chain_set_output("bye", 3);
    exit(3);
}
