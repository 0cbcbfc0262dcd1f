# Helpers for CLI tests: run lmkit, expect success or a clean one-line error.
set -u
LMKIT="${LMKIT_BIN:?LMKIT_BIN must point to the lmkit binary}"
SRC="${LMKIT_SOURCE_DIR:?}"
TMP=$(mktemp -d /tmp/lmkit_cli_XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect_ok DESCRIPTION CMD...: command must exit 0
expect_ok() {
    local what="$1"; shift
    if "$@" >"$TMP/out" 2>"$TMP/err"; then ok; else bad "$what (exit $?): $(tail -3 "$TMP/err")"; fi
}

# expect_error DESCRIPTION NEEDLE CMD...: non-zero exit (not a crash), one
# 'lmkit: error:' line on stderr that contains NEEDLE.
expect_error() {
    local what="$1" needle="$2"; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 0 ]; then bad "$what: exit 0, expected an error"; return; fi
    if [ $rc -ge 128 ]; then bad "$what: crashed (exit $rc)"; return; fi
    if ! grep -q "^lmkit: error: .*$needle" "$TMP/err"; then bad "$what: error lacks '$needle': $(cat "$TMP/err")"; return; fi
    if [ "$(grep -c '^lmkit: error:' "$TMP/err")" -ne 1 ]; then bad "$what: expected exactly one error line"; return; fi
    ok
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
