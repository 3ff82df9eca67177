#!/bin/sh
# Four live cameras (test sources) captioned by four vlmcaption elements
# sharing one model: one model-instance-id, the shared scheduler by default.
#   pipelines/four-cameras.sh                   the test card, 4 streams, 10 s
#   STREAMS=4 DURATION=20 SCHEDULER=private MODEL=/path/to/git-base-vatex \
#     pipelines/four-cameras.sh                 the baseline: private inference
# (SCHEDULER=none: no model-instance-id, each element loads its own model.)
# Headless (fakesink, synced to the clock as a display would be). Prints per
# stream the captions on time, late and dropped (each clip is one of them),
# the mean inference time, the first caption; then the shared scheduler's
# counters from the element's log (mean captions per decode step). PROPS adds
# properties to every element (e.g. PROPS="latency=2000000000 max-new-tokens=40").
set -eu
N=${STREAMS:-4}
DURATION=${DURATION:-10}
SCHEDULER=${SCHEDULER:-shared}
PROPS="$( [ "$SCHEDULER" = none ] || echo model-instance-id=cameras scheduler=$SCHEDULER) ${MODEL:+model=$MODEL} ${PROPS:-}"
# a queue per branch (two sinks on one element, as after a tee), unbounded:
# the sinks wait out the latency the element reports
QUEUE="queue max-size-buffers=0 max-size-bytes=0 max-size-time=0"
PATTERNS="smpte ball red checkers-8 gamut pinwheel zone-plate blue"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT; [ -z "${KEEP_LOGS:-}" ] || trap - EXIT

DESC="" i=0
while [ "$i" -lt "$N" ]; do
  PATTERN=$(echo $PATTERNS | cut -d' ' -f$((i % 8 + 1)))
  DESC="$DESC videotestsrc is-live=true pattern=$PATTERN num-buffers=$((DURATION * 30))
    ! video/x-raw,format=I420,width=320,height=240,framerate=30/1
    ! vlmcaption name=cam$i $PROPS ! $QUEUE ! fakesink sync=true
    cam$i.text_src ! $QUEUE ! fakesink sync=true"
  i=$((i + 1))
done

# -m prints every bus message: the captions, late and dropped ones among them
GST_DEBUG=${GST_DEBUG:-vlmcaption:4} GST_DEBUG_NO_COLOR=1 \
  gst-launch-1.0 -m -e $DESC > "$TMP/bus.log" 2> "$TMP/debug.log" \
  || { tail -n 20 "$TMP/bus.log" "$TMP/debug.log" >&2; exit 1; }

echo "$N streams, $DURATION s each, scheduler=$SCHEDULER${MODEL:+, model $MODEL}"
awk -v n="$N" '
  /from element "cam[0-9]+"/ {
    match ($0, /"cam[0-9]+"/); cam = substr ($0, RSTART + 4, RLENGTH - 5)
    if ($0 ~ /\(element\): vlmcaption,/) {
      captions[cam]++
      if (match ($0, /inference-ms=\(double\)[0-9.e+-]+/))
        ms[cam] += substr ($0, RSTART + 21, RLENGTH - 21)
      if (!(cam in first) && match ($0, /text=\(string\)("[^"]*"|[^,]*)/)) {
        t = substr ($0, RSTART + 13, RLENGTH - 13); gsub (/^"|"$/, "", t); gsub (/\\ /, " ", t)
        first[cam] = t
      }
    } else if ($0 ~ /\(element\): vlmcaption-late,/) late[cam]++
    else if ($0 ~ /\(element\): vlmcaption-dropped,/) dropped[cam]++
  }
  END {
    for (i = 0; i < n; i++) {
      c = captions[i] + 0; l = late[i] + 0
      printf "cam%d: %d on time, %d late, %d dropped, inference %.0f ms mean: \"%s\"\n", i, c - l, l,
        dropped[i] + 0, c ? ms[i] / c : 0, first[i]
    }
  }' "$TMP/bus.log"
grep -o "shared scheduler .*" "$TMP/debug.log" | tail -n 1 || true
