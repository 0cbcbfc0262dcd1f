/* Aligned, zeroed allocations: 64 bytes matches a cache line and an
 * AVX-512 register, so kernels may use aligned loads on whole buffers. */
#include "lmkit/base.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *lm_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        lm_error(LM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void *lm_alloc_huge(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return lm_alloc(bytes);
    size_t rounded = (bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, rounded);
    if (!p) {
        lm_error(LM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE); /* advice: where refused, 4 KiB pages work as before */
#endif
    memset(p, 0, rounded); /* the first touch, which places the pages */
    return p;
}

void lm_free(void *p) { free(p); }

float *lm_alloc_slots(const lm_float_slot *slots, size_t count) {
    size_t total = 0;
    for (size_t i = 0; i < count; i++) total += (slots[i].n + 15) & ~(size_t)15;
    float *mem = lm_alloc_huge(total * sizeof(float));
    if (!mem) return NULL;
    float *cursor = mem;
    for (size_t i = 0; i < count; i++) {
        *slots[i].ptr = slots[i].n ? cursor : NULL;
        cursor += (slots[i].n + 15) & ~(size_t)15;
    }
    return mem;
}
