/* OpenMP detachable tasks (`detach`): a task completes when its body has
 * ended and its event is fulfilled, whichever comes last. Events fulfilled
 * in the task's own body, later by the task's creator, and by another
 * task; a task that depends on a detached one runs only after the event,
 * and taskwait waits for every event. */
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>

#define TASKS 12

static int value[TASKS];
static _Atomic int fulfilled_before_reader;

int main(void) {
    omp_set_num_threads(3);
    int in_body = 0, later = 0, chained = 0, reader_saw = -1;
#pragma omp parallel
#pragma omp single
    {
        /* Fulfilled inside the body: complete when the body ends. */
        for (int i = 0; i < TASKS; i++) {
            omp_event_handle_t ev;
#pragma omp task detach(ev) firstprivate(i) shared(value)
            {
                value[i] = i * i;
                omp_fulfill_event(ev);
            }
        }
#pragma omp taskwait
        for (int i = 0; i < TASKS; i++) in_body += value[i];

        /* Fulfilled by the creator after the tasks were made. */
        omp_event_handle_t events[TASKS];
        for (int i = 0; i < TASKS; i++) {
            omp_event_handle_t ev;
#pragma omp task detach(ev) firstprivate(i) shared(value)
            value[i] = 3 * i + 1;
            events[i] = ev;
        }
        for (int i = 0; i < TASKS; i++) omp_fulfill_event(events[i]);
#pragma omp taskwait
        for (int i = 0; i < TASKS; i++) later += value[i];

        /* A writer detached until a second task fulfils its event; a
         * reader that depends on the writer runs after the event. */
        int shared_value = 0;
        omp_event_handle_t writer_done;
#pragma omp task detach(writer_done) depend(out : shared_value) shared(shared_value)
        shared_value = 40;
#pragma omp task depend(in : shared_value) shared(shared_value, reader_saw)
        reader_saw = shared_value + atomic_load(&fulfilled_before_reader);
#pragma omp task firstprivate(writer_done) shared(shared_value)
        {
            atomic_store(&fulfilled_before_reader, 2);
            omp_fulfill_event(writer_done);
        }
#pragma omp taskwait
        chained = shared_value;
    }
    printf("fulfilled in the body: %d\n", in_body);
    printf("fulfilled by the creator: %d\n", later);
    printf("fulfilled by another task: writer %d, reader saw %d\n", chained, reader_saw);
    return 0;
}
