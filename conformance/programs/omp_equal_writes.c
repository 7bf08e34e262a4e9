/* Members that store the same value in one shared variable without
 * synchronising (every member recording the team size, every member that
 * finds a match raising one flag): a data race that happens to lose
 * nothing here. Chain mode cannot tell it from a lost update (two
 * threads' x++ from 0 both store 1), so when two members stored before
 * either merged it ends the program with a conflict report; otherwise
 * the output is the native one. Never a silent difference. */
#include <omp.h>
#include <stdio.h>

static int table[4096];

int main(void) {
    for (int i = 0; i < 4096; i++) table[i] = (i * 2654435761u) % 1000;
    int team = -1, rounds_ok = 0;
    for (int round = 0; round < 16; round++) {
        int members = 0;
#pragma omp parallel reduction(+ : members)
        {
            team = omp_get_num_threads(); /* every member, the same value */
            members += 1;
        }
        rounds_ok += members == team;
    }
    printf("team size recorded by every member, 16 rounds: %s\n", rounds_ok == 16 ? "ok" : "wrong");

    int found = 0;
    long long checked = 0;
#pragma omp parallel for reduction(+ : checked)
    for (int i = 0; i < 4096; i++) {
        if (table[i] == 7 || table[i] == 993) found = 1; /* several members */
        checked++;
    }
    printf("found %d after %lld checks\n", found, checked);

    double scale = 0;
#pragma omp parallel
    {
#pragma omp for
        for (int i = 0; i < 4096; i++) table[i] += 1;
        scale = 0.5; /* a constant every member stores */
    }
    long long sum = 0;
    for (int i = 0; i < 4096; i++) sum += table[i];
    printf("sum %lld scale %.1f\n", sum, scale);
    return 0;
}
