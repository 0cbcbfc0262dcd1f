/* UTF-8 helpers and GPT-2's byte-level alphabet. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int lm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xC2 || c > 0xF4) return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;
    if (c == 0xF4 && s[1] >= 0x90) return 0;
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

int lm_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t lm_utf8_first_invalid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII runs are the common case: skip 8 at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int k = lm_utf8_decode(s + i, n - i, &cp);
        if (!k) return i;
        i += (size_t)k;
    }
    return n;
}

/* The "maximal subpart" rule (Unicode 3.9, used by Python's decoder): a
 * truncated but otherwise valid prefix of a sequence is one error; any
 * other bad byte is an error by itself. */
size_t lm_utf8_bad_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t i = 1;
    for (int k = 0; k < need && i < n; k++, i++) {
        uint8_t b = s[i];
        if (k == 0 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
    }
    return i;
}

size_t lm_utf8_complete_prefix(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    /* Look back at most 3 bytes for a lead byte whose sequence is cut. */
    size_t back = len < 4 ? len : 4;
    for (size_t k = 1; k <= back; k++) {
        uint8_t c = s[len - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > k && c >= 0xC2 && c <= 0xF4) return len - k;
        return len;
    }
    return len;
}

/* GPT-2 maps each byte to a printable code point: the printable Latin-1
 * bytes map to themselves, the other 68 to 256, 257, ... in byte order. */
static uint32_t bl_char[256];
static int16_t bl_byte[324];
static int bl_ready;

static void bl_init(void) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        bl_char[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int i = 0; i < 324; i++) bl_byte[i] = -1;
    for (int b = 0; b < 256; b++) bl_byte[bl_char[b]] = (int16_t)b;
    __atomic_store_n(&bl_ready, 1, __ATOMIC_RELEASE);
}

uint32_t lm_bytelevel_char(uint8_t b) {
    if (!__atomic_load_n(&bl_ready, __ATOMIC_ACQUIRE)) bl_init();
    return bl_char[b];
}

int lm_bytelevel_byte(uint32_t cp) {
    if (!__atomic_load_n(&bl_ready, __ATOMIC_ACQUIRE)) bl_init();
    return cp < 324 ? bl_byte[cp] : -1;
}

long lm_bytelevel_to_bytes(const char *s, size_t len, char *out) {
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        int k = lm_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (!k) return -1;
        int b = lm_bytelevel_byte(cp);
        if (b < 0) return -1;
        out[o++] = (char)b;
        i += (size_t)k;
    }
    return (long)o;
}

char *lm_bytelevel_from_bytes(const char *s, size_t len, size_t *out_len) {
    char *out = malloc(len * 2 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) o += (size_t)lm_utf8_encode(lm_bytelevel_char((uint8_t)s[i]), out + o);
    out[o] = 0;
    if (out_len) *out_len = o;
    return out;
}
