/* The entry through which clang makes every deferred OpenMP task, in an
 * archive member of its own: the linker takes it only into programs that
 * make tasks, and with it the strong `weft_omp_creates_tasks` (omp.c has a
 * weak 0), so the runtime knows whether a team's barriers must run tasks. */
#include <stddef.h>
#include <stdint.h>

void *weft_omp_task_alloc(void *loc, int32_t gtid, int32_t flags, size_t task_size,
                          size_t shareds_size, void *routine);

int weft_omp_creates_tasks = 1;

void *__kmpc_omp_task_alloc(void *loc, int32_t gtid, int32_t flags, size_t task_size,
                            size_t shareds_size, void *routine) {
    return weft_omp_task_alloc(loc, gtid, flags, task_size, shareds_size, routine);
}

/* `target nowait`: a deferred task that runs the target region on the
 * host, the only device. */
void *__kmpc_omp_target_task_alloc(void *loc, int32_t gtid, int32_t flags, size_t task_size,
                                   size_t shareds_size, void *routine, int64_t device_id) {
    (void)device_id;
    return weft_omp_task_alloc(loc, gtid, flags, task_size, shareds_size, routine);
}
