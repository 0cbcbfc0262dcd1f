/* Open-addressing hash maps for the vocabulary (token text -> id) and the
 * BPE merges ((left id, right id) -> rank, merged id). Linear probing with
 * a load factor under 1/2 keeps lookups to one or two cache lines, which is
 * what the encode hot loop needs. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t lm_hash_bytes(const void *p, size_t n) {
    /* FNV-1a over 8-byte words then bytes, finished with a mixer: cheap for
     * the short keys of a vocabulary. */
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *s++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h;
}

static lm_status strmap_grow(lm_strmap *m) {
    uint32_t ncap = m->cap ? m->cap * 2 : 64;
    struct lm_strslot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for vocabulary map");
    for (uint32_t i = 0; i < ncap; i++) ns[i].v = -1;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].v < 0) continue;
        uint32_t j = (uint32_t)m->slots[i].h & (ncap - 1);
        while (ns[j].v >= 0) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return LM_OK;
}

lm_status lm_strmap_put(lm_strmap *m, const char *k, uint32_t klen, int32_t v) {
    if ((m->n + 1) * 2 > m->cap) LM_TRY(strmap_grow(m));
    uint64_t h = lm_hash_bytes(k, klen);
    uint32_t i = (uint32_t)h & (m->cap - 1);
    for (;;) {
        struct lm_strslot *s = &m->slots[i];
        if (s->v < 0) {
            s->k = k;
            s->klen = klen;
            s->v = v;
            s->h = h;
            m->n++;
            return LM_OK;
        }
        if (s->h == h && s->klen == klen && !memcmp(s->k, k, klen)) {
            s->v = v; /* later definition wins, as in a JSON object */
            return LM_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

int32_t lm_strmap_get(const lm_strmap *m, const char *k, size_t klen) {
    if (!m->cap) return -1;
    uint64_t h = lm_hash_bytes(k, klen);
    uint32_t i = (uint32_t)h & (m->cap - 1);
    for (;;) {
        const struct lm_strslot *s = &m->slots[i];
        if (s->v < 0) return -1;
        if (s->h == h && s->klen == klen && !memcmp(s->k, k, klen)) return s->v;
        i = (i + 1) & (m->cap - 1);
    }
}

void lm_strmap_free(lm_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static lm_status pairmap_grow(lm_pairmap *m) {
    uint32_t ncap = m->cap ? m->cap * 2 : 1024;
    struct lm_pairslot *ns = malloc((size_t)ncap * sizeof *ns);
    if (!ns) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for merges map");
    for (uint32_t i = 0; i < ncap; i++) ns[i].id = -1;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].id < 0) continue;
        uint64_t h = m->slots[i].key * 0x9E3779B97F4A7C15ull;
        uint32_t j = (uint32_t)(h >> 32) & (ncap - 1);
        while (ns[j].id >= 0) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return LM_OK;
}

lm_status lm_pairmap_put(lm_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    if ((m->n + 1) * 2 > m->cap) LM_TRY(pairmap_grow(m));
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & (m->cap - 1);
    for (;;) {
        struct lm_pairslot *s = &m->slots[i];
        if (s->id < 0) {
            s->key = key;
            s->rank = rank;
            s->id = id;
            m->n++;
            return LM_OK;
        }
        if (s->key == key) {
            /* A pair listed twice keeps its first (best) rank, as HF does. */
            return LM_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

void lm_pairmap_free(lm_pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
