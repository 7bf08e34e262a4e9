/* Every weft:state operation once, printing what it gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/state.h>

static void show(const char *what, int rc) { printf("%s: %d\n", what, rc); }

int main(void) {
    uint8_t *data;
    size_t len;
    uint64_t size;
    show("get missing", weft_state_get("greeting", &data, &len));
    show("set", weft_state_set("greeting", "hello world", 11));
    show("get", weft_state_get("greeting", &data, &len));
    printf("value: %.*s\n", (int)len, (const char *)data);
    free(data);
    char part[6] = {0};
    show("get-range", weft_state_get_range("greeting", 6, 5, part));
    printf("range: %s\n", part);
    show("get-range out", weft_state_get_range("greeting", 8, 5, part));
    show("set-range", weft_state_set_range("greeting", 11, "!!", 2));
    show("size", weft_state_size("greeting", &size));
    printf("size: %llu\n", (unsigned long long)size);
    show("push", weft_state_push("greeting"));
    show("set-range 0", weft_state_set_range("greeting", 0, "J", 1));
    show("push-partial", weft_state_push_partial("greeting"));
    show("set local only", weft_state_set("greeting", "local", 5));
    show("pull-range", weft_state_pull_range("greeting", 0, 1));
    show("get after pull-range", weft_state_get("greeting", &data, &len));
    printf("value: %.*s\n", (int)len, (const char *)data);
    free(data);
    show("pull-range out", weft_state_pull_range("greeting", 12, 2));
    show("pull", weft_state_pull("greeting"));
    show("get after pull", weft_state_get("greeting", &data, &len));
    printf("value: %.*s\n", (int)len, (const char *)data);
    free(data);
    show("set empty", weft_state_set("empty", "", 0));
    show("get empty", weft_state_get("empty", &data, &len));
    printf("empty: %zu %s\n", len, data ? "block" : "null");

    show("append", weft_state_append("log", "first", 5));
    show("append", weft_state_append("log", "second", 6));
    uint32_t count;
    show("appended-count", weft_state_appended_count("log", &count));
    printf("records: %u\n", count);
    show("read-appended", weft_state_read_appended("log", 1, &data, &len));
    printf("record 1: %.*s\n", (int)len, (const char *)data);
    free(data);
    show("read-appended out", weft_state_read_appended("log", 2, &data, &len));
    show("clear-appended", weft_state_clear_appended("log"));
    show("appended-count", weft_state_appended_count("log", &count));
    printf("records: %u\n", count);

    show("lock global write", weft_state_lock("greeting", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE));
    show("unlock global write", weft_state_unlock("greeting", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE));
    show("unlock again", weft_state_unlock("greeting", WEFT_TIER_GLOBAL, WEFT_LOCK_WRITE));
    show("lock local read", weft_state_lock("greeting", WEFT_TIER_LOCAL, WEFT_LOCK_READ));
    show("unlock local read", weft_state_unlock("greeting", WEFT_TIER_LOCAL, WEFT_LOCK_READ));
    char long_key[2000];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    show("long key", weft_state_set(long_key, "x", 1));
    show("delete", weft_state_delete("greeting"));
    show("get deleted", weft_state_get("greeting", &data, &len));
    return 0;
}
