#!/bin/sh
# Sets up, builds, and captions GStreamer's test card with the embedded
# test-card model, printing each caption as it is posted on the bus.
set -e
cd "$(dirname "$0")/.."
tools/build.sh
export GST_PLUGIN_PATH="$PWD/build/gst"
export GST_REGISTRY="$PWD/build/registry.bin"
for pattern in smpte ball circular; do
  gst-launch-1.0 -m videotestsrc pattern=$pattern num-buffers=60 \
      ! video/x-raw,width=320,height=240,framerate=30/1 \
      ! vlmcaption name=cap ! fakesink cap.text_src ! fakesink 2>&1 \
    | sed -n 's/.*element "cap".*text=(string)"\{0,1\}\([^",;]*\).*/'"$pattern"': \1/p'
done
