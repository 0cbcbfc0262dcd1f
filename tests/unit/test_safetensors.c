/* safetensors: round trip, sharded index, and every malformed-file check. */
#include "lmkit/safetensors.h"
#include "test.h"

#include <unistd.h>

static char tmpdir[64];

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Writes a raw safetensors file from a header string and a data blob. */
static void write_raw(const char *path, const char *header, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    uint64_t h = strlen(header);
    fwrite(&h, 8, 1, f);
    fwrite(header, 1, h, f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void expect_error(const char *path, const char *needle) {
    lm_safetensors st;
    lm_status s = lm_safetensors_open(path, &st);
    CHECK_MSG(s != LM_OK, "%s should fail", path);
    CHECK_MSG(strstr(lm_last_error(), needle) != NULL, "error '%s' lacks '%s'", lm_last_error(), needle);
}

int main(void) {
    strcpy(tmpdir, "/tmp/lmkit_st_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);

    /* round trip with F32, F16 and BF16 tensors and metadata */
    float a[6] = {1, -2, 3.5f, 4, 5, 6.25f};
    uint16_t h[3] = {lm_f32_to_f16(1.5f), lm_f32_to_f16(-0.25f), lm_f32_to_f16(8)};
    uint16_t b[2] = {lm_f32_to_bf16(2.0f), lm_f32_to_bf16(-3.0f)};
    lm_st_writer w;
    lm_st_writer_init(&w);
    CHECK_OK(lm_st_writer_add(&w, "layer.weight", LM_DTYPE_F32, 2, (int64_t[]){2, 3}, a));
    CHECK_OK(lm_st_writer_add(&w, "half", LM_DTYPE_F16, 1, (int64_t[]){3}, h));
    CHECK_OK(lm_st_writer_add(&w, "brain", LM_DTYPE_BF16, 1, (int64_t[]){2}, b));
    CHECK_OK(lm_st_writer_meta(&w, "format", "pt"));
    CHECK_OK(lm_st_writer_save(&w, tmp("a.safetensors")));
    lm_st_writer_free(&w);

    lm_safetensors st;
    CHECK_OK(lm_safetensors_open(tmp("a.safetensors"), &st));
    CHECK(st.n_tensors == 3);
    const lm_st_tensor *t = lm_safetensors_find(&st, "layer.weight");
    CHECK(t && t->dtype == LM_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    float out[6];
    CHECK_OK(lm_st_tensor_to_f32(t, out, 6));
    CHECK(memcmp(out, a, sizeof a) == 0);
    CHECK(((uintptr_t)t->data - (uintptr_t)st.maps[0].data) % 8 == 0); /* header padded to 8 */
    t = lm_safetensors_find(&st, "half");
    CHECK_OK(lm_st_tensor_to_f32(t, out, 3));
    CHECK(out[0] == 1.5f && out[1] == -0.25f && out[2] == 8);
    t = lm_safetensors_find(&st, "brain");
    CHECK_OK(lm_st_tensor_to_f32(t, out, 2));
    CHECK(out[0] == 2 && out[1] == -3);
    CHECK(lm_st_tensor_to_f32(t, out, 3) != LM_OK); /* wrong count */
    CHECK(lm_safetensors_find(&st, "missing") == NULL);
    CHECK(st.metadata_json && strstr(st.metadata_json, "\"pt\""));
    lm_safetensors_close(&st);

    /* sharded: index.json naming two files */
    lm_st_writer_init(&w);
    CHECK_OK(lm_st_writer_add(&w, "x", LM_DTYPE_F32, 1, (int64_t[]){2}, a));
    CHECK_OK(lm_st_writer_save(&w, tmp("model-00001-of-00002.safetensors")));
    lm_st_writer_free(&w);
    lm_st_writer_init(&w);
    CHECK_OK(lm_st_writer_add(&w, "y", LM_DTYPE_F32, 1, (int64_t[]){3}, a + 2));
    CHECK_OK(lm_st_writer_save(&w, tmp("model-00002-of-00002.safetensors")));
    lm_st_writer_free(&w);
    const char *idx = "{\"metadata\":{},\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00002-of-00002.safetensors\"}}";
    CHECK_OK(lm_write_file_atomic(tmp("model.safetensors.index.json"), idx, strlen(idx)));
    CHECK_OK(lm_safetensors_open(tmpdir, &st)); /* directory: finds the index */
    CHECK(st.n_files == 2 && st.n_tensors == 2);
    t = lm_safetensors_find(&st, "y");
    CHECK(t && t->shape[0] == 3 && ((const float *)t->data)[0] == 3.5f);
    lm_safetensors_close(&st);

    /* malformed files: each gives an error naming the problem */
    float d[4] = {0};
    write_raw(tmp("trunc.st"), "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 8);
    expect_error(tmp("trunc.st"), "data_offsets out of range");
    write_raw(tmp("shape.st"), "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", d, 16);
    expect_error(tmp("shape.st"), "shape needs 12 bytes");
    write_raw(tmp("overlap.st"),
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              d, 12);
    expect_error(tmp("overlap.st"), "overlaps");
    write_raw(tmp("gap.st"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 16);
    expect_error(tmp("gap.st"), "gap");
    /* a shape whose element count overflows int64 (2^40 x 2^40 x 64) */
    write_raw(tmp("ovf.st"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,64],\"data_offsets\":[0,0]}}", NULL, 0);
    expect_error(tmp("ovf.st"), "more than 2^40 elements");
    /* a tensor named twice */
    float two[2] = {1, 2};
    write_raw(tmp("dup.st"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", two, 8);
    expect_error(tmp("dup.st"), "duplicate");
    write_raw(tmp("dtype.st"), "{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_error(tmp("dtype.st"), "unsupported dtype 'Q9'");
    write_raw(tmp("json.st"), "{\"a\":", d, 0);
    expect_error(tmp("json.st"), "not valid JSON");
    FILE *f = fopen(tmp("huge.st"), "wb");
    uint64_t big = 1ull << 40;
    fwrite(&big, 8, 1, f);
    fclose(f);
    expect_error(tmp("huge.st"), "exceeds");
    f = fopen(tmp("tiny.st"), "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_error(tmp("tiny.st"), "truncated");
    expect_error(tmp("nope.st"), "no such file");

    /* clean up */
    const char *files[] = {"a.safetensors", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json", "trunc.st", "shape.st", "overlap.st", "gap.st", "dtype.st",
                           "json.st", "huge.st", "tiny.st", "dup.st", "ovf.st"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp(files[i]));
    rmdir(tmpdir);
    TEST_MAIN_END();
}
