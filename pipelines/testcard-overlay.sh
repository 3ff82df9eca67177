#!/bin/sh
# The test card with its captions overlaid, on the screen.
#   pipelines/testcard-overlay.sh [PATTERN]        (smpte, ball, snow, red, ...)
# Headless: SINK=fakesink NUM_BUFFERS=90 pipelines/testcard-overlay.sh
# vlmcaption holds the video until its caption went out (alignment=aligned),
# so textoverlay shows each caption over its own clip with no queue rules.
PATTERN=${1:-ball}
SINK=${SINK:-autovideosink}
exec gst-launch-1.0 -e videotestsrc pattern="$PATTERN" is-live=true num-buffers="${NUM_BUFFERS:--1}" \
  ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! vlmcaption name=c \
  ! textoverlay name=o valignment=bottom font-desc="Sans 20" ! videoconvert ! $SINK \
  c.text_src ! o.text_sink
