/* OpenMP's device memory routines, for the one device there is: the host
 * (omp_get_initial_device(), 0; also -1, the 5.2 name for it). Device
 * memory is host memory, so they are malloc, free and memcpy, and answer
 * as libgomp does with no offload device: a pointer is present and
 * accessible, associating host and device pointers is EINVAL, and any
 * other device number is refused (NULL, EINVAL). The asynchronous copies
 * happen at once, after the sibling tasks they may depend on. */
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_DEVICE_ALIAS (-1)

static int host_device(int device_num) {
    return device_num == omp_get_initial_device() || device_num == INITIAL_DEVICE_ALIAS;
}

void *omp_target_alloc(size_t size, int device_num) {
    return host_device(device_num) ? malloc(size) : NULL;
}

void omp_target_free(void *ptr, int device_num) {
    if (host_device(device_num)) free(ptr);
}

int omp_target_is_present(const void *ptr, int device_num) {
    (void)ptr;
    return host_device(device_num);
}

int omp_target_is_accessible(const void *ptr, size_t size, int device_num) {
    (void)ptr, (void)size;
    return host_device(device_num);
}

void *omp_get_mapped_ptr(const void *ptr, int device_num) {
    return host_device(device_num) ? (void *)ptr : NULL;
}

int omp_target_associate_ptr(const void *host_ptr, const void *device_ptr, size_t size,
                             size_t device_offset, int device_num) {
    (void)host_ptr, (void)device_ptr, (void)size, (void)device_offset, (void)device_num;
    return EINVAL;
}

int omp_target_disassociate_ptr(const void *ptr, int device_num) {
    (void)ptr, (void)device_num;
    return EINVAL;
}

int omp_target_memcpy(void *dst, const void *src, size_t length, size_t dst_offset,
                      size_t src_offset, int dst_device_num, int src_device_num) {
    if (!host_device(dst_device_num) || !host_device(src_device_num)) return EINVAL;
    memmove((char *)dst + dst_offset, (const char *)src + src_offset, length);
    return 0;
}

/* Copies the sub-volume of `dims` dimensions, from the outermost. */
static void copy_rect(char *dst, const char *src, size_t element_size, int dims,
                      const size_t *volume, const size_t *dst_offsets, const size_t *src_offsets,
                      const size_t *dst_dimensions, const size_t *src_dimensions) {
    if (dims == 1) {
        memmove(dst + dst_offsets[0] * element_size, src + src_offsets[0] * element_size,
                volume[0] * element_size);
        return;
    }
    /* The bytes one step of this dimension spans. */
    size_t dst_row = element_size, src_row = element_size;
    for (int d = 1; d < dims; d++) dst_row *= dst_dimensions[d], src_row *= src_dimensions[d];
    for (size_t i = 0; i < volume[0]; i++)
        copy_rect(dst + (dst_offsets[0] + i) * dst_row, src + (src_offsets[0] + i) * src_row,
                  element_size, dims - 1, volume + 1, dst_offsets + 1, src_offsets + 1,
                  dst_dimensions + 1, src_dimensions + 1);
}

int omp_target_memcpy_rect(void *dst, const void *src, size_t element_size, int num_dims,
                           const size_t *volume, const size_t *dst_offsets,
                           const size_t *src_offsets, const size_t *dst_dimensions,
                           const size_t *src_dimensions, int dst_device_num,
                           int src_device_num) {
    if (!dst && !src) return INT_MAX; /* the dimensions it can copy */
    if (!host_device(dst_device_num) || !host_device(src_device_num) || num_dims < 1 ||
        !dst || !src || element_size == 0)
        return EINVAL;
    copy_rect(dst, src, element_size, num_dims, volume, dst_offsets, src_offsets, dst_dimensions,
              src_dimensions);
    return 0;
}

/* The copy a target task would make: once the tasks it depends on ended
 * (waiting for every child of the current task is more than it needs,
 * never less). */
int32_t __kmpc_omp_taskwait(void *loc, int32_t gtid);

static void after_dependences(int depobj_count) {
    if (depobj_count > 0) __kmpc_omp_taskwait(NULL, 0);
}

int omp_target_memcpy_async(void *dst, const void *src, size_t length, size_t dst_offset,
                            size_t src_offset, int dst_device_num, int src_device_num,
                            int depobj_count, omp_depend_t *depobj_list) {
    (void)depobj_list;
    after_dependences(depobj_count);
    return omp_target_memcpy(dst, src, length, dst_offset, src_offset, dst_device_num,
                             src_device_num);
}

int omp_target_memcpy_rect_async(void *dst, const void *src, size_t element_size, int num_dims,
                                 const size_t *volume, const size_t *dst_offsets,
                                 const size_t *src_offsets, const size_t *dst_dimensions,
                                 const size_t *src_dimensions, int dst_device_num,
                                 int src_device_num, int depobj_count,
                                 omp_depend_t *depobj_list) {
    (void)depobj_list;
    after_dependences(depobj_count);
    return omp_target_memcpy_rect(dst, src, element_size, num_dims, volume, dst_offsets,
                                  src_offsets, dst_dimensions, src_dimensions, dst_device_num,
                                  src_device_num);
}
