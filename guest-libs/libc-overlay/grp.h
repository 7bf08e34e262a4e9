/* Weft's grp.h (wasi-libc has none): musl's interface. No group database:
 * every look-up finds nothing (libweft's portable.c). */
#ifndef WEFT_GRP_H
#define WEFT_GRP_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct group {
    char *gr_name;
    char *gr_passwd;
    gid_t gr_gid;
    char **gr_mem;
};

struct group *getgrgid(gid_t);
struct group *getgrnam(const char *);
int getgrnam_r(const char *, struct group *, char *, size_t, struct group **);
int getgrgid_r(gid_t, struct group *, char *, size_t, struct group **);
void setgrent(void);
void endgrent(void);
struct group *getgrent(void);

#ifdef __cplusplus
}
#endif
#endif
