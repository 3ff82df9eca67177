#!/bin/sh
# test_vlm_tokenize.sh TOOL MODEL_DIR — runs vlm-tokenize on a fixture checkpoint:
# encode → decode round-trips, --special adds ids, bad input exits 1 with a message.
set -u
tool=$1 dir=$2 text="a red ball bouncing on a blue background"
fail () { echo "FAIL: $*" >&2; exit 1; }

ids=$("$tool" "$dir" "$text") || fail "encode exited $?"
[ -n "$ids" ] || fail "encode printed nothing"
back=$("$tool" --decode "$dir" $ids) || fail "decode (ids as args) exited $?"
[ "$back" = "$text" ] || fail "decode gave '$back'"
back=$("$tool" --decode "$dir" "$ids") || fail "decode (one string) exited $?"
[ "$back" = "$text" ] || fail "decode of one string gave '$back'"

special=$("$tool" --special "$dir" "$text") || fail "--special exited $?"
[ "$(echo $special | wc -w)" -gt "$(echo $ids | wc -w)" ] || fail "--special added nothing: $special"
kept=$("$tool" --decode --keep-special "$dir" "$special") || fail "--keep-special exited $?"
skipped=$("$tool" --decode "$dir" "$special") || fail "decode of specials exited $?"
[ "$skipped" = "$text" ] || fail "specials not skipped: '$skipped'"
[ "$kept" != "$skipped" ] || fail "--keep-special kept nothing"

err=$("$tool" /nonexistent/model "$text" 2>&1 >/dev/null) && fail "missing model exited 0"
echo "$err" | grep -q "no such file" || fail "missing model message: $err"
"$tool" --decode "$dir" "12 x" >/dev/null 2>&1 && fail "bad id exited 0"
"$tool" "$dir" >/dev/null 2>&1 && fail "missing TEXT exited 0"
echo "ok: vlm-tokenize on $dir"
