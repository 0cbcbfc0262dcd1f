/* lmkit chat: an interactive conversation with a model. Each turn the
 * whole history is rendered with the model's chat template and the reply
 * streams to stdout; it reads stdin line by line, so a pipe works as
 * well as a terminal. /reset clears the history, /exit or EOF ends;
 * other /words are refused as unknown commands. */
#include "args.h"
#include "cli.h"

#include "lmkit/causal_lm.h"
#include "lmkit/chat_template.h"
#include "lmkit/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    lm_chat_message *v;
    int n, cap;
} lm_history;

static int lm_history_add(lm_history *h, const char *role, const char *content, size_t len) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 16;
        lm_chat_message *v = realloc(h->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    char *c = strndup(content, len);
    if (!c) return -1;
    h->v[h->n++] = (lm_chat_message){role, c};
    return 0;
}

/* Drops messages [from, from+k). */
static void lm_history_drop(lm_history *h, int from, int k) {
    if (k <= 0) return; /* an empty history has no array to move (memmove of NULL is undefined) */
    for (int i = from; i < from + k; i++) free((char *)h->v[i].content);
    memmove(h->v + from, h->v + from + k, (size_t)(h->n - from - k) * sizeof *h->v);
    h->n -= k;
}

static int lm_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* tokenizer_config.json in the model directory, or beside the model or
 * tokenizer file. */
static char *lm_find_config(const char *model, const char *tok) {
    const char *bases[2] = {model, tok};
    for (int i = 0; i < 2; i++) {
        if (!bases[i]) continue;
        char *dir;
        if (lm_is_dir(bases[i])) dir = strdup(bases[i]);
        else {
            const char *slash = strrchr(bases[i], '/');
            dir = slash ? strndup(bases[i], (size_t)(slash - bases[i])) : strdup(".");
        }
        char *p = dir ? lm_path_join(dir, "tokenizer_config.json") : NULL;
        free(dir);
        if (p && lm_file_exists(p)) return p;
        free(p);
    }
    return NULL;
}

/* The chat template a GGUF model carries (tokenizer.chat_template, as
 * llama.cpp's converters copy it from tokenizer_config.json), or NULL. */
static char *lm_gguf_chat_template(const lm_causal_lm *lm) {
    const lm_gguf *g = lm->llama ? lm->llama->gguf : NULL; /* the file the model was loaded from */
    char *src = NULL;
    if (g && lm_gguf_find(g, "tokenizer.chat_template") && lm_gguf_get_str(g, "tokenizer.chat_template", &src) != LM_OK) src = NULL;
    return src;
}

/* A built-in for a model without a template, from its special tokens. */
static const char *lm_guess_builtin(const lm_causal_lm *lm) {
    if (lm_tokenizer_token_to_id(lm->tok, "<|eot_id|>") >= 0) return "llama3";
    if (lm_tokenizer_token_to_id(lm->tok, "<|im_start|>") >= 0) return "chatml";
    if (lm_tokenizer_token_to_id(lm->tok, "<|user|>") >= 0) return "zephyr";
    if (lm->llama) return "llama2";
    return "chatml";
}

static char *lm_token_text(const lm_tokenizer *tok, int32_t id) {
    const char *s = id >= 0 ? lm_tokenizer_id_to_token(tok, id) : NULL;
    return strdup(s ? s : "");
}

typedef struct {
    char *buf;
    size_t len, cap;
} lm_reply;

static int lm_chat_chunk(const char *text, size_t n, void *user) {
    lm_reply *r = user;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = realloc(r->buf, cap);
        if (!b) return 1;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, text, n);
    r->len += n;
    r->buf[r->len] = 0;
    return 0;
}

typedef struct {
    lm_causal_lm lm;
    lm_chat_template *tpl;
    char *src, *bos, *eos;
    lm_history h;
    int n_system; /* 0 or 1: the system prompt survives /reset and trimming */
    lm_generate_params gp;
} lm_chat;

/* Renders and encodes messages; BOS written by the template as text
 * becomes the BOS id, so it is one token as in training. */
static lm_status lm_chat_encode_msgs(lm_chat *c, const lm_chat_message *msgs, int n_msgs, int32_t **ids, size_t *n) {
    char *text = NULL;
    LM_TRY(lm_chat_template_apply(c->tpl, msgs, n_msgs, c->bos, c->eos, 1, &text));
    size_t bl = strlen(c->bos);
    lm_status s;
    if (bl && !strncmp(text, c->bos, bl) && lm_causal_lm_bos_id(&c->lm) >= 0)
        s = lm_causal_lm_encode_ex(&c->lm, text + bl, 1, ids, n);
    else
        s = lm_causal_lm_encode_ex(&c->lm, text, -1, ids, n);
    free(text);
    return s;
}

