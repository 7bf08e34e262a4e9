/* Pauses at a host call (weft_test.checkpoint), then prints its state from
 * the exported `resume`: run once in the original instance and once in a
 * fresh instance restored from the snapshot taken at the pause. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("weft_test"), import_name("checkpoint"))) void checkpoint(void);

struct node {
    int value;
    struct node *next;
};

static struct node *list;
static _Thread_local int tls_counter = 3;
static int resumes;

__attribute__((export_name("resume"), noinline)) void resume(void) {
    volatile int marker = 0;
    resumes++;
    int sum = 0;
    for (struct node *n = list; n; n = n->next) sum += n->value;
    char *copy = strdup("malloc works after the pause");
    printf("resumes=%d tls=%d sum=%d stack=%#lx %s\n", resumes, tls_counter, sum,
           (unsigned long)(uintptr_t)&marker, copy);
    free(copy);
    fflush(stdout);
    (void)marker;
}

int main(void) {
    for (int i = 1; i <= 10; i++) {
        struct node *n = malloc(sizeof *n);
        n->value = i * i;
        n->next = list;
        list = n;
    }
    tls_counter = 42;
    printf("before the pause\n");
    fflush(stdout);
    checkpoint();
    resume();
    return 0;
}
