/* Host `teams` and `distribute`: the league's size from the num_teams
 * clause, from omp_set_num_teams and by default; thread_limit bounding a
 * team's parallel regions; a team's number inside them; distribute's
 * static split over the teams (with and without dist_schedule chunks, on
 * signed, unsigned, 64-bit and downward loops, with lastprivate);
 * `distribute parallel for` with static, dynamic and collapsed
 * schedules; `teams reduction`; `teams loop`, `distribute simd`; a
 * `target teams distribute parallel for` run on the host; tasks inside a
 * team's region; `target nowait` regions (deferred tasks on the host)
 * ordered by their dependences. Teams cannot synchronise with one another, so every
 * count printed is the same in any order the teams run. */
#include <omp.h>
#include <stdio.h>

#define N 1000

static int owner[N];

/* API calls gcc refuses strictly inside a teams region, asked through a
 * function. */
__attribute__((noinline)) static void ask(int *level, int *in_parallel, int *threads,
                                          int *limit) {
    *level = omp_get_level();
    *in_parallel = omp_in_parallel();
    *threads = omp_get_num_threads();
    *limit = omp_get_thread_limit();
}

__attribute__((noinline)) static int thread_limit(void) { return omp_get_thread_limit(); }

/* Each team's first and last iteration, and how many it ran. */
static void print_owners(const char *what, int teams) {
    printf("%s:", what);
    for (int t = 0; t < teams; t++) {
        int first = -1, last = -1, count = 0;
        for (int i = 0; i < N; i++)
            if (owner[i] == t) {
                if (first < 0) first = i;
                last = i;
                count++;
            }
        printf(" [%d: %d..%d x%d]", t, first, last, count);
    }
    int unowned = 0;
    for (int i = 0; i < N; i++) unowned += owner[i] < 0 || owner[i] >= teams;
    printf(" unowned %d\n", unowned);
}

static void clear_owners(void) {
    for (int i = 0; i < N; i++) owner[i] = -1;
}

