/* Token shards: a tiny header and packed little-endian tokens, memory-mapped
 * for training so a multi-GB corpus costs no RAM. */
#include "lmkit/train.h"

#include <stdlib.h>
#include <string.h>

static void lm_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void lm_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t lm_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t lm_get_u64(const uint8_t *p) { return (uint64_t)lm_get_u32(p) | ((uint64_t)lm_get_u32(p + 4) << 32); }

lm_status lm_shard_write(const char *path, const int32_t *tokens, uint64_t n, int vocab_size) {
    if (vocab_size < 1) return lm_error(LM_ERR_ARG, "%s: vocab size %d must be positive", path, vocab_size);
    int width = vocab_size <= 65536 ? 2 : 4;
    uint8_t header[LM_SHARD_HEADER_BYTES] = {0};
    lm_put_u32(header, LM_SHARD_MAGIC);
    lm_put_u32(header + 4, LM_SHARD_VERSION);
    lm_put_u32(header + 8, (uint32_t)width);
    lm_put_u32(header + 12, (uint32_t)vocab_size);
    lm_put_u64(header + 16, n);
    lm_atomic_file af;
    LM_TRY(lm_atomic_open(&af, path));
    lm_status s = lm_atomic_write(&af, header, sizeof header);
    uint8_t buf[1 << 14];
    size_t fill = 0;
    for (uint64_t i = 0; i < n && s == LM_OK; i++) {
        uint32_t t = (uint32_t)tokens[i];
        if (tokens[i] < 0 || tokens[i] >= vocab_size) {
            s = lm_error(LM_ERR_RANGE, "%s: token %d at index %llu is outside the vocabulary [0, %d)", path, tokens[i],
                         (unsigned long long)i, vocab_size);
            break;
        }
        for (int b = 0; b < width; b++) buf[fill++] = (uint8_t)(t >> (8 * b));
        if (fill + 4 > sizeof buf) {
            s = lm_atomic_write(&af, buf, fill);
            fill = 0;
        }
    }
    if (s == LM_OK) s = lm_atomic_write(&af, buf, fill);
    if (s != LM_OK) {
        lm_atomic_abort(&af);
        return s;
    }
    return lm_atomic_commit(&af);
}

lm_status lm_shard_open(const char *path, lm_shard *s) {
    memset(s, 0, sizeof *s);
    LM_TRY(lm_mmap_open(path, &s->map));
    const uint8_t *p = s->map.data;
    lm_status st = LM_OK;
    if (s->map.size < LM_SHARD_HEADER_BYTES)
        st = lm_error(LM_ERR_FORMAT, "%s: truncated shard header (%zu bytes, need %d)", path, s->map.size, LM_SHARD_HEADER_BYTES);
    else if (lm_get_u32(p) != LM_SHARD_MAGIC)
        st = lm_error(LM_ERR_FORMAT, "%s: bad magic 0x%08x (not an lmkit token shard)", path, lm_get_u32(p));
    else if (lm_get_u32(p + 4) != LM_SHARD_VERSION)
        st = lm_error(LM_ERR_FORMAT, "%s: unsupported shard version %u", path, lm_get_u32(p + 4));
    else if (lm_get_u32(p + 8) != 2 && lm_get_u32(p + 8) != 4)
        st = lm_error(LM_ERR_FORMAT, "%s: token width %u must be 2 or 4", path, lm_get_u32(p + 8));
    else if (lm_get_u32(p + 12) < 1 || lm_get_u32(p + 12) > (1u << 24))
        st = lm_error(LM_ERR_FORMAT, "%s: vocab size %u out of range", path, lm_get_u32(p + 12));
    else if (lm_get_u64(p + 24) != 0) /* reserved for a future field: refuse what this reader would misread */
        st = lm_error(LM_ERR_FORMAT, "%s: reserved header field (offset 24) is %llu, must be 0", path,
                      (unsigned long long)lm_get_u64(p + 24));
    if (st == LM_OK) {
        s->width = (int)lm_get_u32(p + 8);
        s->vocab_size = (int)lm_get_u32(p + 12);
        s->n_tokens = lm_get_u64(p + 16);
        uint64_t payload = s->map.size - LM_SHARD_HEADER_BYTES;
        if (s->n_tokens > payload / (uint64_t)s->width || s->n_tokens * (uint64_t)s->width != payload)
            st = lm_error(LM_ERR_FORMAT, "%s: header says %llu tokens (%llu bytes) but the file holds %llu bytes of tokens", path,
                          (unsigned long long)s->n_tokens, (unsigned long long)(s->n_tokens * (uint64_t)s->width),
                          (unsigned long long)payload);
    }
    if (st == LM_OK) {
        s->tokens = p + LM_SHARD_HEADER_BYTES;
        for (uint64_t i = 0; i < s->n_tokens; i++)
            if (lm_shard_token(s, i) >= s->vocab_size) {
                st = lm_error(LM_ERR_FORMAT, "%s: token %d at index %llu is outside the vocabulary [0, %d)", path,
                              lm_shard_token(s, i), (unsigned long long)i, s->vocab_size);
                break;
            }
    }
    if (st != LM_OK) lm_shard_close(s);
    return st;
}

void lm_shard_close(lm_shard *s) {
    lm_mmap_close(&s->map);
    memset(s, 0, sizeof *s);
}
