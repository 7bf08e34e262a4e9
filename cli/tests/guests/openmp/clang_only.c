/* OpenMP 5.1 that gcc 12 (the conformance oracle) cannot build: the
 * `uses_allocators` clause (__kmpc_init_allocator) and the asynchronous
 * device copies, one after a task it depends on through a depobj. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>

int main(void) {
    int aligned = 0;
    omp_alloctrait_t traits[1] = {{omp_atk_alignment, 64}};
    omp_allocator_handle_t mine = omp_null_allocator;
#pragma omp target uses_allocators(mine(traits)) map(from : aligned)
    {
        int *p = omp_alloc(100, mine);
        aligned = p && (uintptr_t)p % 64 == 0;
        omp_free(p, mine);
    }
    int host = omp_get_initial_device();
    int a[8] = {0}, b[8] = {0}, rect[2][3] = {{0}}, rc = -1, rect_rc = -1;
    omp_depend_t made;
#pragma omp parallel num_threads(2)
#pragma omp single
    {
#pragma omp task depend(out : a) shared(a)
        for (int i = 0; i < 8; i++) a[i] = i + 1;
#pragma omp depobj(made) depend(in : a)
        rc = omp_target_memcpy_async(b, a, sizeof a, 0, 0, host, host, 1, &made);
        size_t volume[2] = {2, 3}, none[2] = {0, 0}, dims[2] = {2, 3}, from_dims[2] = {2, 4};
        rect_rc = omp_target_memcpy_rect_async(rect, a, sizeof(int), 2, volume, none, none, dims,
                                               from_dims, host, host, 0, NULL);
#pragma omp depobj(made) destroy
#pragma omp taskwait
    }
    printf("aligned %d, copy %d: %d..%d, rect %d: %d %d %d / %d %d %d\n", aligned, rc, b[0], b[7],
           rect_rc, rect[0][0], rect[0][1], rect[0][2], rect[1][0], rect[1][1], rect[1][2]);
    return 0;
}