static lm_status lm_chat_encode(lm_chat *c, int32_t **ids, size_t *n) { return lm_chat_encode_msgs(c, c->h.v, c->h.n, ids, n); }

/* Before the first line is read: the template must render a one-message
 * conversation (one that always raises would drop every message), and
 * the system prompt, sent with every turn, must leave room in the context
 * for a message and a reply. Either failure is the user's setup, not a
 * message, so it ends the command with an error. */
static int lm_chat_check_setup(lm_chat *c, const char *system) {
    int has_sys = system && system[0];
    const lm_chat_message probe[2] = {{"system", has_sys ? system : ""}, {"user", "Hello"}};
    if (has_sys && lm_cli_check_encodable("chat", "--system", c->lm.tok, system, strlen(system))) return 1;
    char *text = NULL;
    if (lm_chat_template_apply(c->tpl, probe + !has_sys, 1 + has_sys, c->bos, c->eos, 1, &text) != LM_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", lm_last_error());
        if (has_sys && lm_chat_template_apply(c->tpl, probe + 1, 1, c->bos, c->eos, 1, &text) == LM_OK) {
            free(text);
            return lm_fail("chat: --system: the chat template refuses a system message: %s", err);
        }
        return lm_fail("chat: the chat template fails on a one-message conversation, so no message could be answered: %s", err);
    }
    /* Characters the template itself writes (role markers) that the
     * vocabulary lacks are dropped from every prompt: worth knowing, but
     * the model still sees the messages, so it is a note. */
    char msg[256];
    if (lm_cli_find_unencodable(c->lm.tok, text, strlen(text), msg, sizeof msg) == 1)
        fprintf(stderr, "lmkit: note: the chat template writes text the model's vocabulary cannot encode (rendered prompt %s); "
                        "the model will not see it\n", msg);
    free(text);
    if (!has_sys) return 0;
    int32_t *ids = NULL;
    size_t n = 0, n_sys = 0;
    if (lm_chat_encode_msgs(c, probe, 2, &ids, &n) != LM_OK) return lm_fail("chat: --system: %s", lm_last_error());
    free(ids);
    ids = NULL;
    int n_ctx = c->lm.decoder.n_ctx;
    if ((int)n < n_ctx) return 0;
    if (lm_causal_lm_encode_ex(&c->lm, system, 0, &ids, &n_sys) != LM_OK) return lm_fail("chat: --system: %s", lm_last_error());
    free(ids);
    return lm_fail("chat: --system is %zu tokens (%zu with the chat template and a one-word message), which leaves no room in the "
                   "model's context of %d tokens; shorten it",
                   n_sys, n, n_ctx);
}

/* What a line of input asks for. A line whose first non-blank character
 * is '/' is a command and never reaches the model (a mistyped /exit
 * would otherwise become a message); "//text" sends "/text". */
typedef enum { LM_CHAT_MESSAGE, LM_CHAT_SKIP, LM_CHAT_RESET, LM_CHAT_EXIT } lm_chat_action;

static lm_chat_action lm_chat_classify(const char *line, const char **msg) {
    *msg = line;
    size_t b = strspn(line, " \t"), e = strlen(line);
    while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
    if (e == b) return LM_CHAT_SKIP;
    if (line[b] != '/') return LM_CHAT_MESSAGE;
    if (line[b + 1] == '/') {
        *msg = line + b + 1;
        return LM_CHAT_MESSAGE;
    }
    const char *cmd = line + b;
    size_t n = e - b;
    if ((n == 5 && !strncasecmp(cmd, "/exit", 5)) || (n == 5 && !strncasecmp(cmd, "/quit", 5))) return LM_CHAT_EXIT;
    if (n == 6 && !strncasecmp(cmd, "/reset", 6)) return LM_CHAT_RESET;
    fprintf(stderr, "lmkit: note: unknown command '%.*s' (known: /reset, /exit, /quit; start a message with // to send a /); "
                    "not sent to the model\n", (int)(n > 40 ? 40 : n), cmd);
    return LM_CHAT_SKIP;
}

/* One user turn: trims old turns to fit, generates, records the reply.
 * Returns nonzero only for errors that end the session. */
