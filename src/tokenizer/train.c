/* lm_tokenizer_train: byte-level BPE (GPT-2 style) and WordPiece (BERT
 * style). The trained model is written as an HF tokenizer.json document
 * and loaded through the ordinary loader, so what lmkit saves afterwards
 * is exactly what HF `tokenizers` will read. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/train.h"

void lm_train_words_free(lm_trword *w, size_t n) {
    for (size_t i = 0; w && i < n; i++) free(w[i].s);
    free(w);
}

static const char *const BPE_PRE =
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}";
static const char *const BERT_PRE = "{\"type\":\"BertPreTokenizer\"}";

static json_t *bert_norm(int lowercase) {
    return json_pack("{s:s,s:b,s:b,s:n,s:b}", "type", "BertNormalizer", "clean_text", 1, "handle_chinese_chars", 1,
                     "strip_accents", "lowercase", lowercase);
}

/* UTF-8 length of the character starting with byte c */
static uint32_t u8len(unsigned char c) { return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

static int cmp_str(const void *x, const void *y) {
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    return strcmp(a, b);
}

/* Token text as it appears in tokenizer.json (byte-level for BPE). */
static char *tok_text(const lm_trsyms *s, int32_t id, int byte_level) {
    if (byte_level) return lm_bytelevel_from_bytes(s->sym[id], s->sym_len[id], NULL);
    return strdup(s->sym[id]);
}

static json_t *build_json(const lm_toktrain_opts *o, const lm_trsyms *s) {
    int bpe = o->type == LM_TOKTRAIN_BPE;
    json_t *root = json_object(), *vocab = json_object(), *added = json_array();
    for (int32_t i = 0; i < s->n_sym; i++) {
        char *k = tok_text(s, i, bpe && i >= o->n_special);
        json_object_set_new(vocab, k, json_integer(i));
        free(k);
    }
    int has_cls = 0, has_sep = 0;
    for (int i = 0; i < o->n_special; i++) {
        json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", i, "content", o->special[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                               "special", 1));
        has_cls |= !strcmp(o->special[i], "[CLS]");
        has_sep |= !strcmp(o->special[i], "[SEP]");
    }
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set_new(root, "added_tokens", added);
    json_t *model;
    if (bpe) {
        json_t *merges = json_array();
        for (int32_t i = 0; i < s->n_merges; i++) {
            char *a = tok_text(s, s->merges[i][0], 1), *b = tok_text(s, s->merges[i][1], 1);
            json_array_append_new(merges, json_pack("[s,s]", a, b));
            free(a);
            free(b);
        }
        model = json_pack("{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout", "unk_token",
                          "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                          "ignore_merges", 0, "vocab", vocab, "merges", merges);
        json_object_set_new(root, "normalizer", json_null());
        json_object_set_new(root, "pre_tokenizer", json_loads(BPE_PRE, 0, NULL));
        json_object_set_new(root, "post_processor",
                            json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                                      0, "use_regex", 1));
        json_object_set_new(root, "decoder", json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space",
                                                       0, "trim_offsets", 1, "use_regex", 1));
    } else {
        model = json_pack("{s:s,s:s,s:s,s:i,s:o}", "type", "WordPiece", "unk_token", "[UNK]",
                          "continuing_subword_prefix", "##", "max_input_chars_per_word", 100, "vocab", vocab);
        json_object_set_new(root, "normalizer", bert_norm(o->lowercase));
        json_object_set_new(root, "pre_tokenizer", json_loads(BERT_PRE, 0, NULL));
        if (has_cls && has_sep) {
            int cls = 0, sep = 0;
            for (int i = 0; i < o->n_special; i++) {
                if (!strcmp(o->special[i], "[CLS]")) cls = i;
                if (!strcmp(o->special[i], "[SEP]")) sep = i;
            }
            json_t *post = json_pack(
                "{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}}],"
                "s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}}],"
                "s:{s:{s:s,s:[i],s:[s]},s:{s:s,s:[i],s:[s]}}}",
                "type", "TemplateProcessing", "single", "SpecialToken", "id", "[CLS]", "type_id", 0, "Sequence", "id",
                "A", "type_id", 0, "SpecialToken", "id", "[SEP]", "type_id", 0, "pair", "SpecialToken", "id", "[CLS]",
                "type_id", 0, "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", "[SEP]", "type_id", 0,
                "Sequence", "id", "B", "type_id", 1, "SpecialToken", "id", "[SEP]", "type_id", 1, "special_tokens",
                "[CLS]", "id", "[CLS]", "ids", cls, "tokens", "[CLS]", "[SEP]", "id", "[SEP]", "ids", sep, "tokens",
                "[SEP]");
            json_object_set_new(root, "post_processor", post);
        } else json_object_set_new(root, "post_processor", json_null());
        json_object_set_new(root, "decoder",
                            json_pack("{s:s,s:s,s:b}", "type", "WordPiece", "prefix", "##", "cleanup", 1));
    }
    json_object_set_new(root, "model", model);
    return root;
}

