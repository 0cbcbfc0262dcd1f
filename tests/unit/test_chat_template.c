/* Chat templates: byte-identical rendering against transformers'
 * apply_chat_template (goldens from ref/chat_templates_golden.py) for the
 * LLaMA-2/3, Mistral, Qwen2/ChatML and Zephyr families and a set of
 * synthetic templates covering each Jinja feature; raise_exception and
 * malformed templates fail with a message naming the position;
 * tokenizer_config.json loading; end-of-turn strings. */
#include "lmkit/chat_template.h"
#include "test.h"

#include <jansson.h>
#include <unistd.h>

static const char *const families[] = {"llama2", "llama3", "mistral_v01", "mistral_v02", "qwen2", "chatml", "zephyr"};

static void show_diff(const char *what, const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    fprintf(stderr, "%s: first difference at byte %zu\n  got:  \"%.60s\"\n  want: \"%.60s\"\n", what, i, got + i, want + i);
}

/* Renders every case of one golden file; returns the number of cases. */
static int check_cases(const char *label, const char *family_template, json_t *cases, const char *bos, const char *eos) {
    size_t i;
    json_t *c;
    int count = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tpl = family_template ? family_template : json_string_value(json_object_get(c, "template"));
        json_t *jm = json_object_get(c, "messages");
        size_t n = json_array_size(jm);
        lm_chat_message msgs[16];
        CHECK(n <= 16);
        for (size_t k = 0; k < n && k < 16; k++) {
            msgs[k].role = json_string_value(json_object_get(json_array_get(jm, k), "role"));
            msgs[k].content = json_string_value(json_object_get(json_array_get(jm, k), "content"));
        }
        int agp = json_is_true(json_object_get(c, "add_generation_prompt"));
        char *out = NULL;
        lm_status s = lm_chat_template_render(tpl, msgs, (int)n, bos, eos, agp, &out);
        const char *want = json_string_value(json_object_get(c, "expected"));
        const char *err = json_string_value(json_object_get(c, "error"));
        if (want) {
            CHECK_MSG(s == LM_OK, "%s/%s: %s", label, name, lm_last_error());
            if (s == LM_OK) {
                int same = !strcmp(out, want);
                CHECK_MSG(same, "%s/%s differs from transformers", label, name);
                if (!same) show_diff(name, out, want);
            }
        } else {
            CHECK_MSG(s == LM_ERR_ARG, "%s/%s: expected the error '%s', got status %d", label, name, err, s);
            CHECK_MSG(err && strstr(lm_last_error(), err) && strstr(lm_last_error(), "raise_exception") &&
                          strstr(lm_last_error(), "chat template line "),
                      "%s/%s: message '%s' lacks '%s' or its position", label, name, lm_last_error(), err ? err : "?");
        }
        free(out);
        count++;
    }
    return count;
}

static json_t *load_golden(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/chat_templates/%s.json", name);
    json_error_t e;
    json_t *g = json_load_file(test_src_path(rel), 0, &e);
    CHECK_MSG(g != NULL, "%s: %s", rel, e.text);
    return g;
}

static void test_families(void) {
    int errors_seen = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        json_t *g = load_golden(families[f]);
        if (!g) continue;
        const char *tpl = json_string_value(json_object_get(g, "template"));
        const char *builtin = json_string_value(json_object_get(g, "builtin"));
        json_t *cases = json_object_get(g, "cases");
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) errors_seen += json_object_get(c, "error") != NULL;
        int n = check_cases(families[f], tpl, cases, json_string_value(json_object_get(g, "bos_token")),
                            json_string_value(json_object_get(g, "eos_token")));
        CHECK_MSG(n >= 18, "%s: only %d cases", families[f], n);
        if (builtin) {
            const char *b = lm_chat_template_builtin(builtin);
            CHECK_MSG(b && !strcmp(b, tpl), "built-in '%s' is not the %s template", builtin, families[f]);
        }
        json_decref(g);
    }
    /* the goldens must include raise_exception paths, or that check is vacuous */
    CHECK(errors_seen >= 6);
}

static void test_features(void) {
    json_t *g = load_golden("jinja_features");
    if (!g) return;
    int n = check_cases("jinja_features", NULL, json_object_get(g, "cases"), json_string_value(json_object_get(g, "bos_token")),
                        json_string_value(json_object_get(g, "eos_token")));
    CHECK(n >= 15);
    json_decref(g);
}

