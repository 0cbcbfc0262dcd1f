"""Golden chat-template renderings from transformers' apply_chat_template.

Writes tests/golden/chat_templates/<family>.json: the template text, the
bos/eos strings, and for each conversation x add_generation_prompt either
the exact rendered string ("expected") or the raise_exception message
("error"). tests/unit/test_chat_template.c renders the same inputs with
lmkit and demands byte equality. jinja_features.json does the same for
small synthetic templates that exercise each supported Jinja feature.

Run from the repo root: python3 ref/chat_templates_golden.py
Needs: transformers, tokenizers, jinja2 (no network: the tokenizer is an
in-memory stub, since tokenize=False only needs the template).
"""
import json
import os

import jinja2
import tokenizers
import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

OUT = "tests/golden/chat_templates"

# Templates as the JSON-decoded `chat_template` strings of each repo's
# tokenizer_config.json (provenance in tests/golden/chat_templates/README.md).
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}"
    "{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] "
    "+ '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + "
    "content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL_V01 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == "
    "'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
    "eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
MISTRAL_V02 = (
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = "
    "messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in "
    "loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the "
    "optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if "
    "message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + "
    "system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + "
    "message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + "
    "message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, "
    "with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"
)
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a "
    "helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
    "'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

FAMILIES = [
    # family, source repo, builtin name (or None), template, bos, eos
    ("llama2", "meta-llama/Llama-2-7b-chat-hf", "llama2", LLAMA2, "<s>", "</s>"),
    ("llama3", "meta-llama/Meta-Llama-3-8B-Instruct", "llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    ("mistral_v01", "mistralai/Mistral-7B-Instruct-v0.1", None, MISTRAL_V01, "<s>", "</s>"),
    ("mistral_v02", "mistralai/Mistral-7B-Instruct-v0.2", "mistral", MISTRAL_V02, "<s>", "</s>"),
    ("qwen2", "Qwen/Qwen2-0.5B-Instruct", None, QWEN2, "", "<|im_end|>"),
    ("chatml", "ChatML (the Qwen2 template without its default system turn)", "chatml", CHATML, "", "<|im_end|>"),
    ("zephyr", "HuggingFaceH4/zephyr-7b-beta (same text in TinyLlama-1.1B-Chat-v1.0)", "zephyr", ZEPHYR, "<s>", "</s>"),
]

SYS = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYS, {"role": "user", "content": "What is the capital of France?"}],
    "multi_turn": [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"},
    ],
    "system_multi_turn": [
        SYS,
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    "unicode_whitespace": [
        {"role": "user", "content": "  Grüße, 世界! 🌍 ¿Qué tal?\n"},
        {"role": "assistant", "content": "\u3000Très bien — merci.\t "},
        {"role": "user", "content": "こんにちは\n\nline two\\n with a backslash and 'quotes' \"too\""},
    ],
    "empty_content": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": " "},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"},
    ],
    "bad_alternation": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
    "system_only": [SYS],
}

