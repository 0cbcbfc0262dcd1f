#!/bin/bash
# lmkit chat end to end on stories260K: piped stdin, history, /reset,
# /exit, other commands, --system, determinism, context trimming, template
# sources, and clean errors for bad input.
. "$LMKIT_SOURCE_DIR/tests/cli/lib.sh"
M="$SRC/data/models/stories260K/stories260K.bin"
V="$SRC/data/models/stories260K/tok512.bin"
chat() { "$LMKIT" chat --model "$M" --tokenizer "$V" --temperature 0 --max-tokens 24 "$@"; }

printf 'Hello\n' | chat --template chatml >"$TMP/a" 2>"$TMP/a.err" || bad "one turn failed: $(cat "$TMP/a.err")"
[ -s "$TMP/a" ] && [ "$(wc -l <"$TMP/a")" -ge 1 ] && ok || bad "no reply produced"

# Two replies; /reset makes the second turn start afresh, so it repeats
# the first reply exactly; nothing after /exit is read.
printf 'Hello\n/reset\nHello\n/exit\nHello\n' | chat --template chatml >"$TMP/b" 2>"$TMP/b.err" || bad "reset run failed"
cat "$TMP/a" "$TMP/a" >"$TMP/aa"
cmp -s "$TMP/b" "$TMP/aa" && ok || bad "after /reset the reply differs from a fresh one (or /exit ignored): $(cat "$TMP/b")"
grep -q "history cleared" "$TMP/b.err" && ok || bad "/reset printed no note"
printf 'Hello\n/reset\nHello\n/exit\n' | chat --template chatml >"$TMP/b2" 2>/dev/null
cmp -s "$TMP/b" "$TMP/b2" && ok || bad "temperature 0 is not deterministic"
# Without /reset the history is in the prompt, so the second reply differs.
printf 'Hello\nHello\n' | chat --template chatml >"$TMP/c" 2>/dev/null || bad "two-turn run failed"
cmp -s "$TMP/c" "$TMP/aa" && bad "second turn ignored the history" || ok
# Sampling with a seed is reproducible too.
printf 'Hi\nMore\n' | chat --template chatml --temperature 0.8 --top-p 0.9 --seed 7 >"$TMP/s1" 2>/dev/null
printf 'Hi\nMore\n' | chat --template chatml --temperature 0.8 --top-p 0.9 --seed 7 >"$TMP/s2" 2>/dev/null
[ -s "$TMP/s1" ] && cmp -s "$TMP/s1" "$TMP/s2" && ok || bad "seeded sampling not reproducible"

# The system prompt is part of every turn and survives /reset.
printf 'Hello\n' | chat --template chatml --system "You tell stories." >"$TMP/d1" 2>/dev/null || bad "--system failed"
printf 'Hello\n/reset\nHello\n' | chat --template chatml --system "You tell stories." >"$TMP/d2" 2>/dev/null
cat "$TMP/d1" "$TMP/d1" >"$TMP/dd"
cmp -s "$TMP/d2" "$TMP/dd" && ok || bad "system prompt lost on /reset"
cmp -s "$TMP/d1" "$TMP/a" && bad "--system had no effect on the prompt" || ok

# A long conversation overflows the 512-token context: the oldest turns
# are dropped with a note, the session goes on.
printf 'Hello\nTell me more\nAnd more\nAnd then?\n' | "$LMKIT" chat --model "$M" --tokenizer "$V" --template chatml \
    --temperature 0 --max-tokens 200 --system "You tell stories." >"$TMP/e" 2>"$TMP/e.err"
[ $? -eq 0 ] && ok || bad "context overflow failed the session: $(cat "$TMP/e.err")"
grep -q "dropped the oldest turn" "$TMP/e.err" && ok || bad "no note about dropped turns"
[ "$(grep -c . "$TMP/e")" -ge 4 ] && ok || bad "replies missing after trimming"

