/* Prints every answer a program can get to "how many processors": sysconf
 * (online and configured), get_nprocs, get_nprocs_conf and the count of an
 * affinity mask. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/sysinfo.h>
#include <unistd.h>

int main(void) {
    cpu_set_t set;
    int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    printf("%ld %ld %d %d %d\n", sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF),
           get_nprocs(), get_nprocs_conf(), affinity);
    return 0;
}
