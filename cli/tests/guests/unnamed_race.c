// Two threads write different values to one int with no synchronisation
// (a race): an int in a malloc'd block, or on main's stack. In chain mode
// the conflict report must say where the int lies though no symbol names
// it.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *write_one(void *arg) {
    int *target = ((int **)arg)[0];
    *target = (int)(long)((int **)arg)[1];
    return NULL;
}

int main(int argc, char **argv) {
    int on_stack = 0;
    int *target = argc > 1 && strcmp(argv[1], "stack") == 0 ? &on_stack : calloc(64, sizeof(int));
    void *args[2][2] = {{target, (void *)1L}, {target, (void *)2L}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, write_one, args[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    printf("%d\n", *target);
    return 0;
}
