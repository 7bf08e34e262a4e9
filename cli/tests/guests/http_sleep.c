/* An HTTP test function that takes a while: input milliseconds; it sleeps
 * that long and outputs its input back after "slept ". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft/chain.h>

int main(void) {
    char text[32];
    weft_chain_input_string(text, sizeof text);
    long ms = atol(text);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    char out[48];
    int written = snprintf(out, sizeof out, "slept %ld", ms);
    weft_chain_set_output(out, (size_t)written);
    return 0;
}
