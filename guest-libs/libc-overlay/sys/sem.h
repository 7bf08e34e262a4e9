/* Weft's sys/sem.h (wasi-libc has none): System V semaphore sets, which
 * fail with ENOSYS here (see sys/ipc.h; POSIX semaphores, <semaphore.h>,
 * work). */
#ifndef WEFT_SYS_SEM_H
#define WEFT_SYS_SEM_H

#include <sys/ipc.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct semid_ds {
    struct ipc_perm sem_perm;
    time_t sem_otime;
    time_t sem_ctime;
    unsigned short sem_nsems;
};

struct sembuf {
    unsigned short sem_num;
    short sem_op;
    short sem_flg;
};

#define SEM_UNDO 0x1000
#define GETPID 11
#define GETVAL 12
#define GETALL 13
#define GETNCNT 14
#define GETZCNT 15
#define SETVAL 16
#define SETALL 17

int semget(key_t, int, int);
int semctl(int, int, int, ...);
int semop(int, struct sembuf *, size_t);
int semtimedop(int, struct sembuf *, size_t, const struct timespec *);

#ifdef __cplusplus
}
#endif
#endif
