#!/bin/sh
# Copies a video file into Matroska with the captions as a subtitle track
# (the video is re-encoded as VP8).
#   pipelines/file-to-mkv.sh INPUT OUTPUT.mkv [MODEL_DIR]
set -e
[ $# -ge 2 ] || { echo "usage: $0 INPUT OUTPUT.mkv [MODEL_DIR]" >&2; exit 2; }
MODEL=${3:+model=$3}
exec gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert \
  ! vlmcaption name=c $MODEL ! queue \
  ! videoconvert ! vp8enc deadline=1 ! matroskamux name=m ! filesink location="$2" \
  c.text_src ! text/x-raw,format=utf8 ! queue ! m.subtitle_%u
