/* cabi_realloc: how the host hands a guest a list or string it returns
 * (canonical ABI). The block is the guest's, to free with free(). */
#include <stdlib.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size,
                                                                 size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align; /* no bytes: any aligned, non-null address */
    void *block;
    if (old) block = realloc(old, new_size);
    else if (align <= 16) block = malloc(new_size);
    else block = aligned_alloc(align, (new_size + align - 1) & ~(align - 1));
    if (!block) abort(); /* the canonical ABI has no way to report it */
    return block;
}
