/* One thread uses the state API: `write VALUE` sets key "apart" in its
 * host's local tier without pushing it to the global tier; `read` prints
 * what a get of "apart" finds. Two programs run this way one after the
 * other on one worker must not see each other's local values. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/state.h>

static char *const *args;

static void *work(void *arg) {
    (void)arg;
    if (strcmp(args[1], "write") == 0) {
        if (weft_state_set("apart", (const uint8_t *)args[2], strlen(args[2]))) printf("set failed\n");
        return NULL;
    }
    uint8_t *value = NULL;
    size_t len = 0;
    if (weft_state_get("apart", &value, &len) != 0)
        printf("apart: not found\n");
    else
        printf("apart: %.*s\n", (int)len, (const char *)value);
    free(value);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "write") == 0 && argc < 3)) return 2;
    args = argv;
    pthread_t t;
    pthread_create(&t, NULL, work, NULL);
    pthread_join(t, NULL);
    return 0;
}
