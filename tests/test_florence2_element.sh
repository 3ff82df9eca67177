#!/bin/sh
# The element captions with a Florence-2-base-sized random checkpoint
# (vlm-bench's florence-2-base preset writes it: DaViT + BART-base, bf16,
# a byte-level BPE tokenizer whose word ids decode as "w<id>"): every clip
# gets a caption message of max-new-tokens tokens, prompt <CAPTION> and a
# free-text prompt, and SRT on text_src. Usage: test_florence2_element.sh VLM_BENCH
set -eu
BENCH=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

"$BENCH" --preset florence-2-base --quick --skip-limits --out "$TMP/model" -n 4 > "$TMP/bench.log" 2>&1 \
  || { cat "$TMP/bench.log" >&2; fail "vlm-bench could not write or run the checkpoint"; }
for PROMPT in "<CAPTION>" "<MORE_DETAILED_CAPTION>" "What is in the picture?"; do
  timeout 300 gst-launch-1.0 -m videotestsrc num-buffers=20 \
    ! video/x-raw,width=320,height=240,framerate=10/1 \
    ! vlmcaption name=c model="$TMP/model" prompt="$PROMPT" max-new-tokens=4 ! fakesink \
    c.text_src ! text/x-raw,format=utf8 ! fakesink > "$TMP/run.log" 2>&1 \
    || { cat "$TMP/run.log" >&2; fail "pipeline with prompt $PROMPT"; }
  N=$(grep -c 'vlmcaption, text=(string)"\?w[0-9]*w[0-9]*w[0-9]*w[0-9]*"\?, .*n-tokens=(int)4' "$TMP/run.log" || true)
  echo "# prompt $PROMPT: $N captions"
  grep -m1 'vlmcaption, text=' "$TMP/run.log" | sed 's/^/# /'
  [ "$N" -eq 2 ] || { cat "$TMP/run.log" >&2; fail "prompt $PROMPT: $N captions of 4 words, expected 2 clips"; }
done
# a task token inside other text is refused, as Florence2Processor does: a warning per clip, no caption
timeout 300 gst-launch-1.0 -m videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240,framerate=10/1 \
  ! vlmcaption model="$TMP/model" prompt="<CAPTION> of a dog" max-new-tokens=4 ! fakesink > "$TMP/bad.log" 2>&1 || true
grep -q "must be the whole prompt" "$TMP/bad.log" || { cat "$TMP/bad.log" >&2; fail "<CAPTION> inside text not refused"; }
echo "ok"
