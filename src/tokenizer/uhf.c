/* Lookups over the HF Unicode tables (unicode_hf.c), falling back to
 * utf8proc wherever HF's data agrees with it. */
#include <utf8proc.h>

#include "tokenizer/unicode_hf.h"

int lm_uhf_in(const uint32_t (*r)[2], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (c < r[m][0]) hi = m;
        else if (c > r[m][1]) lo = m + 1;
        else return 1;
    }
    return 0;
}

static const lm_uhf_map *find_ov(const lm_uhf_map *m, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t k = (lo + hi) / 2;
        if (c < m[k].cp) hi = k;
        else if (c > m[k].cp) lo = k + 1;
        else return &m[k];
    }
    return NULL;
}

int lm_uhf_lower(uint32_t c, uint32_t *out) {
    if (c < 128) {
        out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        return 1;
    }
    const lm_uhf_map *o = find_ov(lm_uhf_lower_ov, lm_uhf_lower_ov_n, c);
    if (o) {
        for (int i = 0; i < o->n; i++) out[i] = o->to[i];
        return o->n;
    }
    if (c == 0x130) { /* the one unconditional multi-char lowercase */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}

int lm_uhf_decompose(uint32_t c, int compat, uint32_t *out) {
    if (c < 0xA0) {
        out[0] = c;
        return 1;
    }
    const lm_uhf_map *o = compat ? find_ov(lm_uhf_nfkd_ov, lm_uhf_nfkd_ov_n, c) : find_ov(lm_uhf_nfd_ov, lm_uhf_nfd_ov_n, c);
    if (o) {
        for (int i = 0; i < o->n; i++) out[i] = o->to[i];
        return o->n;
    }
    utf8proc_int32_t b[32];
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, b, 32,
                                                 UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), NULL);
    if (n <= 0 || n > 32) {
        out[0] = c;
        return 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; i++) out[i] = (uint32_t)b[i];
    return (int)n;
}

uint32_t lm_uhf_compose(uint32_t a, uint32_t b) {
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    if (n != 1) return 0;
    uint32_t r = (uint32_t)buf[0], d[32];
    /* utf8proc's pairwise composition ignores the exclusion table */
    if (utf8proc_get_property((utf8proc_int32_t)r)->comp_exclusion) return 0;
    /* HF's tables predate some compositions: compose only what it decomposes */
    if (lm_uhf_decompose(r, 0, d) == 1) return 0;
    return r;
}

int lm_uhf_ccc(uint32_t c) {
    if (c < 0x300) return 0;
    int k = utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
    /* marks newer than HF's tables are starters to it */
    return k && lm_uhf_in(lm_uhf_ccc0, lm_uhf_ccc0_n, c) ? 0 : k;
}
