/* lmkit tokenizer: text <-> token ids, compatible with HF `tokenizers`
 * (tokenizer.json), GPT-2 (encoder.json + vocab.bpe), tiktoken rank files
 * and llama2.c tokenizer.bin.
 *
 * A loaded lm_tokenizer is immutable: any number of threads may encode and
 * decode with one tokenizer at the same time. */
#ifndef LMKIT_TOKENIZER_H
#define LMKIT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lmkit/base.h"

typedef struct lm_tokenizer lm_tokenizer;

/* spec is one of:
 *   "bytes"       256 symbols, id = byte value (saveable as an HF ByteLevel BPE)
 *   "gpt2"        GPT-2 byte-level BPE from <data dir>/tokenizers/gpt2/
 *                 (encoder.json + vocab.bpe); the data dir is $LMKIT_DATA_DIR
 *                 or the build's data/ folder
 *   a tokenizer.json file, a *.tiktoken rank file, a llama2.c tokenizer.bin,
 *   a GGUF file's own tokenizer (tokenizer.ggml.*: SentencePiece "llama"
 *   or byte-level BPE "gpt2" vocabularies), or a directory holding
 *   tokenizer.json, encoder.json + vocab.bpe, or tokenizer.bin.
 * On success *out owns the tokenizer; free it with lm_tokenizer_free. */
lm_status lm_tokenizer_load(const char *spec, lm_tokenizer **out);
/* The tokenizer of an open GGUF (what lm_tokenizer_load does for a .gguf
 * path); name labels errors. lm_gguf_carries_tokenizer: whether it has
 * tokenizer keys (tokenizer.ggml.model or .tokens, valid or not). */
typedef struct lm_gguf lm_gguf;
lm_status lm_tokenizer_from_gguf(const lm_gguf *g, const char *name, lm_tokenizer **out);
int lm_gguf_carries_tokenizer(const lm_gguf *g);
/* A SentencePiece vocabulary piece as SentencePiece (and so GGUF and
 * llama.cpp) spells it: a space is U+2581, and llama2.c's "\n<s>\n" is
 * "<s>". Pieces already in that form come back unchanged. malloc'd;
 * *out_len (if not NULL) gets its length. */
char *lm_spm_spelling(const char *piece, size_t len, size_t *out_len);
/* Adds the tokenizer of the Hugging Face directory dir (tokenizer.json and
 * tokenizer_config.json) to a GGUF as llama.cpp's converter writes it:
 * tokenizer.ggml.* (padded to vocab_size with unused tokens) and
 * tokenizer.chat_template; bos_id/eos_id (config.json's, -1: none) serve
 * where the tokenizer names none. *wrote_bos / *wrote_eos say whether it
 * wrote those ids. LM_ERR_UNSUPPORTED (nothing written) when there is no
 * tokenizer.json or GGUF has no form for it. */
typedef struct lm_gguf_writer lm_gguf_writer;
lm_status lm_gguf_add_hf_tokenizer(lm_gguf_writer *w, const char *dir, int vocab_size, int32_t bos_id, int32_t eos_id,
                                   int *wrote_bos, int *wrote_eos);
void lm_tokenizer_free(lm_tokenizer *t);

/* Encodes len bytes of text (need not be NUL-terminated; invalid UTF-8 is
 * first replaced by U+FFFD per maximal subpart, as Python's
 * bytes.decode(errors="replace") does). Added/special tokens written in the
 * text are recognised; add_special adds the post-processor's tokens (BOS,
 * [CLS]/[SEP]...). *ids is malloc'd; the caller frees it with free(). */
lm_status lm_tokenizer_encode(const lm_tokenizer *t, const char *text, size_t len, int add_special,
                              int32_t **ids, size_t *n);

/* Full encoding of one sequence, as HF's Encoding. Offsets are byte ranges
 * [start, end) into the input text; special tokens added by the
 * post-processor get (0, 0). */
typedef struct {
    size_t n;
    int32_t *ids;
    uint32_t (*offsets)[2];
    uint8_t *attention_mask;    /* 0 on padding */
    uint8_t *special_mask;      /* 1 on tokens added by post-processing / padding */
    uint8_t *type_ids;
} lm_encoding;

typedef struct {
    int add_special;     /* post-processor tokens (BOS, CLS/SEP) */
    int split_special;   /* recognise added tokens in the text (default on) */
    size_t max_length;   /* 0: no truncation; else truncate (right) to max_length */
    size_t pad_to;       /* 0: no padding; else pad (right) to pad_to */
    int pad_to_longest;  /* batch only: pad every row to the longest row */
} lm_encode_opts;

/* Default options: add_special = 1, split_special = 1, no truncation or
 * padding, unless the tokenizer.json declared truncation/padding. */
lm_encode_opts lm_tokenizer_default_opts(const lm_tokenizer *t);

/* Fills *enc (arrays malloc'd; release with lm_encoding_free). */
lm_status lm_tokenizer_encode_full(const lm_tokenizer *t, const char *text, size_t len,
                                   const lm_encode_opts *opts, lm_encoding *enc);
