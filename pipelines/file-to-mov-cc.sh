#!/bin/sh
# Copies a video file into QuickTime with the captions as a CEA-608 closed
# caption track (c608), as broadcast and editing tools read them; the video
# is re-encoded as Motion JPEG (gst-plugins-good).
#   pipelines/file-to-mov-cc.sh INPUT OUTPUT.mov [pop-on|roll-up] [MODEL_DIR]
set -e
[ $# -ge 2 ] || { echo "usage: $0 INPUT OUTPUT.mov [pop-on|roll-up] [MODEL_DIR]" >&2; exit 2; }
MODE=${3:-pop-on}
MODEL=${4:+model=$4}
exec gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert \
  ! vlmcaption closed-captions="$MODE" $MODEL ! ccextractor name=e \
  e.src ! queue ! videoconvert ! jpegenc ! qtmux name=m ! filesink location="$2" \
  e.caption ! queue ! ccconverter ! closedcaption/x-cea-608,format=s334-1a ! m.caption_0
