/* A SentencePiece-style BPE tokenizer.json (byte fallback, the way HF
 * stores LLaMA-2's and Mistral's tokenizers) as the pieces and scores of
 * the SentencePiece model it came from, for llama2.c's tokenizer.bin.
 *
 * SentencePiece's BPE trainer adds pieces in merge order and scores each
 * -(its rank); control, unknown and byte pieces score 0. llama2.c merges
 * by those scores, so the ranks are all it needs: -(id - first), where
 * first is the first ordinary piece's id. (stories260K's tok512.bin is
 * exactly that.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/tokenizer.h"

static int is_byte_piece(const char *s) {
    unsigned v;
    char end;
    return s && strlen(s) == 6 && sscanf(s, "<0x%2X%c", &v, &end) == 2 && end == '>';
}

lm_status lm_tokenizer_spm_vocab(const lm_tokenizer *t, char ***pieces, float **scores, int *n) {
    int V = lm_tokenizer_vocab_size(t), bytes = 0, first = -1;
    int32_t unk = lm_tokenizer_unk_id(t);
    for (int i = 0; i < V; i++) {
        const char *s = lm_tokenizer_id_to_token(t, i);
        if (!s) return lm_error(LM_ERR_UNSUPPORTED, "tokenizer: id %d has no token (not a SentencePiece vocabulary)", i);
        if (is_byte_piece(s)) bytes++;
        else if (first < 0 && !lm_tokenizer_is_special(t, i) && i != unk) first = i;
    }
    if (bytes != 256 || first < 0)
        return lm_error(LM_ERR_UNSUPPORTED, "tokenizer: not SentencePiece-style (%d of 256 <0xNN> byte pieces)", bytes);
    char **p = calloc((size_t)V, sizeof *p);
    float *sc = calloc((size_t)V, sizeof *sc);
    if (!p || !sc) {
        free(p), free(sc);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < V; i++) {
        const char *s = lm_tokenizer_id_to_token(t, i);
        p[i] = strdup(s);
        if (!p[i]) {
            for (int j = 0; j < i; j++) free(p[j]);
            free(p), free(sc);
            return lm_error(LM_ERR_NOMEM, "out of memory");
        }
        int ordinary = !is_byte_piece(s) && !lm_tokenizer_is_special(t, i) && i != unk;
        sc[i] = ordinary && i >= first ? -(float)(i - first) : 0.f;
    }
    *pieces = p, *scores = sc, *n = V;
    return LM_OK;
}