/* A bad template must fail cleanly with `needle` and its line:col. */
static void expect_error(const char *tpl, lm_status code, const char *needle, const char *where) {
    lm_chat_message m[2] = {{"user", "hi"}, {"assistant", "yo"}};
    char *out = (char *)"sentinel";
    lm_status s = lm_chat_template_render(tpl, m, 2, "<s>", "</s>", 1, &out);
    CHECK_MSG(s == code, "'%s': status %d, want %d (%s)", tpl, s, code, lm_last_error());
    CHECK_MSG(out == NULL, "'%s': out not cleared on error", tpl);
    CHECK_MSG(strstr(lm_last_error(), needle), "'%s': message '%s' lacks '%s'", tpl, lm_last_error(), needle);
    if (where) CHECK_MSG(strstr(lm_last_error(), where), "'%s': message '%s' lacks position '%s'", tpl, lm_last_error(), where);
}

static void test_errors(void) {
    /* syntax: found when parsing */
    expect_error("{% if x %}no end", LM_ERR_FORMAT, "never closed (expected 'endif')", "line 1 col 1");
    expect_error("ab{% for m in messages %}", LM_ERR_FORMAT, "expected 'endfor'", "line 1 col 3");
    expect_error("{{ x | nosuchfilter }}", LM_ERR_FORMAT, "unknown filter 'nosuchfilter'", "line 1 col 8");
    expect_error("{{ x is nosuchtest }}", LM_ERR_FORMAT, "unknown test 'nosuchtest'", "col 9");
    expect_error("a\nb\n  {{ 'abc }}", LM_ERR_FORMAT, "unterminated string", "line 3 col 6");
    expect_error("{{ 'a' + }}", LM_ERR_FORMAT, "expected an expression", "col 10");
    expect_error("{{ (1 }}", LM_ERR_FORMAT, "unclosed '{{' tag", NULL);
    expect_error("{{ (1 ) ) }}", LM_ERR_FORMAT, "expected '}}', got )", NULL);
    expect_error("{{ x ", LM_ERR_FORMAT, "unclosed '{{' tag", "line 1 col 1");
    expect_error("{# comment", LM_ERR_FORMAT, "unclosed comment", NULL);
    expect_error("{% endfor %}", LM_ERR_FORMAT, "unexpected 'endfor'", NULL);
    expect_error("{% macro m() %}x{% endmacro %}", LM_ERR_UNSUPPORTED, "unsupported tag 'macro'", NULL);
    expect_error("{% for a, b in x %}{% endfor %}", LM_ERR_UNSUPPORTED, "unpacking", NULL);
    expect_error("{% %}", LM_ERR_FORMAT, "tag name", NULL);
    expect_error("{{ '\\x4' }}", LM_ERR_FORMAT, "truncated \\x escape", NULL);
    expect_error("{{ a $ b }}", LM_ERR_FORMAT, "unexpected character '$'", "col 6");
    expect_error("{{ 99999999999999999999 }}", LM_ERR_FORMAT, "too large", NULL);
    /* hostile nesting: an error, not a stack overflow */
    char deep[4096];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1500; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1500; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    expect_error(deep, LM_ERR_FORMAT, "nested too deeply", NULL);
    k = 0;
    for (int i = 0; i < 400; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "{%%if 1%%}");
    expect_error(deep, LM_ERR_FORMAT, "nested too deeply", NULL);
    /* runtime: found when rendering */
    expect_error("{{ raise_exception('custom failure') }}", LM_ERR_ARG, "raise_exception: custom failure", "line 1 col 4");
    expect_error("x\n{{ undefined_var + 'a' }}", LM_ERR_ARG, "'undefined_var' is undefined", "line 2 col 4");
    expect_error("{{ nope.attr }}", LM_ERR_ARG, "'nope' is undefined", NULL);
    expect_error("{{ messages[0].role.nosuchmethod() }}", LM_ERR_ARG, "has no method 'nosuchmethod'", NULL);
    expect_error("{{ 1 / 0 }}", LM_ERR_ARG, "division by zero", NULL);
    expect_error("{{ 'a' + 1 }}", LM_ERR_ARG, "unsupported operand types for +: 'string' and 'int'", NULL);
    expect_error("{% set ns = 'x' %}{% set ns.a = 1 %}", LM_ERR_ARG, "not a namespace()", NULL);
    expect_error("{% break %}", LM_ERR_ARG, "outside a for loop", NULL);
    expect_error("{% for x in 5 %}{% endfor %}", LM_ERR_ARG, "not iterable", NULL);
    expect_error("{{ nosuchfunc(1) }}", LM_ERR_ARG, "'nosuchfunc' is undefined or not a function", NULL);
    expect_error("{{ messages | tojson(indent='x') }}", LM_ERR_ARG, "indent must be an integer", NULL);
    expect_error("{{ 'a' < 1 }}", LM_ERR_ARG, "not supported between", NULL);
    /* the parsed form is reusable and a failed render leaves it intact */
    lm_chat_template *t = NULL;
    CHECK_OK(lm_chat_template_parse(lm_chat_template_builtin("llama2"), &t));
    lm_chat_message bad[2] = {{"user", "a"}, {"user", "b"}}, good[1] = {{"user", "a"}};
    char *out = NULL;
    CHECK(lm_chat_template_apply(t, bad, 2, "<s>", "</s>", 0, &out) == LM_ERR_ARG);
    CHECK(strstr(lm_last_error(), "Conversation roles must alternate") != NULL);
    CHECK_OK(lm_chat_template_apply(t, good, 1, "<s>", "</s>", 0, &out));
    CHECK(out && !strcmp(out, "<s>[INST] a [/INST]"));
    free(out);
    lm_chat_message nullrole[1] = {{NULL, "x"}};
    CHECK(lm_chat_template_apply(t, nullrole, 1, "", "", 0, &out) == LM_ERR_ARG);
    lm_chat_template_free(t);
    CHECK(lm_chat_template_parse(NULL, &t) == LM_ERR_ARG && t == NULL);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_config(void) {
    char dir[] = "/tmp/lmkit_chat_cfg_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *src, *bos, *eos;

    write_file(path, "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\", \"lstrip\": false},"
                     " \"chat_template\": \"{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\"}");
    CHECK_OK(lm_chat_template_load_config(path, &src, &bos, &eos));
    CHECK(src && !strcmp(src, "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"));
    CHECK(bos && !strcmp(bos, "<s>"));
    CHECK(eos && !strcmp(eos, "</s>"));
    free(src), free(bos), free(eos);

    write_file(path, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    CHECK_OK(lm_chat_template_load_config(path, &src, &bos, &eos));
    CHECK(src && !strcmp(src, "D"));
    CHECK(bos == NULL && eos == NULL);
    free(src);

    write_file(path, "{\"eos_token\": \"</s>\"}");
    CHECK_OK(lm_chat_template_load_config(path, &src, &bos, &eos));
    CHECK(src == NULL);
    free(eos);

    write_file(path, "{\"chat_template\": 42}");
    CHECK(lm_chat_template_load_config(path, &src, &bos, &eos) == LM_ERR_FORMAT);
    CHECK(strstr(lm_last_error(), "chat_template must be") != NULL);
    write_file(path, "{\"chat_template\": [{\"name\": \"x\"}]}");
    CHECK(lm_chat_template_load_config(path, &src, &bos, &eos) == LM_ERR_FORMAT);
    write_file(path, "{\"chat_template\": \"x\"");
    CHECK(lm_chat_template_load_config(path, &src, &bos, &eos) == LM_ERR_FORMAT);
    CHECK(strstr(lm_last_error(), path) != NULL);
    unlink(path);
    CHECK(lm_chat_template_load_config(path, &src, &bos, &eos) == LM_ERR_FORMAT);
    rmdir(dir);
}

static void test_builtins_and_stops(void) {
    CHECK(lm_chat_template_builtin("nope") == NULL);
    const char *names[] = {"chatml", "llama2", "llama3", "mistral", "zephyr"};
    for (int i = 0; i < 5; i++) {
        lm_chat_template *t = NULL;
        CHECK_MSG(lm_chat_template_builtin(names[i]) != NULL, "%s", names[i]);
        CHECK_OK(lm_chat_template_parse(lm_chat_template_builtin(names[i]), &t));
        lm_chat_template_free(t);
        CHECK(strstr(lm_chat_template_builtin_names(), names[i]) != NULL);
    }
    const char *stops[8];
    int n = lm_chat_template_stop_strings(lm_chat_template_builtin("chatml"), "<|im_end|>", stops, 8);
    CHECK(n == 2 && !strcmp(stops[0], "<|im_end|>") && !strcmp(stops[1], "<|im_start|>"));
    n = lm_chat_template_stop_strings(lm_chat_template_builtin("llama3"), "<|end_of_text|>", stops, 8);
    CHECK(n == 3 && !strcmp(stops[0], "<|end_of_text|>") && !strcmp(stops[1], "<|eot_id|>"));
    n = lm_chat_template_stop_strings(lm_chat_template_builtin("llama2"), "</s>", stops, 8);
    CHECK(n == 2 && !strcmp(stops[0], "</s>") && !strcmp(stops[1], "[INST]"));
    n = lm_chat_template_stop_strings(lm_chat_template_builtin("zephyr"), "", stops, 1);
    CHECK(n == 1 && !strcmp(stops[0], "<|user|>"));
}

int main(void) {
    test_families();
    test_features();
    test_errors();
    test_config();
    test_builtins_and_stops();
    TEST_MAIN_END();
}
