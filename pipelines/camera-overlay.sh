#!/bin/sh
# A V4L2 camera with live captions overlaid.
#   pipelines/camera-overlay.sh [DEVICE] [MODEL_DIR]
# Without MODEL_DIR the embedded test-card model runs (it only knows
# videotestsrc's patterns); point it at a video captioner such as a
# microsoft/git-base-vatex checkout for real scenes. vlmcaption holds the
# video for its latency (clip + budget, 3 s here) so that each caption shows
# over its own clip; videoconvert's I420 copies are what it holds, not
# v4l2src's few buffers (a camera that sends I420 itself: add
# alignment=immediate and a queue before textoverlay instead).
DEVICE=${1:-/dev/video0}
MODEL=${2:+model=$2}
exec gst-launch-1.0 -e v4l2src device="$DEVICE" ! videoconvert ! video/x-raw,format=I420 \
  ! vlmcaption name=c $MODEL latency=2000000000 \
  ! textoverlay name=o valignment=bottom ! videoconvert ! ${SINK:-autovideosink} \
  c.text_src ! o.text_sink
