#!/usr/bin/env bash
# Every source file that asks for software prefetch must have prefetch
# instructions in its object in liblmkit.a. GCC 12 deleted every call of
# kv_attention_avx512.c's out-of-line prefetch helper (its IPA mod/ref
# analysis saw no side effects), and nothing noticed for months: the
# kernel still gave the right answers, only slower.
# Usage: check_prefetch.sh SOURCE_DIR LIBLMKIT_A
set -euo pipefail
src=$1 lib=$2
command -v objdump >/dev/null || { echo "check_prefetch: objdump not found (binutils)"; exit 1; }
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
objdump -d "$lib" >"$dump"
checked=0 failed=0
while IFS= read -r file; do
    obj="$(basename "$file").o"
    n=$(awk -v obj="$obj" '/file format/ { cur = ($1 == obj ":") } cur && /\tprefetch/ { n++ } END { print n + 0 }' "$dump")
    checked=$((checked + 1))
    if [ "$n" -eq 0 ]; then
        echo "FAIL: $file asks for prefetch, but $obj in $lib has no prefetch instruction"
        failed=1
    else
        echo "ok: $obj has $n prefetch instructions"
    fi
done < <(grep -rlE '_mm_prefetch|__builtin_prefetch' "$src/src" --include='*.c' --include='*.h' | grep '\.c$')
[ "$checked" -gt 0 ] || { echo "check_prefetch: no source file uses prefetch (wrong SOURCE_DIR?)"; exit 1; }
exit $failed
