/* Replays the fuzz targets over their seed corpus, every truncation of
 * each seed, and deterministic random byte mutations, so the parsers'
 * bad-input paths run in every `ctest` (under ASan/UBSan in the sanitizer
 * build) even without clang/libFuzzer. Also checks the seeds parse: one
 * was written by gguf-py (all value types), one by lmkit convert; the
 * HF directory seeds (fuzz_hf.c) are tiny_llama.gguf converted by lmkit
 * to an HF directory, as LLaMA, Mistral (sliding window) and Qwen2 (q/k/v
 * biases added). */
#include <dirent.h>

#include "lmkit/gguf.h"
#include "test.h"

#define LLVMFuzzerTestOneInput fuzz_gguf
#include "../fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_llama2c
#include "../fuzz/fuzz_llama2c.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_hf
#include "../fuzz/fuzz_hf.c"
#undef LLVMFuzzerTestOneInput

static int replay(const char *dir, int (*fn)(const uint8_t *, size_t), int mutations) {
    DIR *d = opendir(test_src_path(dir));
    int files = 0;
    if (!d) return 0;
    char dpath[4096];
    snprintf(dpath, sizeof dpath, "%s", test_src_path(dir));
    struct dirent *de;
    lm_rng r;
    lm_rng_seed(&r, 42, 0);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dpath, de->d_name);
        char *buf;
        size_t n;
        if (lm_read_file(p, &buf, &n) != LM_OK) continue;
        files++;
        fn((const uint8_t *)buf, n);
        for (size_t cut = 0; cut < n; cut += 1 + n / 512) fn((const uint8_t *)buf, cut);
        uint8_t *m = malloc(n);
        for (int i = 0; i < mutations; i++) {
            memcpy(m, buf, n);
            int edits = 1 + (int)lm_rng_below(&r, 4);
            for (int e = 0; e < edits; e++) m[lm_rng_below(&r, (uint32_t)n)] = (uint8_t)lm_rng_u64(&r);
            fn(m, n);
        }
        free(m);
        free(buf);
    }
    closedir(d);
    return files;
}

int main(void) {
    int muts = getenv("LMKIT_SANITIZED") ? 300 : 2000;
    CHECK(replay("tests/fuzz/corpus/gguf", fuzz_gguf, muts) >= 2);
    CHECK(replay("tests/fuzz/corpus/llama2c", fuzz_llama2c, muts) >= 3);
    CHECK(replay("tests/fuzz/corpus/hf", fuzz_hf, muts) >= 4);
    lm_gguf g;
    CHECK_OK(lm_gguf_open(test_src_path("tests/fuzz/corpus/gguf/kv_types.gguf"), &g));
    const lm_gguf_kv *kv = lm_gguf_find(&g, "a.i8");
    CHECK(kv && kv->i == -3);
    kv = lm_gguf_find(&g, "a.sarr");
    CHECK(kv && kv->arr_n == 2);
    if (kv && kv->arr_n == 2) {
        const char *s;
        uint64_t len;
        lm_gguf_arr_str(&g, kv, 1, &s, &len);
        CHECK(len == 2 && !memcmp(s, "yz", 2));
    }
    const lm_gguf_tensor *t = lm_gguf_find_tensor(&g, "t");
    CHECK(t && t->type == LM_QT_F16 && t->dims[0] == 32 && t->dims[1] == 2);
    lm_gguf_close(&g);
    lm_llama_model m;
    CHECK_OK(lm_llama_load(test_src_path("tests/fuzz/corpus/gguf/tiny_llama.gguf"), &m));
    CHECK(m.cfg.dim == 8 && m.cfg.n_kv_heads == 1);
    lm_llama_free(&m);
    /* the HF seeds load whole (so mutations reach past the header checks) */
    const char *hf_seeds[] = {"dir_llama_tiny", "dir_mistral_tiny", "dir_qwen2_tiny"};
    for (int i = 0; i < 3; i++) {
        char p[256], dir[] = "/tmp/lmkit_seed_XXXXXX", cfg[64], st[64];
        snprintf(p, sizeof p, "tests/fuzz/corpus/hf/%s", hf_seeds[i]);
        char *buf;
        size_t n;
        CHECK_OK(lm_read_file(test_src_path(p), &buf, &n));
        size_t L = (size_t)(uint8_t)buf[1] | (size_t)(uint8_t)buf[2] << 8;
        CHECK(mkdtemp(dir) != NULL && n > 3 + L);
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        snprintf(st, sizeof st, "%s/model.safetensors", dir);
        CHECK(write_file(cfg, (const uint8_t *)buf + 3, L) && write_file(st, (const uint8_t *)buf + 3 + L, n - 3 - L));
        CHECK_MSG(lm_llama_load_hf(dir, &m) == LM_OK, "%s: %s", hf_seeds[i], lm_last_error());
        CHECK(m.cfg.dim == 8 && (i != 1 || m.cfg.sliding_window == 4) && (i != 2 || m.layers[0].bq));
        lm_llama_free(&m);
        unlink(cfg), unlink(st), rmdir(dir);
        free(buf);
    }
    TEST_MAIN_END();
}
