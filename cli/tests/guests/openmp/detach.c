/* A detachable task: deferred in a team of two; in a team of one it would
 * be included, which the runtime refuses. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    omp_event_handle_t done = (omp_event_handle_t)0; /* set by the task construct */
    int x = 0;
#pragma omp parallel
#pragma omp single
    {
#pragma omp task detach(done) shared(x)
        x = 1;
        omp_fulfill_event(done);
#pragma omp taskwait
    }
    printf("%d\n", x);
    return 0;
}
