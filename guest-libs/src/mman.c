/* Memory mappings for programs that allocate with mmap. Wasm has one
 * linear memory and no page protection, so a mapping is a block of the
 * heap (in chain mode the thread's arena), aligned to the page size
 * sysconf reports (64 KiB) and zeroed, or, for a file, filled with its
 * contents. Writes to a mapping never reach a file, so shared writable
 * file mappings are refused (ENODEV); mprotect accepts only read and
 * write (as wasi-libc's own emulation); locking and advice succeed and
 * change nothing.
 *
 * Each mapping keeps a record just past its last page, where munmap and
 * mremap find it from the address and length: a mapping is unmapped
 * whole (EINVAL otherwise). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 65536u
#define MAGIC 0x574d4150u /* "WMAP" */

struct record {
    uint32_t magic;
    void *start;
    size_t length;
    uint32_t spare;
};

static size_t pages_of(size_t length) { return (length + PAGE - 1) & ~(size_t)(PAGE - 1); }

static struct record *record_of(void *addr, size_t length) {
    if (!addr || (uintptr_t)addr % PAGE || !length || length > SIZE_MAX - 2 * PAGE) return NULL;
    struct record *r = (struct record *)((char *)addr + pages_of(length));
    return r->magic == MAGIC && r->start == addr && pages_of(r->length) == pages_of(length)
               ? r
               : NULL;
}

/* A new mapping of `length` bytes, zeroed; MAP_FAILED and errno set. */
static void *new_mapping(size_t length) {
    if (length > SIZE_MAX - 2 * PAGE) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    size_t bytes = pages_of(length);
    char *start = aligned_alloc(PAGE, bytes + sizeof(struct record));
    if (!start) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    memset(start, 0, bytes);
    *(struct record *)(start + bytes) = (struct record){MAGIC, start, length, 0};
    return start;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    (void)addr; /* a hint only */
    int type = flags & MAP_TYPE;
    if (!length || (type != MAP_PRIVATE && type != MAP_SHARED) || (flags & MAP_FIXED) ||
        (flags & MAP_FIXED_NOREPLACE) || offset < 0 || offset % PAGE) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    int anonymous = flags & MAP_ANONYMOUS;
    if (!anonymous && type == MAP_SHARED && (prot & PROT_WRITE)) {
        errno = ENODEV;
        return MAP_FAILED;
    }
    char *start = new_mapping(length);
    if (start == MAP_FAILED || anonymous) return start;
    for (size_t done = 0; done < length;) {
        ssize_t n = pread(fd, start + done, length - done, offset + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int error = errno == EISDIR ? ENODEV : errno;
            free(start);
            errno = error;
            return MAP_FAILED;
        }
        if (n == 0) break; /* past the end of the file: zeros */
        done += (size_t)n;
    }
    return start;
}

int munmap(void *addr, size_t length) {
    struct record *r = record_of(addr, length);
    if (!r) {
        errno = EINVAL;
        return -1;
    }
    r->magic = 0;
    free(addr);
    return 0;
}

void *mremap(void *old, size_t old_length, size_t new_length, int flags, ...) {
    struct record *r = record_of(old, old_length);
    if (!r || !new_length || (flags & ~MREMAP_MAYMOVE)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (pages_of(new_length) <= pages_of(old_length)) {
        /* Shrinks in place: the record moves to the new end (the pages
         * past it go back with the block when it is unmapped). */
        r->magic = 0;
        *(struct record *)((char *)old + pages_of(new_length)) =
            (struct record){MAGIC, old, new_length, 0};
        return old;
    }
    if (!(flags & MREMAP_MAYMOVE)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    char *moved = new_mapping(new_length);
    if (moved == MAP_FAILED) return moved;
    memcpy(moved, old, old_length < new_length ? old_length : new_length);
    munmap(old, old_length);
    return moved;
}

int mprotect(void *addr, size_t length, int prot) {
    (void)length;
    if ((uintptr_t)addr % PAGE) {
        errno = EINVAL;
        return -1;
    }
    if ((prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE)) {
        errno = ENOTSUP;
        return -1;
    }
    return 0;
}

int msync(void *addr, size_t length, int flags) {
    (void)length;
    if ((uintptr_t)addr % PAGE || (flags & MS_SYNC && flags & MS_ASYNC)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int madvise(void *addr, size_t length, int advice) {
    (void)addr, (void)length, (void)advice;
    return 0;
}

int posix_madvise(void *addr, size_t length, int advice) {
    (void)addr, (void)length, (void)advice;
    return 0;
}

int mlock(const void *addr, size_t length) {
    (void)addr, (void)length;
    return 0;
}

int mlock2(const void *addr, size_t length, unsigned flags) {
    (void)addr, (void)length, (void)flags;
    return 0;
}

int munlock(const void *addr, size_t length) {
    (void)addr, (void)length;
    return 0;
}

int mlockall(int flags) {
    (void)flags;
    return 0;
}

int munlockall(void) { return 0; }

/* Every page of a mapping is resident. */
int mincore(void *addr, size_t length, unsigned char *resident) {
    if ((uintptr_t)addr % PAGE) {
        errno = EINVAL;
        return -1;
    }
    memset(resident, 1, pages_of(length) / PAGE);
    return 0;
}

/* Shared memory objects and memory files need a file system of their own. */
int shm_open(const char *name, int flags, mode_t mode) {
    (void)name, (void)flags, (void)mode;
    errno = ENOSYS;
    return -1;
}

int shm_unlink(const char *name) {
    (void)name;
    errno = ENOSYS;
    return -1;
}

int memfd_create(const char *name, unsigned flags) {
    (void)name, (void)flags;
    errno = ENOSYS;
    return -1;
}

int remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags) {
    (void)addr, (void)size, (void)prot, (void)pgoff, (void)flags;
    errno = ENOSYS;
    return -1;
}