int main(void) {
    printf("outside: teams %d, team %d, max teams %d, teams thread limit %d\n",
           omp_get_num_teams(), omp_get_team_num(), omp_get_max_teams(),
           omp_get_teams_thread_limit());

    /* The clauses, the team's number in its parallel regions, the limit. */
    int teams[8] = {0}, levels[8], in_parallel[8], threads[8], limits[8];
    int parallel_size[8] = {0}, parallel_team[8] = {0}, parallel_level[8] = {0};
    int members_seen[8] = {0};
#pragma omp teams num_teams(4) thread_limit(2)
    {
        int t = omp_get_team_num();
        teams[t] = omp_get_num_teams();
        ask(&levels[t], &in_parallel[t], &threads[t], &limits[t]);
#pragma omp parallel num_threads(5)
        {
#pragma omp atomic
            members_seen[t]++;
            if (omp_get_thread_num() == 0) {
                parallel_size[t] = omp_get_num_threads();
                parallel_team[t] = omp_get_team_num();
                parallel_level[t] = omp_get_level();
            }
        }
    }
    for (int t = 0; t < 4; t++)
        printf("team %d of %d: level %d, in parallel %d, threads %d, limit %d; its parallel: "
               "%d threads (%d seen), team %d, level %d\n",
               t, teams[t], levels[t], in_parallel[t], threads[t], limits[t], parallel_size[t],
               members_seen[t], parallel_team[t], parallel_level[t]);

    /* The default league, then omp_set_num_teams and its thread limit. */
    int count = 0, limit = 0;
#pragma omp teams
    {
        if (omp_get_team_num() == 0) count = omp_get_num_teams();
    }
    printf("default teams: %d\n", count);
    omp_set_num_teams(5);
    omp_set_teams_thread_limit(3);
    printf("set: max teams %d, teams thread limit %d\n", omp_get_max_teams(),
           omp_get_teams_thread_limit());
#pragma omp teams
    {
        if (omp_get_team_num() == 0) {
            count = omp_get_num_teams();
            limit = thread_limit();
        }
    }
    printf("teams after set: %d, limit %d\n", count, limit);

    /* distribute's static split, blocks and chunks. */
    clear_owners();
#pragma omp teams distribute num_teams(3)
    for (int i = 0; i < N; i++) owner[i] = omp_get_team_num();
    print_owners("distribute static", 3);
    clear_owners();
#pragma omp teams distribute num_teams(3) dist_schedule(static, 7)
    for (int i = 0; i < N; i++) owner[i] = omp_get_team_num();
    print_owners("distribute static,7", 3);
    clear_owners();
#pragma omp teams distribute num_teams(4) dist_schedule(static)
    for (unsigned i = 3; i < N; i += 2) owner[i] = omp_get_team_num();
    print_owners("distribute unsigned step 2", 4);
    clear_owners();
#pragma omp teams distribute num_teams(3) dist_schedule(static, 5)
    for (long long i = N - 1; i >= 0; i -= 3) owner[i] = omp_get_team_num();
    print_owners("distribute 64-bit downward", 3);
    int last = -1;
#pragma omp teams distribute num_teams(3) lastprivate(last)
    for (int i = 0; i < 100; i++) last = i * 2;
    printf("lastprivate: %d\n", last);

    /* distribute parallel for: every iteration once, and sums. */
    long long sum = 0;
    clear_owners();
#pragma omp teams distribute parallel for num_teams(3) thread_limit(2) reduction(+ : sum)
    for (int i = 0; i < N; i++) {
        owner[i] = omp_get_team_num();
        sum += i;
    }
    print_owners("distribute parallel for", 3);
    printf("sum %lld\n", sum);
    int grid[40][25] = {{0}};
#pragma omp teams distribute parallel for num_teams(2) collapse(2) schedule(dynamic, 3)
    for (int i = 0; i < 40; i++)
        for (int j = 0; j < 25; j++) grid[i][j] += i * 25 + j;
    long long grid_sum = 0;
    for (int i = 0; i < 40; i++)
        for (int j = 0; j < 25; j++) grid_sum += grid[i][j];
    printf("collapsed dynamic: %lld\n", grid_sum);
    sum = 0;
#pragma omp teams distribute parallel for simd num_teams(2) schedule(static, 4) reduction(+ : sum)
    for (int i = 0; i < N; i++) sum += (long long)i * i;
    printf("distribute parallel for simd: %lld\n", sum);

    /* teams reduction, teams loop, distribute simd, target teams. */
    int team_total = 0;
#pragma omp teams num_teams(4) reduction(+ : team_total)
    team_total += omp_get_team_num() + 1;
    printf("teams reduction: %d\n", team_total);
    double x[N];
#pragma omp teams loop num_teams(2)
    for (int i = 0; i < N; i++) x[i] = i * 0.5;
    double xs = 0;
#pragma omp teams distribute simd num_teams(3) reduction(+ : xs)
    for (int i = 0; i < N; i++) xs += x[i];
    printf("teams loop and distribute simd: %.1f\n", xs);
    long long offloaded = 0;
#pragma omp target teams distribute parallel for map(tofrom : offloaded) reduction(+ : offloaded)
    for (int i = 0; i < N; i++) offloaded += i % 7;
    printf("target teams: %lld\n", offloaded);

    /* Tasks made in a team's parallel region run within it. */
    int tasks_done[4] = {0};
#pragma omp teams num_teams(4) thread_limit(2)
    {
        int t = omp_get_team_num();
#pragma omp parallel
#pragma omp single
        for (int k = 0; k < 10; k++) {
#pragma omp task shared(tasks_done) firstprivate(t)
            {
#pragma omp atomic
                tasks_done[t]++;
            }
        }
    }
    printf("tasks: %d %d %d %d\n", tasks_done[0], tasks_done[1], tasks_done[2], tasks_done[3]);

    int a[2] = {0}, b[2] = {0};
#pragma omp parallel num_threads(2)
#pragma omp single
    {
#pragma omp target nowait depend(out : a) map(tofrom : a)
        {
            a[0] = 1;
            a[1] = 2;
        }
#pragma omp target nowait depend(in : a) depend(out : b) map(tofrom : a, b)
        b[0] = a[0] + a[1];
#pragma omp task depend(in : b) shared(b)
        b[1] = b[0] * 10;
#pragma omp taskwait
    }
    printf("target nowait: %d %d %d %d\n", a[0], a[1], b[0], b[1]);
    return 0;
}