static int lm_chat_turn(lm_chat *c, const char *line) {
    char why[256];
    int bad = lm_cli_find_unencodable(c->lm.tok, line, strlen(line), why, sizeof why);
    if (bad < 0) return lm_fail("chat: %s", why);
    if (bad) {
        /* A dropped character would change the message unseen; the
         * user can retype it, so the session goes on. */
        fprintf(stderr, "lmkit: note: message not sent: %s\n", why);
        return 0;
    }
    if (lm_history_add(&c->h, "user", line, strlen(line))) return lm_fail("out of memory");
    int n_ctx = c->lm.decoder.n_ctx;
    int reserve = c->gp.max_tokens < n_ctx / 2 ? c->gp.max_tokens : n_ctx / 2;
    int32_t *ids = NULL;
    size_t n = 0;
    for (;;) {
        free(ids);
        ids = NULL;
        if (lm_chat_encode(c, &ids, &n) != LM_OK) {
            /* a template error (e.g. raise_exception) spoils this turn, not the session */
            fprintf(stderr, "lmkit: note: %s; message dropped\n", lm_last_error());
            lm_history_drop(&c->h, c->h.n - 1, 1);
            return 0;
        }
        if ((int)n + reserve <= n_ctx) break;
        int old = c->h.n - c->n_system - 1; /* messages before this one */
        if (old <= 0) {
            if ((int)n < n_ctx) break; /* fits, with less room for the reply */
            fprintf(stderr, "lmkit: note: this message is %zu tokens%s, more than the context of %d; dropped\n", n,
                    c->n_system ? " with the system prompt" : "", n_ctx);
            free(ids);
            lm_history_drop(&c->h, c->h.n - 1, 1);
            return 0;
        }
        int k = old >= 2 ? 2 : 1; /* a user + assistant pair keeps roles alternating */
        lm_history_drop(&c->h, c->n_system, k);
        fprintf(stderr, "lmkit: note: conversation longer than the context (%d tokens); dropped the oldest turn\n", n_ctx);
    }
    lm_reply r = {NULL, 0, 0};
    lm_generate_stats st;
    lm_status s = lm_generate(&c->lm.decoder, c->lm.tok, ids, (int)n, &c->gp, lm_chat_chunk, &r, &st);
    free(ids);
    fputc('\n', stdout);
    fflush(stdout);
    if (s != LM_OK) {
        free(r.buf);
        return lm_fail_status();
    }
    int rc = lm_history_add(&c->h, "assistant", r.buf ? r.buf : "", r.len) ? lm_fail("out of memory") : 0;
    free(r.buf);
    return rc;
}

/* The template: --template NAME|FILE, else the model's
 * tokenizer_config.json, else the one a GGUF carries, else a built-in
 * guessed from the vocabulary.
 * bos/eos strings come from tokenizer_config.json when there is one. */
static int lm_chat_template_pick(lm_chat *c, const char *spec, const char *model, const char *tok_spec) {
    char *src = NULL, *bos = NULL, *eos = NULL;
    const char *builtin = NULL;
    lm_status s = LM_OK;
    char *cfg = lm_find_config(model, tok_spec);
    if (cfg) s = lm_chat_template_load_config(cfg, &src, &bos, &eos);
    free(cfg);
    if (s == LM_OK && !src && !spec) src = lm_gguf_chat_template(&c->lm);
    if (s == LM_OK && spec) {
        free(src);
        src = NULL;
        builtin = lm_chat_template_builtin(spec);
        const char *dot = strrchr(spec, '.');
        if (builtin) {
        } else if (dot && !strcmp(dot, ".json")) {
            char *b2 = NULL, *e2 = NULL;
            s = lm_chat_template_load_config(spec, &src, &b2, &e2);
            if (s == LM_OK && !src) s = lm_error(LM_ERR_FORMAT, "%s: no chat_template in it", spec);
            if (b2) free(bos), bos = b2;
            if (e2) free(eos), eos = e2;
        } else if (!lm_file_exists(spec) && !strchr(spec, '/')) {
            s = lm_error(LM_ERR_ARG, "--template %s: neither a built-in (%s) nor a file", spec, lm_chat_template_builtin_names());
        } else {
            size_t len;
            s = lm_read_file(spec, &src, &len);
        }
    } else if (s == LM_OK && !src) {
        const char *name = lm_guess_builtin(&c->lm);
        builtin = lm_chat_template_builtin(name);
        fprintf(stderr, "lmkit: note: the model has no chat template; using the built-in '%s'\n", name);
    }
    c->bos = bos ? bos : lm_token_text(c->lm.tok, lm_causal_lm_bos_id(&c->lm));
    c->eos = eos ? eos : lm_token_text(c->lm.tok, lm_tokenizer_eos_id(c->lm.tok));
    c->src = builtin ? strdup(builtin) : src;
    if (s == LM_OK && !c->src) s = lm_error(LM_ERR_NOMEM, "out of memory");
    if (s == LM_OK) s = lm_chat_template_parse(c->src, &c->tpl);
    return s == LM_OK ? 0 : lm_fail_status();
}

