/* Parity with HF tokenizers: ids, byte offsets and decoded text for every
 * case in tests/golden/tokenizer/<name>.golden.json (written by
 * ref/tokenizer_golden.py: English, Chinese, code/emoji, adversarial and
 * 150 random Unicode strings with a fixed seed). Match must be exact.
 * The same goldens are then run on GGUF files that carry those tokenizers
 * the way llama.cpp's converters write them (tokenizer.ggml.*). */
#include <jansson.h>
#include <unistd.h>

#include "lmkit/gguf.h"
#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"
#include "test.h"

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *o = malloc(l + 1);
    for (size_t i = 0; i < l; i++) o[i] = (char)(hexval(h[2 * i]) * 16 + hexval(h[2 * i + 1]));
    o[l] = 0;
    *n = l;
    return o;
}

/* file: a golden file path; name: label for messages; tok_path: the
 * tokenizer to test (NULL: the one the golden names) */
static void run_file(const char *name, const char *file, const char *tok_path) {
    const char *rel = file;
    json_error_t je;
    json_t *g = json_load_file(file, 0, &je);
    CHECK_MSG(g != NULL, "%s: %s", rel, je.text);
    if (!g) return;
    lm_tokenizer *t = NULL;
    CHECK_OK(lm_tokenizer_load(tok_path ? tok_path : test_src_path(json_string_value(json_object_get(g, "tokenizer"))), &t));
    if (!t) {
        json_decref(g);
        return;
    }
    lm_encode_opts o = {1, 1, 0, 0, 0};
    size_t i, bad_ids = 0, bad_off = 0, bad_dec = 0, total = 0;
    json_t *c;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        size_t len;
        char *text = unhex(json_string_value(json_object_get(c, "hex")), &len);
        lm_encoding e = {0};
        lm_status st = lm_tokenizer_encode_full(t, text, len, &o, &e);
        CHECK_MSG(st == LM_OK, "%s case %zu: %s", name, i, lm_last_error());
        json_t *ids = json_object_get(c, "ids"), *offs = json_object_get(c, "offsets");
        total++;
        int ok = st == LM_OK && e.n == json_array_size(ids);
        for (size_t k = 0; ok && k < e.n; k++) ok = e.ids[k] == json_integer_value(json_array_get(ids, k));
        if (!ok) {
            if (bad_ids++ < 3) {
                fprintf(stderr, "%s case %zu ids differ (text %.60s)\n  ours:", name, i, text);
                for (size_t k = 0; k < e.n && k < 30; k++) fprintf(stderr, " %d", e.ids[k]);
                fprintf(stderr, "\n  hf:  ");
                for (size_t k = 0; k < json_array_size(ids) && k < 30; k++)
                    fprintf(stderr, " %lld", json_integer_value(json_array_get(ids, k)));
                fprintf(stderr, "\n");
            }
        } else if (json_is_array(offs)) {
            int oo = 1;
            size_t k;
            for (k = 0; oo && k < e.n; k++) {
                json_t *p = json_array_get(offs, k);
                oo = e.offsets[k][0] == json_integer_value(json_array_get(p, 0)) &&
                     e.offsets[k][1] == json_integer_value(json_array_get(p, 1));
            }
            if (!oo && bad_off++ < 3)
                fprintf(stderr, "%s case %zu offsets differ at token %zu: ours (%u,%u) hf (%lld,%lld) (text %.60s)\n",
                        name, i, k - 1, e.offsets[k - 1][0], e.offsets[k - 1][1],
                        json_integer_value(json_array_get(json_array_get(offs, k - 1), 0)),
                        json_integer_value(json_array_get(json_array_get(offs, k - 1), 1)), text);
        }
        if (ok) {
            char *dec = NULL;
            size_t dl = 0, gl;
            char *gold = unhex(json_string_value(json_object_get(c, "decoded_hex")), &gl);
            CHECK_OK(lm_tokenizer_decode(t, e.ids, e.n, &dec, &dl));
            /* HF returns lossy UTF-8; we return the raw bytes: compare where ours is valid */
            size_t k = 0;
            while (k < dl && (unsigned char)dec[k] < 0x80) k++;
            int valid = 1;
            for (; k < dl;) {
                unsigned char b = (unsigned char)dec[k];
                size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                if (b >= 0x80 && b < 0xC0) { valid = 0; break; }
                if (k + need > dl) { valid = 0; break; }
                k += need;
            }
            if (dec && valid && (dl != gl || memcmp(dec, gold, dl)) && bad_dec++ < 3)
                fprintf(stderr, "%s case %zu decode differs:\n  ours: %s\n  hf:   %s\n", name, i, dec, gold);
            free(dec);
            free(gold);
        }
        lm_encoding_free(&e);
        free(text);
    }
    CHECK_MSG(bad_ids == 0, "%s: %zu of %zu cases with different ids", name, bad_ids, total);
    CHECK_MSG(bad_off == 0, "%s: %zu of %zu cases with different offsets", name, bad_off, total);
    CHECK_MSG(bad_dec == 0, "%s: %zu of %zu cases decode differently", name, bad_dec, total);
    printf("%-22s %zu cases: ids %zu differ, offsets %zu differ, decode %zu differ\n", name, total, bad_ids, bad_off,
           bad_dec);
    lm_tokenizer_free(t);
    json_decref(g);
}

