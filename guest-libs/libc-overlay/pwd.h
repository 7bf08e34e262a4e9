/* Weft's pwd.h (wasi-libc has none): musl's interface. A Weft program has
 * no user database: every look-up finds nothing (NULL, errno unchanged, as
 * for a name that does not exist), and the _r forms return 0 with a NULL
 * result (libweft's portable.c). */
#ifndef WEFT_PWD_H
#define WEFT_PWD_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct passwd {
    char *pw_name;
    char *pw_passwd;
    uid_t pw_uid;
    gid_t pw_gid;
    char *pw_gecos;
    char *pw_dir;
    char *pw_shell;
};

struct passwd *getpwnam(const char *);
struct passwd *getpwuid(uid_t);
int getpwnam_r(const char *, struct passwd *, char *, size_t, struct passwd **);
int getpwuid_r(uid_t, struct passwd *, char *, size_t, struct passwd **);
void setpwent(void);
void endpwent(void);
struct passwd *getpwent(void);

#ifdef __cplusplus
}
#endif
#endif
