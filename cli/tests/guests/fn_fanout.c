/* Function `fanout`: input N; calls `square` for 1..N at once, awaits them
 * all and outputs the sum of the squares, then what the error cases give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/chain.h>
#include <weft/state.h>

static char report[4096];
static size_t used;

#define say(...) (used += (size_t)snprintf(report + used, sizeof report - used, __VA_ARGS__))

int main(void) {
    char text[32];
    weft_chain_input_string(text, sizeof text);
    int n = atoi(text);
    if (n < 1 || n > 64) return 2;

    uint32_t ids[64];
    for (int i = 0; i < n; i++) {
        char arg[16];
        int l = snprintf(arg, sizeof arg, "%d", i + 1);
        if (weft_chain_call("square", arg, (size_t)l, &ids[i])) return 4;
    }
    long sum = 0;
    for (int i = 0; i < n; i++) {
        int32_t code;
        uint8_t *out;
        size_t out_len;
        if (weft_chain_await(ids[i], &code) || code != 0) return 5;
        if (weft_chain_output(ids[i], &out, &out_len)) return 6;
        char number[32] = {0};
        memcpy(number, out, out_len < 31 ? out_len : 31);
        free(out);
        sum += atol(number);
    }
    say("sum of squares 1..%d: %ld\n", n, sum);

    long largest = 0;
    weft_state_get_range("largest", 0, sizeof largest, &largest);
    say("largest seen by the calls: %ld\n", largest);

    uint32_t id;
    int32_t code;
    say("unknown function: %d\n", weft_chain_call("no-such-function", "", 0, &id));
    say("bad name: %d\n", weft_chain_call("../escape", "", 0, &id));
    say("await again: %d\n", weft_chain_await(ids[0], &code));
    say("no such call: %d\n", weft_chain_await(9999, &code));
    weft_chain_call("square", "-4", 2, &id);
    say("exit code: %d", weft_chain_await(id, &code));
    say(" %d\n", code);
    weft_chain_call("trap", "", 0, &id);
    say("trapped: %d", weft_chain_await(id, &code));
    uint8_t *out;
    size_t out_len;
    int rc = weft_chain_output(id, &out, &out_len);
    say(", output %d '%.*s'\n", rc, (int)out_len, out ? (const char *)out : "");
    uint32_t batch[3];
    int32_t codes[3];
    for (int i = 0; i < 3; i++) weft_chain_call("square", i == 1 ? "-1" : "2", 2, &batch[i]);
    rc = weft_chain_await_all(batch, 3, codes);
    say("await-all: %d codes %d %d %d\n", rc, codes[0], codes[1], codes[2]);
    say("await-all again: %d\n", weft_chain_await_all(batch, 1, codes));
    uint32_t twice[2] = {id, id};
    say("await-all repeated: %d\n", weft_chain_await_all(twice, 2, codes));
    weft_chain_set_output(report, used);
    return 0;
}
