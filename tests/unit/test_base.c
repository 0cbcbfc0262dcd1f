/* Base layer: half conversions, RNG reproducibility, atomic writes. */
#include "lmkit/base.h"
#include "test.h"

#include <unistd.h>

int main(void) {
    /* Context prefixed to the last error, the error text itself an argument */
    lm_error(LM_ERR_FORMAT, "n_embd %d not divisible by n_head %d", 64, 5);
    lm_error(LM_ERR_FORMAT, "%s: %s", "m/config.json", lm_last_error());
    CHECK_MSG(!strcmp(lm_last_error(), "m/config.json: n_embd 64 not divisible by n_head 5"), "%s", lm_last_error());
    /* f16/bf16 round trips on exactly representable values */
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        CHECK_MSG(lm_f16_to_f32(lm_f32_to_f16(vals[i])) == vals[i], "f16 %g", vals[i]);
    CHECK(lm_f32_to_f16(1.0f) == 0x3c00);
    CHECK(lm_f32_to_f16(1e6f) == 0x7c00);           /* overflow to inf */
    CHECK(lm_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie rounds to even */
    CHECK(lm_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(lm_bf16_to_f32(lm_f32_to_bf16(3.140625f)) == 3.140625f);

    /* RNG: same (seed, stream) -> same sequence; different stream differs */
    lm_rng a, b, c;
    lm_rng_seed(&a, 42, 7);
    lm_rng_seed(&b, 42, 7);
    lm_rng_seed(&c, 42, 8);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = lm_rng_u64(&a), y = lm_rng_u64(&b), z = lm_rng_u64(&c);
        same &= x == y;
        diff |= x != z;
    }
    CHECK(same);
    CHECK(diff);
    double mean = 0, var = 0;
    for (int i = 0; i < 20000; i++) {
        float v = lm_rng_normal(&a);
        mean += v;
        var += v * v;
    }
    mean /= 20000;
    var = var / 20000 - mean * mean;
    CHECK_MSG(fabs(mean) < 0.03 && fabs(var - 1) < 0.05, "mean %g var %g", mean, var);

    /* atomic write: content lands, no temp file is left */
    char dir[] = "/tmp/lmkit_test_base_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = lm_path_join(dir, "f.bin");
    CHECK_OK(lm_write_file_atomic(path, "hello", 5));
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(lm_read_file(path, &buf, &len));
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    free(buf);
    lm_atomic_file af;
    CHECK_OK(lm_atomic_open(&af, path));
    CHECK_OK(lm_atomic_write(&af, "xx", 2));
    lm_atomic_abort(&af); /* an interrupted write leaves the old file */
    CHECK_OK(lm_read_file(path, &buf, &len));
    CHECK(len == 5);
    free(buf);
    CHECK(lm_read_file("/nonexistent/file", &buf, &len) == LM_ERR_IO);
    CHECK(strstr(lm_last_error(), "/nonexistent/file") != NULL);
    unlink(path);
    rmdir(dir);
    free(path);
    TEST_MAIN_END();
}
