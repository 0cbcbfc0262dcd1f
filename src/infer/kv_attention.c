/* Portable attention over the KV cache (see kv_attention.h): any head
 * size and CPU, one key at a time with an online softmax (running max and
 * sum, so no score buffer). The engine uses it where the AVX-512 kernel
 * has no variant; the tests hold both against a softmax in double. */
#include <math.h>
#include <string.h>

#include "infer/kv_attention.h"
#include "lmkit/base.h"

static inline float cache_at(const void *base, int f16, size_t i) {
    return f16 ? lm_f16_to_f32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

void lm_kv_attention_group(float *out, const float *q, int G, int hd, const lm_kv_head *kv, int start, int end, float scale) {
    for (int g = 0; g < G; g++) {
        const float *qg = q + (size_t)g * hd;
        float *o = out + (size_t)g * hd, mx = -INFINITY, sum = 0;
        memset(o, 0, sizeof(float) * (size_t)hd);
        for (int t = start; t < end; t++) {
            float s = 0;
            for (int d = 0; d < hd; d++) s += qg[d] * cache_at(kv->k, kv->f16, lm_kv_k_index(t, d, hd));
            s *= scale;
            if (s > mx) { /* a new maximum: rescale what was summed so far */
                float r = expf(mx - s);
                sum *= r;
                for (int d = 0; d < hd; d++) o[d] *= r;
                mx = s;
            }
            float p = expf(s - mx);
            sum += p;
            for (int d = 0; d < hd; d++) o[d] += p * cache_at(kv->v, kv->f16, (size_t)t * (size_t)hd + (size_t)d);
        }
        for (int d = 0; d < hd; d++) o[d] /= sum;
    }
}
