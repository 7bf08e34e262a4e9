/* A thread traps while main waits in pthread_join. */
#include <pthread.h>
#include <stdio.h>

static void *crash(void *arg) {
    (void)arg;
    __builtin_trap();
}

int main(void) {
    printf("before the trap\n");
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, crash, NULL);
    pthread_join(t, NULL);
    printf("not reached\n");
    return 0;
}