# Small synthetic templates: each exercises Jinja features a chat template
# may use, rendered by the same Jinja environment transformers builds.
FEATURES = {
    "loop_vars": "{% for m in messages %}{{ loop.index0 }}/{{ loop.index }}/{{ loop.length }}/{{ loop.revindex }}"
                 "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %};{% endfor %}",
    "namespace": "{% set ns = namespace(sys='', n=0) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.sys = m.content %}"
                 "{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}[{{ ns.sys }}|{{ ns.n }}]",
    "scope": "{% set x = 'outer' %}{% for m in messages %}{% set x = m.role %}{% endfor %}{{ x }}",
    "filters": "{% for m in messages %}{{ m.content | trim | upper }}|{{ m['content'] | length }}|{{ m.role | title }}|"
               "{{ m.missing | default('dflt') }}|{{ m.content | lower }}\n{% endfor %}",
    "methods": "{% for m in messages %}{{ m.content.strip() }}#{{ m.content.startswith('  G') }}#{{ m.content.endswith('?') }}#"
               "{{ m.role.upper() }}#{{ m.content.lstrip().title() }}#{{ m.content.rstrip('\n ') }}\n{% endfor %}",
    "whitespace": "<{%- for m in messages -%}\n  [{{- m.role -}}]\n  {% if loop.last %}\n    last\n  {% endif %}\n"
                  "{%+ if true %}plus{% endif %}\n{%- endfor -%}>\n  {# comment #}\nend\n",
    "lstrip_trim": "a\n    {% if true %}\n    b\n    {% endif %}\n  {{ 'c' }}\n{% for m in messages %}  {% set y = 1 %}x{% endfor %}\n",
    "operators": "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1 + 2 * 3 }} {{ 'a' ~ 1 ~ none ~ true }} "
                 "{{ 'ab' in 'cabd' }} {{ 'x' not in ['x'] }} {{ 3 > 2 and not 2 > 3 }} {{ 0 or 'fallback' }} {{ 'y' if false else 'n' }} "
                 "{{ [1, 2] + [3] }} {{ {'k': 'v'}['k'] }} {{ messages | length > 1 }}",
    "slicing": "{{ messages[1:] | length }} {{ messages[-1].role }} {{ messages[0]['content'][2:6] }} {{ 'héllo'[::-1] }} {{ 'abcdef'[1:5:2] }}",
    "tests": "{% for m in messages %}{{ m.content is string }}{{ m.nope is defined }}{{ m.nope is undefined }}{{ none is none }}"
             "{{ loop.index is even }}{{ m is mapping }}{{ m.content is not none }};{% endfor %}",
    "tojson": "{{ messages | tojson }}\n{{ messages[0] | tojson(indent=2) }}\n{{ 'é\"\\\\\n' | tojson }} {{ [1, 2.5, true, none] | tojson }}",
    "loop_else_filter": "{% for m in messages if m.role == 'user' %}{{ m.content }},{% else %}none{% endfor %}"
                        "{% for m in [] %}x{% else %}empty{% endfor %}",
    "break_continue": "{% for m in messages %}{% if loop.index0 == 0 %}{% continue %}{% endif %}{{ m.role }}"
                      "{% if loop.index == 2 %}{% break %}{% endif %}{% endfor %}",
    "set_block": "{% set greeting %}Hi {{ messages[0].role }}!{% endset %}{{ greeting | upper }}",
    "dict_methods": "{% for m in messages %}{{ m.get('role') }}{{ m.get('x', 'd') }}{% for k in m %}<{{ k }}>{% endfor %}"
                    "{% for kv in m | items %}{{ kv[0] }}={{ kv[1] | length }} {% endfor %}{% endfor %}",
    "print_values": "{{ messages[0] }} {{ [1, 'a', none] }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ true }} {{ undefined_thing }}|",
    "string_misc": "{{ 'a,b,,c'.split(',') }} {{ '  x  y '.split() }} {{ 'aXbX'.replace('X', '-') }} {{ ['p', 'q'] | join('+') }} "
                   "{{ 'abc' | first }}{{ 'abc' | last }} {{ ('α β' ~ '') | upper }} {{ 'ǆemal' | title }} "
                   "{{ \"it's a-b (c)d.e\" | title }} {{ \"it's a-b (c)d.e\".title() }} {{ 'straße' | upper }}",
}
FEATURE_MESSAGES = [
    {"role": "system", "content": "  Grüße, sys?\n"},
    {"role": "user", "content": "hello wörld"},
    {"role": "assistant", "content": "ok"},
]


def make_tokenizer(bos, eos):
    vocab = {"<unk>": 0}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")), unk_token="<unk>")
    return tok


def render(tok, template, messages, add_generation_prompt, bos, eos):
    try:
        text = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                       add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)
        return {"expected": text}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"transformers": transformers.__version__, "jinja2": jinja2.__version__, "tokenizers": tokenizers.__version__}
    for family, repo, builtin, template, bos, eos in FAMILIES:
        tok = make_tokenizer(bos, eos)
        cases = []
        for name, msgs in CONVERSATIONS.items():
            for agp in (False, True):
                case = {"name": f"{name}{'+gen' if agp else ''}", "messages": msgs, "add_generation_prompt": agp}
                case.update(render(tok, template, msgs, agp, bos, eos))
                cases.append(case)
        doc = {"family": family, "source": repo, "builtin": builtin, "template": template, "bos_token": bos, "eos_token": eos,
               "versions": versions, "cases": cases}
        with open(f"{OUT}/{family}.json", "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
    tok = make_tokenizer("<s>", "</s>")
    cases = []
    for name, template in FEATURES.items():
        case = {"name": name, "template": template, "messages": FEATURE_MESSAGES, "add_generation_prompt": False}
        case.update(render(tok, template, FEATURE_MESSAGES, False, "<s>", "</s>"))
        cases.append(case)
    with open(f"{OUT}/jinja_features.json", "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "versions": versions, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
