/* CPU feature detection (cpuid + xgetbv, once) and the SIMD level the
 * dispatching kernels use. */
#include "kernels/kernels_ref.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>

static lm_cpu_features g_cpu;
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;
static atomic_int g_force_scalar;
static atomic_int g_force_level = -1;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(lm_cpu_features *f) {
    unsigned a, b, c, d;
    *f = (lm_cpu_features){0};
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask + ZMM state */
    if (!ymm_ok) return;
    f->fma = fma;
    f->f16c = f16c;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512_vnni = (c >> 11) & 1;
    }
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f->avx_vnni = (a1 >> 4) & 1;
    if (zmm_ok) f->avx512_bf16 = (a1 >> 5) & 1;
    (void)b1; (void)c1; (void)d1;
}

static void detect_once(void) { detect(&g_cpu); }

const lm_cpu_features *lm_cpu(void) {
    pthread_once(&g_cpu_once, detect_once);
    return &g_cpu;
}

void lm_kernels_force_scalar(int on) { atomic_store(&g_force_scalar, on ? 1 : 0); }

int lm_simd_best(void) {
    const lm_cpu_features *f = lm_cpu();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->fma) return LM_SIMD_AVX512;
    if (f->avx2 && f->fma) return LM_SIMD_AVX2;
    return LM_SIMD_SCALAR;
}

void lm_simd_force_level(int level) { atomic_store(&g_force_level, level); }

int lm_simd_level(void) {
    if (atomic_load_explicit(&g_force_scalar, memory_order_relaxed)) return LM_SIMD_SCALAR;
    int best = lm_simd_best(), forced = atomic_load_explicit(&g_force_level, memory_order_relaxed);
    return forced >= 0 && forced < best ? forced : best;
}
