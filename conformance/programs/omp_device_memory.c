/* The device memory routines with the host as the only device, and the
 * clauses of `target` that reach the runtime: omp_target_alloc, _free,
 * _memcpy, _memcpy_rect (and its query of dimensions), _is_present,
 * _associate_ptr / _disassociate_ptr (EINVAL on the host), a device
 * number that is no device; memory from omp_target_alloc used in a
 * target region with is_device_ptr; `target thread_limit(n)` bounding
 * the region's parallel regions and no further. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) static int thread_limit(void) { return omp_get_thread_limit(); }

int main(void) {
    int host = omp_get_initial_device();
    printf("devices %d, initial %d\n", omp_get_num_devices(), host);

    int *dev = omp_target_alloc(10 * sizeof(int), host);
    printf("alloc on the host: %s; on device 7: %s\n", dev ? "memory" : "NULL",
           omp_target_alloc(16, 7) ? "memory" : "NULL");
    int src[10];
    for (int i = 0; i < 10; i++) src[i] = i * i;
    printf("memcpy: %d; to device 7: %s\n",
           omp_target_memcpy(dev, src, 6 * sizeof(int), 0, 2 * sizeof(int), host, host),
           omp_target_memcpy(dev, src, 4, 0, 0, 7, host) != 0 ? "refused" : "done");
#pragma omp target is_device_ptr(dev)
    for (int i = 0; i < 6; i++) dev[i] += 1;
    int back[6];
    omp_target_memcpy(back, dev, sizeof back, 0, 0, host, host);
    for (int i = 0; i < 6; i++) printf(" %d", back[i]);
    printf("\n");
    printf("present: %d %d; associate: %s; disassociate: %s\n", omp_target_is_present(src, host),
           omp_target_is_present(dev, host),
           omp_target_associate_ptr(src, dev, 8, 0, host) == EINVAL ? "EINVAL" : "other",
           omp_target_disassociate_ptr(src, host) == EINVAL ? "EINVAL" : "other");
    omp_target_free(dev, host);
    omp_target_free(NULL, host);

    printf("rect dimensions: %s\n",
           omp_target_memcpy_rect(NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, host, host) > 2
               ? "more than 2"
               : "2 or fewer");
    int a[3][4][5], b[3][4][5];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 5; k++) a[i][j][k] = 100 * i + 10 * j + k;
    size_t volume[3] = {2, 2, 3}, to[3] = {1, 2, 2}, from[3] = {0, 1, 1}, dims[3] = {3, 4, 5};
    printf("rect: %d\n", omp_target_memcpy_rect(b, a, sizeof(int), 3, volume, to, from, dims,
                                                dims, host, host));
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < 5; k++) printf(" %3d", b[i][j][k]);
            printf(" |");
        }
        printf("\n");
    }

    int threads = 0, limit = 0;
#pragma omp target thread_limit(2) map(from : threads, limit)
    {
        limit = thread_limit();
#pragma omp parallel num_threads(4)
#pragma omp single
        threads = omp_get_num_threads();
    }
    printf("target thread_limit(2): limit %d, parallel of %d\n", limit, threads);
    int after = 0;
#pragma omp parallel num_threads(3)
#pragma omp single
    after = omp_get_num_threads();
    printf("after it: limit %s, parallel of %d\n",
           thread_limit() == limit ? "still 2" : "the program's", after);
    return 0;
}