lm_status lm_tokenizer_train(const lm_toktrain_opts *o, const char *const *texts, const size_t *lens,
                             size_t n_texts, lm_tokenizer **out) {
    *out = NULL;
    int bpe = o->type == LM_TOKTRAIN_BPE;
    if (o->type != LM_TOKTRAIN_BPE && o->type != LM_TOKTRAIN_WORDPIECE)
        return lm_error(LM_ERR_ARG, "train: unknown tokenizer type %d", (int)o->type);
    int has_unk = bpe;
    for (int i = 0; i < o->n_special; i++) has_unk |= !strcmp(o->special[i], "[UNK]");
    if (!has_unk) return lm_error(LM_ERR_ARG, "train: WordPiece needs [UNK] among the special tokens");
    if (o->vocab_size < o->n_special + (bpe ? 256 : 1))
        return lm_error(LM_ERR_ARG, "train: vocab size %d is below the %d special tokens%s", o->vocab_size,
                        o->n_special, bpe ? " plus 256 bytes" : "");
    lm_norm *norm = NULL;
    lm_pre *pre = NULL;
    json_t *jp = json_loads(bpe ? BPE_PRE : BERT_PRE, 0, NULL);
    lm_status st = lm_pre_parse(jp, "train.pre_tokenizer", &pre);
    json_decref(jp);
    if (st == LM_OK && !bpe) {
        json_t *jn = bert_norm(o->lowercase);
        st = lm_norm_parse(jn, "train.normalizer", &norm);
        json_decref(jn);
    }
    lm_trword *w = NULL;
    size_t nw = 0;
    if (st == LM_OK) st = lm_train_count_words(norm, pre, texts, lens, n_texts, &w, &nw);
    lm_norm_free(norm);
    lm_pre_free(pre);
    lm_trsyms s = {0};
    uint32_t **wd = calloc(nw + 1, sizeof *wd), *wl = calloc(nw + 1, sizeof *wl);
    int64_t *wc = calloc(nw + 1, sizeof *wc);
    lm_strmap alpha = {0};
    char **alist = NULL;
    size_t na = 0;
    if (st == LM_OK && (!wd || !wl || !wc)) st = lm_error(LM_ERR_NOMEM, "train: out of memory");
    for (int i = 0; i < o->n_special && st == LM_OK; i++) {
        int32_t id;
        st = lm_trsyms_add(&s, o->special[i], (uint32_t)strlen(o->special[i]), &id);
    }
    /* the alphabet: all 256 bytes (ordered by their byte-level character,
     * as HF sorts its alphabet), or every character / ##character seen */
    if (st == LM_OK && bpe) {
        int order[256], n = 0;
        for (uint32_t cp = 0; cp < 0x200 && st == LM_OK; cp++) {
            int b = lm_bytelevel_byte(cp);
            if (b >= 0) order[n++] = b;
        }
        for (int i = 0; i < n && st == LM_OK; i++) {
            char c = (char)order[i];
            int32_t id;
            st = lm_trsyms_add(&s, &c, 1, &id);
        }
    } else if (st == LM_OK) {
        size_t cap = 0;
        for (size_t i = 0; i < nw && st == LM_OK; i++)
            for (uint32_t k = 0; k < w[i].len && st == LM_OK;) {
                uint32_t l = u8len((unsigned char)w[i].s[k]);
                char tmp[8] = "##";
                size_t tl = k ? 2 : 0;
                memcpy(tmp + tl, w[i].s + k, l);
                tl += l;
                tmp[tl] = 0;
                if (lm_strmap_get(&alpha, tmp, tl) < 0) {
                    if (na == cap) {
                        cap = cap ? cap * 2 : 256;
                        char **v = realloc(alist, cap * sizeof *v);
                        if (!v) st = lm_error(LM_ERR_NOMEM, "train: out of memory");
                        else alist = v;
                    }
                    char *d = st == LM_OK ? strdup(tmp) : NULL;
                    if (st == LM_OK && !d) st = lm_error(LM_ERR_NOMEM, "train: out of memory");
                    if (d) {
                        alist[na++] = d;
                        st = lm_strmap_put(&alpha, d, (uint32_t)tl, 0);
                    }
                }
                k += l;
            }
        if (st == LM_OK && na) qsort(alist, na, sizeof *alist, cmp_str);
        for (size_t i = 0; i < na && st == LM_OK; i++) {
            int32_t id;
            st = lm_trsyms_add(&s, alist[i], (uint32_t)strlen(alist[i]), &id);
        }
    }
    /* symbol ids of every word */
    lm_strmap symid = {0};
    for (int32_t i = o->n_special; i < s.n_sym && st == LM_OK; i++)
        st = lm_strmap_put(&symid, s.sym[i], s.sym_len[i], i);
    for (size_t i = 0; i < nw && st == LM_OK; i++) {
        wd[i] = malloc((w[i].len + 1) * sizeof **wd);
        if (!wd[i]) {
            st = lm_error(LM_ERR_NOMEM, "train: out of memory");
            break;
        }
        wc[i] = w[i].cnt;
        uint32_t n = 0;
        for (uint32_t k = 0; k < w[i].len;) {
            uint32_t l = bpe ? 1 : u8len((unsigned char)w[i].s[k]);
            char tmp[8] = "##";
            size_t tl = (!bpe && k) ? 2 : 0;
            memcpy(tmp + tl, w[i].s + k, l);
            tl += l;
            wd[i][n++] = (uint32_t)lm_strmap_get(&symid, tmp, tl);
            k += l;
        }
        wl[i] = n;
    }
    lm_strmap_free(&symid);
    if (st == LM_OK)
        st = lm_train_merge(&s, wd, wl, wc, nw, o->vocab_size, o->min_frequency > 0 ? o->min_frequency : 2,
                            bpe ? NULL : "##");
    if (st == LM_OK) {
        json_t *root = build_json(o, &s);
        st = root ? lm_tok_from_json(root, "trained tokenizer", out) : lm_error(LM_ERR_NOMEM, "train: out of memory");
        json_decref(root);
    }
    for (size_t i = 0; i < nw; i++) free(wd ? wd[i] : NULL);
    free(wd);
    free(wl);
    free(wc);
    for (size_t i = 0; i < na; i++) free(alist[i]);
    free(alist);
    lm_strmap_free(&alpha);
    lm_trsyms_free(&s);
    lm_train_words_free(w, nw);
    return st;
}
