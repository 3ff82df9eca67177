#!/bin/sh
# Sets up, builds, and captions GStreamer's test card with the embedded
# test-card model, printing the captions as SubRip subtitles.
set -e
cd "$(dirname "$0")/.."
tools/build.sh
export GST_PLUGIN_PATH="$PWD/build/gst"
export GST_REGISTRY="$PWD/build/registry.bin"
for pattern in smpte ball circular; do
  echo "== videotestsrc pattern=$pattern"
  gst-launch-1.0 -q videotestsrc pattern=$pattern num-buffers=60 \
      ! video/x-raw,width=320,height=240,framerate=30/1 \
      ! vlmcaption name=c  c. ! queue ! fakesink \
      c.text_src ! application/x-subtitle ! queue ! fdsink fd=1
done