static void run(const char *name, const char *kind) {
    char rel[256], label[128];
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.%sgolden.json", name, kind);
    snprintf(label, sizeof label, "%s%s%.*s", name, *kind ? "." : "", *kind ? (int)strlen(kind) - 1 : 0, kind);
    run_file(label, test_src_path(rel), NULL);
}

/* ---- the same tokenizers inside GGUF files ---- */

static char gguf_dir[] = "/tmp/lmkit_tok_gguf_XXXXXX";

/* Writes a tokenizer-only GGUF of model "gpt2" (byte-level BPE) the way
 * llama.cpp's convert_hf_to_gguf.py does: tokens by id, token types (3
 * control for special added tokens, 4 user-defined for the others, 1
 * normal), merges as "a b", the pre-tokenizer's name and BOS. */
static void write_bpe_gguf(const char *path, json_t *vocab, json_t *merges, json_t *added, const char *pre, int bos) {
    size_t n = json_object_size(vocab);
    const char **toks = calloc(n, sizeof *toks);
    int32_t *types = calloc(n, sizeof *types);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (id >= 0 && (size_t)id < n) toks[id] = key, types[id] = 1;
    }
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_int_t id = json_integer_value(json_object_get(a, "id"));
        if (id >= 0 && (size_t)id < n) types[id] = json_is_true(json_object_get(a, "special")) ? 3 : 4;
    }
    size_t nm = json_array_size(merges);
    char **ms = calloc(nm ? nm : 1, sizeof *ms);
    json_array_foreach(merges, i, a) {
        if (json_is_string(a)) ms[i] = strdup(json_string_value(a));
        else if (asprintf(&ms[i], "%s %s", json_string_value(json_array_get(a, 0)), json_string_value(json_array_get(a, 1))) < 0)
            ms[i] = NULL;
    }
    for (i = 0; i < n; i++) CHECK_MSG(toks[i] != NULL, "%s: no token with id %zu", path, i);
    lm_gguf_writer *w = lm_gguf_writer_new();
    CHECK_OK(lm_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n));
    CHECK_OK(lm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, types, n));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms, nm));
    if (bos >= 0) {
        CHECK_OK(lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos));
        CHECK_OK(lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    }
    CHECK_OK(lm_gguf_writer_write(w, path));
    lm_gguf_writer_free(w);
    for (i = 0; i < nm; i++) free(ms[i]);
    free(ms);
    free(toks);
    free(types);
}

/* A tokenizer.json's byte-level BPE as a GGUF. */
static void bpe_json_gguf(const char *json_rel, const char *pre, int bos, const char *out) {
    json_error_t je;
    json_t *t = json_load_file(test_src_path(json_rel), 0, &je);
    CHECK_MSG(t != NULL, "%s: %s", json_rel, je.text);
    if (!t) return;
    json_t *m = json_object_get(t, "model");
    write_bpe_gguf(out, json_object_get(m, "vocab"), json_object_get(m, "merges"), json_object_get(t, "added_tokens"), pre, bos);
    json_decref(t);
}

