/* Headers that portable thread programs include and wasi-libc lacks or
 * refuses: setjmp.h, spawn.h, sys/ipc.h, sys/shm.h, sys/sem.h, pwd.h,
 * grp.h, syslog.h. They compile; what needs another process or a
 * non-local jump fails at run time (natively it may work: both print
 * what they have in common). Each thread runs the checks in turn. */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <syslog.h>

static jmp_buf env;

static void *checks(void *arg) {
    long who = (long)arg;
    int jumped = setjmp(env);
    printf("[%ld] setjmp returned %d\n", who, jumped);

    posix_spawnattr_t attr;
    short flags = 0;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_getflags(&attr, &flags);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int closed = posix_spawn_file_actions_addclose(&actions, 3);
    int bad = posix_spawn_file_actions_addclose(&actions, -1);
    pid_t pid;
    char *argv[] = {"weft-missing-program", NULL};
    char *envp[] = {NULL};
    int spawned = posix_spawn(&pid, "/weft/missing/program", &actions, &attr, argv, envp);
    printf("[%ld] spawn flags %d, addclose %d, bad fd %s, missing program refused %d\n", who, flags,
           closed, bad == EBADF ? "EBADF" : "?", spawned != 0);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);

    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    int shm_errno = errno;
    if (shm >= 0) shmctl(shm, IPC_RMID, NULL);
    int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    int sem_errno = errno;
    if (sem >= 0) semctl(sem, 0, IPC_RMID);
    printf("[%ld] shmget: a segment or ENOSYS %d; semget: a set or ENOSYS %d\n", who,
           shm >= 0 || shm_errno == ENOSYS, sem >= 0 || sem_errno == ENOSYS);

    struct passwd *user = getpwnam("weft-no-such-user");
    struct group *group = getgrnam("weft-no-such-group");
    struct passwd entry, *found = &entry;
    char buffer[256];
    int rc = getpwnam_r("weft-no-such-user", &entry, buffer, sizeof buffer, &found);
    printf("[%ld] unknown user found %d, group found %d, getpwnam_r %d found %d\n", who,
           user != NULL, group != NULL, rc, found != NULL);

    /* Only emergencies pass the mask: the debug message goes nowhere. */
    openlog("portable_headers", LOG_PID, LOG_USER);
    int old = setlogmask(LOG_MASK(LOG_EMERG));
    syslog(LOG_DEBUG, "thread %ld", who);
    setlogmask(old);
    closelog();
    printf("[%ld] syslog mask was %#x\n", who, old);
    return NULL;
}

int main(void) {
    checks((void *)0L);
    for (long t = 1; t <= 2; t++) {
        pthread_t thread;
        pthread_create(&thread, NULL, checks, (void *)t);
        pthread_join(thread, NULL);
    }
    return 0;
}
