/* Process-level headers and calls portable thread programs use: they
 * compile, and each answers as natively or, where Weft cannot (a program
 * is one process: no fork, exec, shell or children), fails at run time
 * with an errno. Lines that a native run and Weft may answer differently
 * (fork works natively) print what both have in common. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ECHILD: return "ECHILD";
    case ESRCH: return "ESRCH";
    case ERANGE: return "ERANGE";
    case ENOENT: return "ENOENT";
    default: return "another errno";
    }
}

static const char *yes(int ok) { return ok ? "yes" : "no"; }

/* Spins until the calling thread has used `ms` of CPU time. */
static void burn(long ms) {
    struct timespec start, now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    volatile unsigned long x = 0;
    do {
        x += 1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static pthread_barrier_t barrier;

struct thread_report {
    pid_t tid, syscall_tid;
    char first_name[16], set_name[16];
    double cpu;
};

static void *worker(void *arg) {
    struct thread_report *r = arg;
    r->tid = gettid();
    r->syscall_tid = (pid_t)syscall(SYS_gettid);
    prctl(PR_GET_NAME, r->first_name);
    prctl(PR_SET_NAME, "worker-with-a-long-name");
    prctl(PR_GET_NAME, r->set_name);
    burn(30);
    struct rusage self;
    getrusage(RUSAGE_THREAD, &self);
    r->cpu = seconds(self.ru_utime) + seconds(self.ru_stime);
    pthread_barrier_wait(&barrier); /* main reads this thread's name */
    pthread_barrier_wait(&barrier);
    return NULL;
}

int main(void) {
    /* Processors: what the host offers, the same through every call. */
    long online = sysconf(_SC_NPROCESSORS_ONLN), conf = sysconf(_SC_NPROCESSORS_CONF);
    cpu_set_t set;
    CPU_ZERO(&set);
    int got = sched_getaffinity(0, sizeof set, &set);
    printf("processors: at least one %s, get_nprocs agrees %s, configured >= online %s\n",
           yes(online >= 1), yes(get_nprocs() == online && get_nprocs_conf() == conf),
           yes(conf >= online));
    printf("affinity: %d, usable %s, setaffinity to the same set %d\n", got,
           yes(CPU_COUNT(&set) >= 1 && CPU_COUNT(&set) <= online),
           sched_setaffinity(0, sizeof set, &set));
    CPU_ZERO(&set);
    int rc = sched_setaffinity(0, sizeof set, &set);
    printf("affinity to no processor: %d %s\n", rc, errno_name(errno));
    int cpu = sched_getcpu();
    printf("sched_getcpu: a processor or ENOSYS %s\n", yes(cpu >= 0 || errno == ENOSYS));

    /* Other processes. */
    fflush(stdout);
    int status = 0;
    pid_t child = fork();
    if (child == 0) _exit(7);
    int fork_errno = errno;
    if (child > 0) waitpid(child, &status, 0);
    printf("fork: a child that exits 7, or ENOSYS %s\n",
           yes(child > 0 ? WIFEXITED(status) && WEXITSTATUS(status) == 7
                         : fork_errno == ENOSYS));
    pid_t waited = wait(&status);
    printf("wait without children: %d %s\n", (int)waited, errno_name(errno));
    waited = waitpid(-1, &status, WNOHANG);
    printf("waitpid without children: %d %s\n", (int)waited, errno_name(errno));
    char *argv[] = {"weft-no-such-program", NULL};
    rc = execv("/weft-no-such-dir/weft-no-such-program", argv);
    printf("execv: %d, ENOENT or ENOSYS %s\n", rc, yes(errno == ENOENT || errno == ENOSYS));
    rc = execvp("weft-no-such-program", argv);
    printf("execvp: %d, ENOENT or ENOSYS %s\n", rc, yes(errno == ENOENT || errno == ENOSYS));
    rc = kill(INT_MAX, 0);
    printf("kill of a process that does not exist: %d %s\n", rc, errno_name(errno));
    printf("kill of the program itself, signal 0: %d\n", kill(getpid(), 0));
    printf("status macros: exited %d code %d, signalled %d signal %d\n", WIFEXITED(3 << 8),
           WEXITSTATUS(3 << 8), WIFSIGNALED(SIGTERM), WTERMSIG(SIGTERM));

    /* CPU time: clock, times and getrusage all see it pass. */
    struct tms before, after;
    clock_t real_before = times(&before);
    struct rusage usage_before, usage_after;
    getrusage(RUSAGE_SELF, &usage_before);
    clock_t cpu_before = clock();
    burn(60);
    clock_t cpu_after = clock();
    clock_t real_after = times(&after);
    getrusage(RUSAGE_SELF, &usage_after);
    printf("clock: at least 50 ms of CPU time %s\n",
           yes((cpu_after - cpu_before) * 1000 / CLOCKS_PER_SEC >= 50));
    printf("clock ticks per second: %ld\n", sysconf(_SC_CLK_TCK));
    printf("times: CPU time advanced %s, real time advanced %s, no children %s\n",
           yes(after.tms_utime + after.tms_stime > before.tms_utime + before.tms_stime),
           yes(real_after > real_before), yes(after.tms_cutime == 0 && after.tms_cstime == 0));
    printf("getrusage: CPU time advanced %s\n",
           yes(seconds(usage_after.ru_utime) + seconds(usage_after.ru_stime) >
               seconds(usage_before.ru_utime) + seconds(usage_before.ru_stime)));
    rc = getrusage(99, &usage_after);
    printf("getrusage of nobody: %d %s\n", rc, errno_name(errno));

    /* Limits and priority, kept as set. */
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    printf("RLIMIT_NOFILE soft <= hard: %s\n", yes(limit.rlim_cur <= limit.rlim_max));
    getrlimit(RLIMIT_CORE, &limit);
    limit.rlim_cur = 0;
    rc = setrlimit(RLIMIT_CORE, &limit);
    getrlimit(RLIMIT_CORE, &limit);
    printf("lowering RLIMIT_CORE: %d, now %llu\n", rc, (unsigned long long)limit.rlim_cur);
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 1 : limit.rlim_max;
    limit.rlim_max = limit.rlim_cur - 1;
    rc = setrlimit(RLIMIT_CORE, &limit);
    printf("soft above hard: %d %s\n", rc, errno_name(errno));
    int nice_before = getpriority(PRIO_PROCESS, 0);
    int raised = setpriority(PRIO_PROCESS, 0, nice_before + 1);
    printf("nice raised by one: %d %s\n", raised,
           yes(getpriority(PRIO_PROCESS, 0) == nice_before + 1));

    /* The machine, and ids. */
    struct utsname name;
    rc = uname(&name);
    printf("uname: %d, names given %s\n", rc, yes(name.sysname[0] && name.machine[0]));
    struct sysinfo info;
    rc = sysinfo(&info);
    printf("sysinfo: %d, memory known %s\n", rc, yes(info.totalram > 0));
    printf("main thread: gettid is getpid %s, syscall agrees %s, getppid answers %s\n",
           yes(gettid() == getpid()), yes(syscall(SYS_gettid) == getpid()),
           yes(getppid() >= 0));
    long answer = syscall(-5);
    printf("a system call not offered: %ld %s\n", answer, errno_name(errno));
    printf("system(NULL) answers %s\n", yes(system(NULL) >= 0));

    /* Thread names, ids and CPU time. */
    char own[16], small[8];
    rc = pthread_setname_np(pthread_self(), "main-thread");
    pthread_getname_np(pthread_self(), own, sizeof own);
    printf("own name set: %d, read back: %s\n", rc, own);
    printf("name of 16 bytes: %s\n",
           errno_name(pthread_setname_np(pthread_self(), "sixteen-byte-nam")));
    printf("name into 8 bytes: %s\n",
           errno_name(pthread_getname_np(pthread_self(), small, sizeof small)));

    pthread_barrier_init(&barrier, NULL, 3);
    struct thread_report report[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, &report[i]);
    pthread_barrier_wait(&barrier);
    char theirs[16];
    pthread_getname_np(t[0], theirs, sizeof theirs);
    printf("a thread's name, read by main: %s\n", theirs);
    pthread_setname_np(t[1], "renamed");
    pthread_getname_np(t[1], theirs, sizeof theirs);
    printf("a thread renamed by main: %s\n", theirs);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++)
        printf("thread %d: first name %s, set %s, gettid %s, syscall agrees %s, CPU time %s\n", i,
               report[i].first_name, report[i].set_name,
               yes(report[i].tid != getpid() && report[i].tid > 0),
               yes(report[i].syscall_tid == report[i].tid), yes(report[i].cpu > 0.01));
    printf("thread ids differ: %s\n", yes(report[0].tid != report[1].tid));
    return 0;
}
