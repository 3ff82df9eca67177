#!/bin/sh
# The test card with its captions overlaid, on the screen.
#   pipelines/testcard-overlay.sh [PATTERN]        (smpte, ball, snow, red, ...)
# Headless: SINK=fakesink NUM_BUFFERS=90 pipelines/testcard-overlay.sh
# The video queue holds a clip span plus the model's time, so that
# textoverlay can wait for each caption without stalling vlmcaption.
PATTERN=${1:-ball}
SINK=${SINK:-autovideosink}
exec gst-launch-1.0 -e videotestsrc pattern="$PATTERN" is-live=true num-buffers="${NUM_BUFFERS:--1}" \
  ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! vlmcaption name=c \
  ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 \
  ! textoverlay name=o valignment=bottom font-desc="Sans 20" ! videoconvert ! $SINK \
  c.text_src ! queue ! o.text_sink