# The same template from a Jinja file and from a tokenizer_config.json.
cat >"$TMP/chatml.jinja" <<'T'
{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
T
printf 'Hello\n' | chat --template "$TMP/chatml.jinja" >"$TMP/f" 2>/dev/null
cmp -s "$TMP/f" "$TMP/a" && ok || bad "template file renders differently from the built-in"
python3 - "$TMP/chatml.jinja" "$TMP/tokenizer_config.json" <<'P'
import json, sys
json.dump({"chat_template": open(sys.argv[1]).read(), "eos_token": "</s>"}, open(sys.argv[2], "w"))
P
printf 'Hello\n' | chat --template "$TMP/tokenizer_config.json" >"$TMP/g" 2>/dev/null
cmp -s "$TMP/g" "$TMP/a" && ok || bad "tokenizer_config.json template renders differently"

# A template that raises on one message spoils that turn, not the session.
cat >"$TMP/raise.jinja" <<'T'
{% if messages[-1]['content'] == 'Boom' %}{{ raise_exception('no booms') }}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
T
printf 'Boom\nHello\n' | chat --template "$TMP/raise.jinja" >"$TMP/h" 2>"$TMP/h.err"
[ $? -eq 0 ] && [ "$(grep -c 'no booms' "$TMP/h.err")" -eq 1 ] && cmp -s "$TMP/h" "$TMP/a" && ok ||
    bad "raise_exception turn handling: $(cat "$TMP/h.err")"
# One that always raises could answer nothing: an error before any input.
echo "{{ raise_exception('no chatting today') }}" >"$TMP/always.jinja"
printf 'Hello\n' | expect_error "template that always raises" "chat template fails on a one-message conversation.*no chatting today" \
    chat --template "$TMP/always.jinja"
[ -s "$TMP/out" ] && bad "always-raising template wrote to stdout" || ok
# A template without a system role is refused up front when --system is given.
cat >"$TMP/nosys.jinja" <<'T'
{% for message in messages %}{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ message['content'] }}{% endfor %}
T
expect_error "--system with a template without system role" "--system: the chat template refuses a system message: .*System role not supported" \
    chat --template "$TMP/nosys.jinja" --system "Be brief."

# A system prompt longer than the context can never be answered: an error
# naming --system and the counts, not a per-message note.
long=$(python3 -c 'print(" ".join("word%d" % i for i in range(600)))')
printf 'Hello\n' | expect_error "--system longer than the context" "--system is [0-9]* tokens (.*), which leaves no room in the model's context of 512" \
    chat --template chatml --system "$long"

# Commands: blanks around them and case do not matter; an unknown /word
# gets a note and is not sent; // sends a leading slash.
for c in '/exit ' ' /exit' '/EXIT' '	/Quit'; do
    printf '%s\nHello\n' "$c" | chat --template chatml >"$TMP/x" 2>"$TMP/x.err"
    [ $? -eq 0 ] && [ ! -s "$TMP/x" ] && ok || bad "'$c' was not taken as /exit: $(cat "$TMP/x")"
done
printf '/foo\nHello\n' | chat --template chatml >"$TMP/u" 2>"$TMP/u.err"
cmp -s "$TMP/u" "$TMP/a" && ok || bad "/foo was sent to the model"
grep -q "unknown command '/foo' (known: /reset, /exit, /quit" "$TMP/u.err" && ok || bad "no note for /foo: $(cat "$TMP/u.err")"
printf '//foo\n' | chat --template chatml >"$TMP/u2" 2>/dev/null
[ -s "$TMP/u2" ] && ok || bad "//foo was not sent as a message"
printf ' /reset \nHello\n' | chat --template chatml >"$TMP/u3" 2>"$TMP/u3.err"
grep -q "history cleared" "$TMP/u3.err" && ok || bad "' /reset ' not taken as /reset"

# Bad input: one clean error line, non-zero exit.
echo "{% if %}" >"$TMP/bad.jinja"
expect_error "bad template file" "chat template line 1 col 7" chat --template "$TMP/bad.jinja"
expect_error "unknown template" "neither a built-in" chat --template nosuch
expect_error "missing template file" "x.jinja: cannot open" chat --template "$TMP/none/x.jinja"
echo '{"chat_template": ' >"$TMP/broken.json"
expect_error "broken tokenizer_config.json" "broken.json" chat --template "$TMP/broken.json"
expect_error "missing model" "nonexistent" "$LMKIT" chat --model "$TMP/nonexistent.bin" --template chatml
expect_error "no --model" "--model is required" "$LMKIT" chat
expect_error "bad --max-tokens" "max-tokens" chat --max-tokens 0
finish
