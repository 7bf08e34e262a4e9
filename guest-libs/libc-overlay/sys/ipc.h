/* Weft's sys/ipc.h (wasi-libc has none): musl's interface for System V
 * IPC, whose objects outlive and are shared between processes: a Weft
 * program is one process and has none of them, so shmget, semget and
 * msgget fail with ENOSYS (libweft's portable.c). */
#ifndef WEFT_SYS_IPC_H
#define WEFT_SYS_IPC_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipc_perm {
    key_t __ipc_perm_key;
    uid_t uid;
    gid_t gid;
    uid_t cuid;
    gid_t cgid;
    mode_t mode;
    int __ipc_perm_seq;
    long __pad1, __pad2;
};

#define IPC_CREAT 01000
#define IPC_EXCL 02000
#define IPC_NOWAIT 04000
#define IPC_RMID 0
#define IPC_SET 1
#define IPC_STAT 2
#define IPC_INFO 3
#define IPC_PRIVATE ((key_t)0)

key_t ftok(const char *, int);

#ifdef __cplusplus
}
#endif
#endif
