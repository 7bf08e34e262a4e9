/* Anonymous memory mappings used by threads: main maps a table that
 * the threads fill, a slice each; each thread maps scratch memory of its
 * own and returns a mapping to main, which reads and unmaps it; mremap
 * grows a mapping and keeps its contents. Mappings start zeroed and on a
 * page boundary. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N 4
#define PER 50000

static long *table;

static void *worker(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < PER; i++) table[id * PER + i] = id * PER + i;

    size_t scratch_size = 3 * 100000 + 7;
    unsigned char *scratch = mmap(NULL, scratch_size, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED) return NULL;
    unsigned zeros = 0;
    for (size_t i = 0; i < scratch_size; i++) zeros += scratch[i] == 0;
    memset(scratch, (int)id, scratch_size);
    munmap(scratch, scratch_size);

    long *result = mmap(NULL, sizeof(long) * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (result == MAP_FAILED) return NULL;
    result[0] = id;
    result[1] = zeros == scratch_size;
    return result;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    size_t table_size = sizeof(long) * N * PER;
    table = mmap(NULL, table_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (table == MAP_FAILED) return 1;
    printf("table mapped on a page boundary: %d\n", (uintptr_t)table % (uintptr_t)page == 0);

    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) {
        long *result;
        pthread_join(t[i], (void **)&result);
        if (!result) {
            printf("thread %d: mmap failed\n", i);
            return 1;
        }
        printf("thread %d: result %ld, its scratch mapping started zeroed %ld\n", i, result[0],
               result[1]);
        munmap(result, sizeof(long) * 2);
    }
    long long sum = 0;
    for (long i = 0; i < N * PER; i++) sum += table[i];
    printf("table sum %lld\n", sum);

    size_t bigger = table_size * 2;
    long *grown = mremap(table, table_size, bigger, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) return 1;
    int kept = 1;
    for (long i = 0; i < N * PER; i++) kept &= grown[i] == i;
    printf("mremap kept the contents %d, the new part is zero %d\n", kept,
           grown[N * PER] == 0 && grown[2 * N * PER - 1] == 0);
    printf("mprotect read and write: %d\n", mprotect(grown, bigger, PROT_READ | PROT_WRITE));
    printf("mlock, madvise: %d %d\n", mlock(grown, 4096), madvise(grown, bigger, MADV_NORMAL));
    printf("munmap: %d\n", munmap(grown, bigger));
    return 0;
}