/* GPT-2's encoder.json + vocab.bpe as a GGUF (pre "gpt-2"; no BOS). */
static void gpt2_files_gguf(const char *out) {
    json_error_t je;
    json_t *enc = json_load_file(test_src_path("data/tokenizers/gpt2/encoder.json"), 0, &je);
    char *bpe = NULL;
    size_t len = 0;
    CHECK_OK(lm_read_file(test_src_path("data/tokenizers/gpt2/vocab.bpe"), &bpe, &len));
    if (!enc || !bpe) return;
    json_t *merges = json_array();
    for (char *line = strtok(bpe, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && strchr(line, ' ')) json_array_append_new(merges, json_string(line));
    json_t *added = json_pack("[{s:i, s:b}]", "id", 50256, "special", 1); /* <|endoftext|> */
    write_bpe_gguf(out, enc, merges, added, "gpt-2", -1);
    json_decref(added);
    json_decref(merges);
    json_decref(enc);
    free(bpe);
}

/* LLaMA 2's SentencePiece vocabulary (llama2.c's tokenizer.bin) as the GGUF
 * of model "llama" llama.cpp writes: pieces with U+2581 for spaces, scores,
 * types 2 unknown / 3 control / 6 byte / 1 normal, BOS 1 added, EOS 2. */
static void spm_gguf(const char *out) {
    lm_llama2c_vocab v;
    CHECK_OK(lm_llama2c_vocab_load(test_src_path("data/tokenizers/llama2/tokenizer.bin"), 32000, &v));
    char **pieces = calloc((size_t)v.n, sizeof *pieces);
    int32_t *types = calloc((size_t)v.n, sizeof *types);
    for (int i = 0; i < v.n; i++) {
        char *s = lm_spm_spelling(v.pieces[i], strlen(v.pieces[i]), NULL);
        pieces[i] = s;
        unsigned x;
        types[i] = i == 0 ? 2 : i <= 2 ? 3 : strlen(s) == 6 && sscanf(s, "<0x%02X>", &x) == 1 ? 6 : 1;
    }
    lm_gguf_writer *w = lm_gguf_writer_new();
    CHECK_OK(lm_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default"));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, (uint64_t)v.n));
    CHECK_OK(lm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LM_GGUF_F32, v.scores, (uint64_t)v.n));
    CHECK_OK(lm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, types, (uint64_t)v.n));
    CHECK_OK(lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
    CHECK_OK(lm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2));
    CHECK_OK(lm_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0));
    CHECK_OK(lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    CHECK_OK(lm_gguf_writer_write(w, out));
    lm_gguf_writer_free(w);
    for (int i = 0; i < v.n; i++) free(pieces[i]);
    free(pieces);
    free(types);
    lm_llama2c_vocab_free(&v);
}

/* The GGUF lmkit's own converter writes for an HF directory holding the
 * tokenizer.json (lm_gguf_add_hf_tokenizer), padded to vocab_size; the
 * goldens must pass on it too. */
