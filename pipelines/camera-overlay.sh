#!/bin/sh
# A V4L2 camera with live captions overlaid.
#   pipelines/camera-overlay.sh [DEVICE] [MODEL_DIR]
# Without MODEL_DIR the embedded test-card model runs (it only knows
# videotestsrc's patterns); point it at a video captioner such as a
# microsoft/git-base-vatex checkout for real scenes.
DEVICE=${1:-/dev/video0}
MODEL=${2:+model=$2}
exec gst-launch-1.0 -e v4l2src device="$DEVICE" ! videoconvert ! video/x-raw,format=I420 \
  ! vlmcaption name=c $MODEL latency=2000000000 \
  ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=6000000000 \
  ! textoverlay name=o valignment=bottom ! videoconvert ! autovideosink \
  c.text_src ! queue ! o.text_sink