int lm_cmd_chat(int argc, char **argv) {
    const char *model = NULL, *tok_spec = NULL, *system = NULL, *template_spec = NULL;
    int max_tokens = 256, threads = 0;
    long seed = 0;
    lm_sample_params sp = lm_sample_defaults();
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model, "GPT-2 or LLaMA-family (LLaMA, Mistral, Qwen2) HF dir, .gguf, or llama2.c .bin"},
        {"--tokenizer", LM_ARG_STR, &tok_spec, "tokenizer to use instead of the model's own"},
        {"--system", LM_ARG_STR, &system, "system prompt, kept across /reset and context trimming"},
        {"--template", LM_ARG_STR, &template_spec,
         "chat template: a built-in (chatml, llama2, llama3, mistral, zephyr), a Jinja file, or a tokenizer_config.json"},
        {"--max-tokens", LM_ARG_INT, &max_tokens, "tokens per reply at most (256)"},
        {"--temperature", LM_ARG_FLOAT, &sp.temperature, "sampling temperature, 0 = greedy (1.0)"},
        {"--top-k", LM_ARG_INT, &sp.top_k, "sample from the k most likely tokens, 0 = off"},
        {"--top-p", LM_ARG_FLOAT, &sp.top_p, "nucleus sampling mass, 1 = off"},
        {"--repeat-penalty", LM_ARG_FLOAT, &sp.repetition_penalty, "repetition penalty, 1 = off"},
        {"--seed", LM_ARG_LONG, &seed, "random seed; the same seed gives the same conversation (0)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit chat --model M [options]  (then type; /reset clears the history, /exit ends)", specs, argc, argv,
                          NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!model) return lm_fail("chat: --model is required");
    if (max_tokens < 1) return lm_fail("chat: --max-tokens %d must be >= 1", max_tokens);
    if (lm_cli_check_sampling("chat", &sp)) return 2;
    lm_set_threads(threads);
    sp.seed = (uint64_t)seed;

    lm_chat c;
    memset(&c, 0, sizeof c);
    if (lm_causal_lm_open(model, tok_spec, &c.lm) != LM_OK) return lm_fail_status();
    int rc = lm_chat_template_pick(&c, template_spec, model, tok_spec);
    const char *stops[8];
    int n_stops = rc ? 0 : lm_chat_template_stop_strings(c.src, c.eos, stops, 8);
    c.gp = (lm_generate_params){.max_tokens = max_tokens, .sample = sp, .stops = stops, .n_stops = n_stops};
    if (!rc) rc = lm_chat_check_setup(&c, system);
    if (!rc && system && system[0]) {
        if (lm_history_add(&c.h, "system", system, strlen(system))) rc = lm_fail("out of memory");
        c.n_system = 1;
    }
    int tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    while (!rc) {
        if (tty) fputs("> ", stderr);
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (memchr(line, 0, (size_t)len)) {
            /* the message would be cut at the NUL unseen */
            fputs("lmkit: note: message not sent: it contains a NUL byte\n", stderr);
            continue;
        }
        const char *msg;
        lm_chat_action act = lm_chat_classify(line, &msg);
        if (act == LM_CHAT_EXIT) break;
        if (act == LM_CHAT_RESET) {
            lm_history_drop(&c.h, c.n_system, c.h.n - c.n_system);
            fputs("lmkit: note: history cleared\n", stderr);
        }
        if (act == LM_CHAT_MESSAGE) rc = lm_chat_turn(&c, msg);
    }
    free(line);
    lm_history_drop(&c.h, 0, c.h.n);
    free(c.h.v);
    lm_chat_template_free(c.tpl);
    free(c.src);
    free(c.bos);
    free(c.eos);
    lm_causal_lm_close(&c.lm);
    return rc;
}