static void run_gguf_from_hf(const char *name, int vocab_size, const char *want_model, const char *want_pre) {
    char dir[512], tok_json[600], gguf[600], rel[256], label[128];
    snprintf(dir, sizeof dir, "%s/%s_hf", gguf_dir, name);
    snprintf(tok_json, sizeof tok_json, "%s/tokenizer.json", dir);
    snprintf(gguf, sizeof gguf, "%s/%s_hf.gguf", gguf_dir, name);
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.json", name);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lm_read_file(test_src_path(rel), &text, &len));
    CHECK_OK(lm_mkdir_p(dir));
    FILE *f = fopen(tok_json, "wb");
    CHECK(f && fwrite(text, 1, len, f) == len);
    if (f) fclose(f);
    free(text);
    lm_gguf_writer *w = lm_gguf_writer_new();
    int wb, we;
    CHECK_OK(lm_gguf_add_hf_tokenizer(w, dir, vocab_size, -1, -1, &wb, &we));
    CHECK_OK(lm_gguf_writer_write(w, gguf));
    lm_gguf_writer_free(w);
    lm_gguf g;
    CHECK_OK(lm_gguf_open(gguf, &g));
    char *model = NULL, *pre = NULL;
    CHECK_OK(lm_gguf_get_str(&g, "tokenizer.ggml.model", &model));
    CHECK_OK(lm_gguf_get_str(&g, "tokenizer.ggml.pre", &pre));
    CHECK_MSG(model && pre && !strcmp(model, want_model) && !strcmp(pre, want_pre), "%s: model %s pre %s", name, model, pre);
    const lm_gguf_kv *toks = lm_gguf_find(&g, "tokenizer.ggml.tokens");
    CHECK(toks && toks->arr_n == (uint64_t)vocab_size);
    free(model);
    free(pre);
    lm_gguf_close(&g);
    snprintf(label, sizeof label, "%s.hf.gguf", name);
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.golden.json", name);
    run_file(label, test_src_path(rel), gguf);
    snprintf(label, sizeof label, "%s.stress.hf.gguf", name);
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.stress.golden.json", name);
    run_file(label, test_src_path(rel), gguf);
    unlink(gguf);
    unlink(tok_json);
    rmdir(dir);
}

static void run_gguf(const char *name) {
    char path[512], rel[256], label[128];
    snprintf(path, sizeof path, "%s/%s.gguf", gguf_dir, name);
    if (!strcmp(name, "hf_gpt2")) gpt2_files_gguf(path);
    else if (!strcmp(name, "hf_llama2")) spm_gguf(path);
    else if (!strcmp(name, "llama3_style")) bpe_json_gguf("tests/golden/tokenizer/llama3_style.json", "llama-bpe", 0, path);
    else bpe_json_gguf("tests/golden/tokenizer/qwen2_style.json", "qwen2", -1, path);
    snprintf(label, sizeof label, "%s.gguf", name);
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.golden.json", name);
    run_file(label, test_src_path(rel), path);
    if (strcmp(name, "hf_gpt2") && strcmp(name, "hf_llama2")) {
        snprintf(label, sizeof label, "%s.stress.gguf", name);
        snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.stress.golden.json", name);
        run_file(label, test_src_path(rel), path);
    }
    unlink(path);
}

/* The stress goldens (ref/tokenizer_stress_golden.py) hammer combining
 * marks, Hangul, compatibility forms, controls and unassigned code points.
 * argv: a tokenizer name (both goldens), or a golden file path. */
int main(int argc, char **argv) {
    static const char *const names[] = {"hf_gpt2", "llama3_style", "qwen2_style", "hf_llama2", "llama2_style",
                                        "metaspace_style", "bert_uncased", "bert_cased", "wordpiece_misc", "unigram",
                                        NULL};
    if (argc > 1 && strchr(argv[1], '/')) run_file(argv[1], argv[1], NULL);
    else if (argc > 1) {
        run(argv[1], "");
        if (strcmp(argv[1], "hf_gpt2") && strcmp(argv[1], "hf_llama2")) run(argv[1], "stress.");
    } else
        for (int i = 0; names[i]; i++) {
            run(names[i], "");
            if (strcmp(names[i], "hf_gpt2") && strcmp(names[i], "hf_llama2")) run(names[i], "stress.");
        }
    if (argc == 1 && mkdtemp(gguf_dir)) {
        static const char *const in_gguf[] = {"hf_gpt2", "hf_llama2", "llama3_style", "qwen2_style", NULL};
        for (int i = 0; in_gguf[i]; i++) run_gguf(in_gguf[i]);
        run_gguf_from_hf("llama3_style", 1210, "gpt2", "llama-bpe");
        run_gguf_from_hf("qwen2_style", 1200, "gpt2", "qwen2");
        run_gguf_from_hf("llama2_style", 1016, "llama", "default");
        /* Not metaspace_style: its Metaspace prepend_scheme "first" adds no
         * U+2581 before a text that starts with a space, where GGUF's
         * add_space_prefix (SentencePiece's dummy prefix, as llama.cpp
         * applies it) always adds one; such texts tokenize differently. */
        rmdir(gguf_dir);
    }
    TEST_MAIN_END();
}
