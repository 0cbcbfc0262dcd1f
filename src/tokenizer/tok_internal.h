/* Internal layout of lm_tokenizer: the pipeline of HF tokenizers
 * (normalizer -> pre-tokenizer -> model -> post-processor, and a decoder),
 * each stage a small tagged struct parsed from tokenizer.json. The JSON of
 * each stage is kept so save() writes back exactly what was loaded. */
#ifndef LMKIT_TOK_INTERNAL_H
#define LMKIT_TOK_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "lmkit/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- hash maps ---- */
/* bytes -> int32 (keys are borrowed: they must outlive the map) */
typedef struct {
    uint32_t cap, n; /* cap is a power of two */
    struct lm_strslot { const char *k; uint32_t klen; int32_t v; uint64_t h; } *slots;
} lm_strmap;
uint64_t lm_hash_bytes(const void *p, size_t n);
lm_status lm_strmap_put(lm_strmap *m, const char *k, uint32_t klen, int32_t v);
int32_t lm_strmap_get(const lm_strmap *m, const char *k, size_t klen); /* -1 if absent */
void lm_strmap_free(lm_strmap *m);

/* (a, b) id pair -> (rank, merged id) */
typedef struct {
    uint32_t cap, n;
    struct lm_pairslot { uint64_t key; uint32_t rank; int32_t id; } *slots;
} lm_pairmap;
lm_status lm_pairmap_put(lm_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
/* Returns 1 and fills rank/id when present. */
static inline int lm_pairmap_get(const lm_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    if (!m->cap) return 0;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & (m->cap - 1);
    for (;;) {
        const struct lm_pairslot *s = &m->slots[i];
        if (s->id < 0) return 0;
        if (s->key == key) { *rank = s->rank; *id = s->id; return 1; }
        i = (i + 1) & (m->cap - 1);
    }
}
void lm_pairmap_free(lm_pairmap *m);

/* ---- UTF-8 ---- */
/* lm_utf8_decode: lmkit/tokenizer.h */
int lm_utf8_encode(uint32_t cp, char *out); /* returns 1..4 */
/* Index of the first invalid byte, or n if s is valid UTF-8. */
size_t lm_utf8_first_invalid(const uint8_t *s, size_t n);
/* Length of the maximal subpart of an ill-formed sequence at s (>= 1). */
size_t lm_utf8_bad_len(const uint8_t *s, size_t n);

/* GPT-2's byte <-> printable code point table. */
uint32_t lm_bytelevel_char(uint8_t b);
int lm_bytelevel_byte(uint32_t cp); /* -1 if cp is not in the alphabet */
/* Converts a byte-level token string (e.g. "Ġhello") to raw bytes; out has
 * room for len bytes. Returns the byte count, or -1 if a char is outside
 * the alphabet. */
long lm_bytelevel_to_bytes(const char *s, size_t len, char *out);
/* raw bytes -> byte-level string (malloc'd, NUL-terminated) */
char *lm_bytelevel_from_bytes(const char *s, size_t len, size_t *out_len);

/* ---- a string being normalized, with the original byte range of each byte ---- */
typedef struct {
    char *s;
    size_t len, cap;
    uint32_t *a0, *a1; /* per byte: original [a0, a1) */
} lm_nstr;
lm_status lm_nstr_push(lm_nstr *ns, const char *b, size_t n, uint32_t o0, uint32_t o1);
void lm_nstr_free(lm_nstr *ns);

/* HF's NormalizedString::transform (ntransform.c): a new string as
 * (char, change) pairs, aligned to the old one by position. */
typedef struct { uint32_t cp; int32_t change; } lm_tchar;
typedef struct { lm_tchar *v; size_t n, cap; } lm_tstream;
lm_status lm_tstream_push(lm_tstream *t, uint32_t cp, int32_t change);
lm_status lm_ntransform(const lm_nstr *in, const lm_tstream *t, size_t initial_chars, lm_nstr *o);
/* NFD / NFC / NFKD / NFKC of in into o with HF's alignments */
lm_status lm_unorm_hf(const lm_nstr *in, lm_nstr *o, int compose, int compat);
/* Lowercase (Rust's char::to_lowercase) with HF's alignments */
lm_status lm_lower_hf(const lm_nstr *in, lm_nstr *o);

/* ---- pipeline stages ---- */
typedef enum {
    LM_NORM_NFC, LM_NORM_NFD, LM_NORM_NFKC, LM_NORM_NFKD, LM_NORM_LOWER, LM_NORM_STRIP_ACCENTS,
    LM_NORM_BERT, LM_NORM_REPLACE, LM_NORM_PREPEND, LM_NORM_STRIP, LM_NORM_SEQ
} lm_norm_type;
typedef struct lm_norm {
    lm_norm_type type;
    int clean_text, chinese, strip_accents, lowercase; /* BERT; strip_accents -1 = follow lowercase */
    int strip_left, strip_right;
    char *pattern, *content; /* Replace (literal pattern) / Prepend (content) */
    size_t pattern_len, content_len;
    pcre2_code *re;          /* Replace with a Regex pattern */
    struct lm_norm **seq;
    int n_seq;
} lm_norm;

typedef enum {
    LM_SPLIT_REMOVED, LM_SPLIT_ISOLATED, LM_SPLIT_MERGED_PREV, LM_SPLIT_MERGED_NEXT, LM_SPLIT_CONTIGUOUS
} lm_split_behavior;
typedef enum {
    LM_PRE_BYTELEVEL, LM_PRE_METASPACE, LM_PRE_WHITESPACE, LM_PRE_WHITESPACE_SPLIT, LM_PRE_BERT, LM_PRE_SPLIT,
    LM_PRE_DIGITS, LM_PRE_PUNCT, LM_PRE_SEQ
} lm_pre_type;
typedef struct lm_pre {
    lm_pre_type type;
    pcre2_code *re;            /* ByteLevel(use_regex) / Split(Regex) */
    char *literal;             /* Split(String) */
    size_t literal_len;
    lm_split_behavior behavior;
    int invert;
    int add_prefix_space;      /* ByteLevel */
    int individual_digits;     /* Digits */
    uint32_t replacement;      /* Metaspace code point */
    int prepend;               /* Metaspace: 0 never, 1 first, 2 always */
    int split;                 /* Metaspace split on replacement */
    struct lm_pre **seq;
    int n_seq;
} lm_pre;

typedef enum { LM_DEC_BYTELEVEL, LM_DEC_METASPACE, LM_DEC_WORDPIECE, LM_DEC_BYTEFALLBACK, LM_DEC_FUSE,
               LM_DEC_STRIP, LM_DEC_REPLACE, LM_DEC_BPE, LM_DEC_SEQ } lm_dec_type;
typedef struct lm_dec {
    lm_dec_type type;
    char *a, *b;        /* Replace pattern/content, WordPiece prefix, BPE suffix, Strip content */
    size_t a_len, b_len;
    int start, stop;    /* Strip */
    int cleanup;        /* WordPiece */
    int prepend;        /* Metaspace prepend scheme != never */
    uint32_t replacement;
    struct lm_dec **seq;
    int n_seq;
} lm_dec;

typedef struct {
    int32_t id;        /* of the token itself; -1 for a sequence slot */
    int seq;           /* 0 = A, 1 = B for sequence slots */
    uint8_t type_id;
} lm_tmpl_item;
typedef enum { LM_POST_NONE, LM_POST_TEMPLATE, LM_POST_BYTELEVEL } lm_post_type;
typedef struct {
    lm_post_type type;
    lm_tmpl_item *single, *pair;
    int n_single, n_pair;
    int trim_offsets;  /* ByteLevel/Roberta: drop leading/trailing spaces from offsets */
} lm_post;

typedef enum { LM_MODEL_BPE, LM_MODEL_WORDPIECE, LM_MODEL_UNIGRAM } lm_model_type;

typedef struct {
    int32_t id;
    char *content;
    size_t len;
    int special, normalized, lstrip, rstrip, single_word;
} lm_added;

struct lm_tokenizer {
    uint64_t serial;   /* identifies this tokenizer in per-thread caches */
    int32_t n_vocab;   /* highest id + 1 */
    char **tok;        /* token text as in the vocab (HF form), NULL for holes */
    uint32_t *tok_len;
    char **piece;      /* raw decoded bytes of each token (for streaming decode) */
    uint32_t *piece_len;
    uint8_t *is_special;
    lm_strmap vocab;   /* token text -> id, model vocab only */
    lm_strmap added_map;

    lm_model_type model;
    /* BPE */
    lm_pairmap merges;
    int32_t (*merge_list)[2];  /* in rank order, for save */
    uint32_t n_merges;
    int tiktoken_ranks;        /* merges are "concatenation is a token", rank = id */
    int byte_level;            /* model input is bytes through byte_to_id */
    int raw_bytes;             /* "bytes": no UTF-8 repair, id = byte value always */
    int32_t byte_to_id[256];
    int32_t byte_fallback_id[256]; /* <0xXX> tokens, -1 if absent */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    char *cont_prefix, *eow_suffix; /* BPE/WordPiece continuing prefix, BPE end-of-word suffix */
    size_t cont_prefix_len, eow_suffix_len;
    /* WordPiece */
    int max_input_chars;
    /* Unigram */
    double *scores;
    double min_score;
    size_t max_piece_bytes;  /* longest piece, bounds the Viterbi lattice */

    lm_added *added;
    int n_added;
    int has_norm_added; /* some added token is matched after normalization */

    lm_norm *norm;
    lm_pre *pre;
    lm_post post;
    lm_dec *dec;
    json_t *j_norm, *j_pre, *j_post, *j_dec, *j_trunc, *j_pad; /* as loaded, for save */
    size_t trunc_max;   /* from tokenizer.json truncation, 0 = none */
    int pad_fixed;      /* padding strategy Fixed: length */
    int pad_enabled;
    int32_t pad_id_cfg;

    int32_t bos_id, eos_id, pad_id;
};

/* Allocation of the id tables for n ids. */
lm_status lm_tok_alloc_vocab(lm_tokenizer *t, int32_t n);
lm_status lm_tok_set_token(lm_tokenizer *t, int32_t id, const char *s, size_t len);
lm_tokenizer *lm_tok_new(void);
/* Called after everything is loaded: fills byte tables, pieces, special ids. */
lm_status lm_tok_finish(lm_tokenizer *t);

lm_status lm_tok_load_json(const char *path, lm_tokenizer **out);
lm_status lm_tok_from_json(json_t *root, const char *what, lm_tokenizer **out);
lm_status lm_tok_load_gpt2_files(const char *encoder_json, const char *vocab_bpe, lm_tokenizer **out);
lm_status lm_tok_load_tiktoken(const char *path, lm_tokenizer **out);
lm_status lm_tok_load_llama2c(const char *path, lm_tokenizer **out);
lm_status lm_tok_load_gguf(const char *path, lm_tokenizer **out);
/* The tokenizer.ggml.pre name of a tokenizer.json pre_tokenizer: "gpt-2",
 * "llama-bpe", "qwen2", or NULL when GGUF has none for it. */
const char *lm_tok_gguf_pre_name(json_t *pre);

/* A SentencePiece BPE vocabulary (llama2.c tokenizer.bin, GGUF "llama"):
 * pieces with U+2581 for spaces, scores (higher merges first), kinds. */
enum { LM_SPM_NORMAL, LM_SPM_CONTROL, LM_SPM_USER };
typedef struct {
    size_t n;
    char **piece;
    uint32_t *len;
    double *score;
    uint8_t *kind;
    int32_t unk_id, bos_id, eos_id; /* -1: by name (<unk>, <s>, </s>) */
    int add_space_prefix;           /* SentencePiece's dummy leading space */
} lm_spm_vocab;
/* Appends a piece (spaces become U+2581); *cap is v's capacity. */
lm_status lm_spm_vocab_add(lm_spm_vocab *v, size_t *cap, const char *p, size_t len, double score, int kind);
void lm_spm_vocab_free(lm_spm_vocab *v);
/* The HF LLaMA tokenizer pipeline of v: BPE merges from the scores, byte
 * fallback, control tokens special, BOS added by the post-processor. */
lm_status lm_tok_build_spm(const lm_spm_vocab *v, const char *path, lm_tokenizer **out);
/* tokenizer.json's post-processor that puts BOS (len bytes, id) first. */
json_t *lm_tok_bos_template(const char *bos, size_t len, int32_t id);
lm_status lm_tok_merges_from_ranks(lm_tokenizer *t, int32_t n, char **raw, uint32_t *rlen, const uint32_t *rank,
                                   const char *path);
lm_status lm_tok_make_bytes(lm_tokenizer **out);

/* Stage parsers (path names the JSON location for errors) */
lm_status lm_norm_parse(json_t *j, const char *path, lm_norm **out);
void lm_norm_free(lm_norm *n);
lm_status lm_pre_parse(json_t *j, const char *path, lm_pre **out);
void lm_pre_free(lm_pre *p);
lm_status lm_dec_parse(json_t *j, const char *path, lm_dec **out);
void lm_dec_free(lm_dec *d);
lm_status lm_post_parse(lm_tokenizer *t, json_t *j, const char *path);
void lm_post_free(lm_post *p);
lm_status lm_regex_compile(const char *pattern, size_t len, const char *path, pcre2_code **out);

/* Normalizes ns in place (it may be replaced by a new string). */
lm_status lm_norm_apply(const lm_norm *n, lm_nstr *ns);

/* A pre-token: bytes [s, e) of the working string. */
typedef struct { uint32_t s, e; } lm_span;
typedef struct { lm_span *v; size_t n, cap; } lm_spans;
lm_status lm_spans_push(lm_spans *sp, uint32_t s, uint32_t e);
/* Splits ns into pre-tokens (ns may grow when a stage rewrites text, as
 * Metaspace does). first: this segment starts the input. */
lm_status lm_pre_apply(const lm_pre *p, lm_nstr *ns, lm_spans *io, int first);

/* Model: encodes one pre-token; appends ids and each id's end byte
 * (relative to w) to the output vectors. */
typedef struct {
    int32_t *ids;
    uint32_t *ends;
    size_t n, cap;
} lm_toks;
lm_status lm_toks_reserve(lm_toks *o, size_t extra);
lm_status lm_bpe_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out);
lm_status lm_wordpiece_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out);
lm_status lm_unigram_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out);
lm_status lm_unigram_build(lm_tokenizer *t);

/* Decoder chain over token byte strings. */
lm_status lm_dec_apply(const lm_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                       size_t *len);

json_t *lm_tok_to_json(const lm_tokenizer *t);

/* The data directory holding tokenizers/gpt2 etc. */
const char *lm_tok_data_dir(void);

#endif
