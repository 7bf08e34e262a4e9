/* OpenMP's reporting calls: the affinity format (set, get, capture with
 * every field kind and padding, display), omp_display_env, the `error`
 * directive with severity(warning) at execution, and the task affinity
 * clause (a hint). What is printed to stdout is what every runtime
 * agrees on; the reports themselves go to stderr. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char format[128];
    size_t default_len = omp_get_affinity_format(format, sizeof format);
    printf("default format: %s\n", default_len > 0 && default_len < sizeof format ? "set" : "none");

    omp_set_affinity_format("thread %0.4n of %N level %L width [%5n] [%.5n] [%{thread_num}] %%");
    size_t len = omp_get_affinity_format(format, sizeof format);
    printf("set format (%zu): %s\n", len, format);
    char tiny[8];
    printf("truncated get: %zu '%s'\n", omp_get_affinity_format(tiny, sizeof tiny), tiny);

    char lines[4][160];
    int team = 0;
#pragma omp parallel num_threads(4)
    {
        int me = omp_get_thread_num();
        if (me == 0) team = omp_get_num_threads();
        if (me < 4) omp_capture_affinity(lines[me], sizeof lines[me], NULL);
    }
    for (int i = 0; i < team && i < 4; i++) printf("%s\n", lines[i]);

    char capture[16];
    size_t whole = omp_capture_affinity(capture, sizeof capture, "%{nesting_level}-%L-%0.3L-xyz-%n");
    printf("capture: %zu '%s'\n", whole, capture);
    char host[64];
    size_t host_len = omp_capture_affinity(host, sizeof host, "%H");
    printf("host named: %s\n", host_len > 0 && strlen(host) == host_len ? "yes" : "no");
    char proc[64];
    omp_capture_affinity(proc, sizeof proc, "%A");
    printf("affinity starts at processor 0: %s\n", proc[0] == '0' ? "yes" : "no");

    omp_display_affinity(NULL);
    omp_display_env(0);
    omp_display_env(1);

    int made = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
    {
#pragma omp task affinity(made) shared(made)
        made += 1;
#pragma omp taskwait
    }
    printf("task with affinity ran: %d\n", made);

#pragma omp error at(execution) severity(warning) message("a warning at run time")
    printf("went on after the warning\n");
    return 0;
}