/* Encodes n texts with up to lm_get_threads() threads; encs[i] as above. */
lm_status lm_tokenizer_encode_batch(const lm_tokenizer *t, const char *const *texts, const size_t *lens,
                                    size_t n, const lm_encode_opts *opts, lm_encoding *encs);
void lm_encoding_free(lm_encoding *enc);

/* Decodes ids to text through the tokenizer's decoder. The bytes are what
 * the tokens spell (byte-level tokens may yield invalid UTF-8 when a
 * character is cut; nothing is replaced). skip_special drops special
 * tokens. *text is malloc'd and NUL-terminated; caller frees with free(). */
lm_status lm_tokenizer_decode_ex(const lm_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                                 char **text, size_t *len);
/* decode_ex with skip_special = 0. */
lm_status lm_tokenizer_decode(const lm_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);

/* Streaming decode for generation: the raw bytes one token contributes
 * when it follows other tokens (first != 0: it starts the text, so e.g. a
 * SentencePiece leading space is dropped). *bytes points into the
 * tokenizer (valid until it is freed). A character may span tokens: the
 * caller buffers and emits lm_utf8_complete_prefix() bytes at a time. */
lm_status lm_tokenizer_decode_piece(const lm_tokenizer *t, int32_t id, int first, const char **bytes,
                                    size_t *len);
/* Length of the longest prefix of s that does not end inside an
 * incomplete (but so far valid) UTF-8 sequence. */
size_t lm_utf8_complete_prefix(const char *s, size_t len);
/* Decodes one scalar at s (n > 0 bytes left); returns its length, or 0 if
 * the bytes there are not valid UTF-8 (overlong forms, surrogates and
 * values past U+10FFFF included: tokenizers read those as U+FFFD). */
int lm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* The SentencePiece pieces and scores of a SentencePiece-style BPE
 * tokenizer (256 "<0xNN>" byte-fallback pieces, spaces as U+2581), as its
 * SentencePiece model scored them: -(rank) in id order for ordinary
 * pieces, 0 for control, unknown and byte pieces. For llama2.c's
 * tokenizer.bin. LM_ERR_UNSUPPORTED for other kinds. The caller frees
 * each piece, the array and the scores. */
lm_status lm_tokenizer_spm_vocab(const lm_tokenizer *t, char ***pieces, float **scores, int *n);
int lm_tokenizer_vocab_size(const lm_tokenizer *t);   /* highest id + 1 */
const char *lm_tokenizer_id_to_token(const lm_tokenizer *t, int32_t id); /* NULL if none */
int32_t lm_tokenizer_token_to_id(const lm_tokenizer *t, const char *token); /* -1 if absent */
int lm_tokenizer_is_special(const lm_tokenizer *t, int32_t id);
int32_t lm_tokenizer_bos_id(const lm_tokenizer *t); /* -1 if none */
int32_t lm_tokenizer_eos_id(const lm_tokenizer *t);
int32_t lm_tokenizer_pad_id(const lm_tokenizer *t);
int32_t lm_tokenizer_unk_id(const lm_tokenizer *t);

/* Writes an HF tokenizer.json (atomically) that `tokenizers` loads and
 * that encodes like this tokenizer. */
lm_status lm_tokenizer_save(const lm_tokenizer *t, const char *path);
/* Writes a tokenizer_config.json beside it so transformers' AutoTokenizer
 * loads tokenizer.json unchanged (model_max_length <= 0: omitted). */
lm_status lm_tokenizer_save_config(const lm_tokenizer *t, const char *path, int model_max_length);
/* The same for a model directory: also add_bos_token / add_eos_token as
 * the tokenizer's post-processor behaves (transformers rebuilds it from
 * them) and chat_template when not NULL. */
lm_status lm_tokenizer_save_model_config(const lm_tokenizer *t, const char *path, int model_max_length, const char *chat_template);

/* A character-level tokenizer: one id per distinct character of the texts,
 * in code-point order (nanoGPT's shakespeare_char vocabulary). Saved as an
 * HF BPE tokenizer.json without merges. */
lm_status lm_tokenizer_chars(const char *const *texts, const size_t *lens, size_t n_texts, lm_tokenizer **out);

/* ---- training ---- */
typedef enum { LM_TOKTRAIN_BPE = 0, LM_TOKTRAIN_WORDPIECE = 1 } lm_toktrain_type;
typedef struct {
    lm_toktrain_type type;
    int vocab_size;
    int min_frequency;          /* pairs seen fewer times are not merged (default 2) */
    const char *const *special; /* special tokens, get the first ids */
    int n_special;
    int lowercase;              /* WordPiece: BERT uncased normalization */
} lm_toktrain_opts;

/* Trains a tokenizer on the concatenated texts (deterministic: the same
 * inputs give the same vocabulary). Byte-level BPE is GPT-2 style;
 * WordPiece is BERT style. *out as lm_tokenizer_load. */
lm_status lm_tokenizer_train(const lm_toktrain_opts *opts, const char *const *texts, const size_t *lens,
                             size_t n_texts, lm_tokenizer **out);

#endif
