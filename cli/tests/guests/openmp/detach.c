/* A detachable task: the runtime has none, weft-cc refuses it. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    omp_event_handle_t done;
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
