#!/bin/sh
# Captions a video file into a subtitle file: SubRip for .srt, WebVTT for .vtt.
#   pipelines/file-to-subtitles.sh INPUT OUTPUT.srt|OUTPUT.vtt [MODEL_DIR]
set -e
[ $# -ge 2 ] || { echo "usage: $0 INPUT OUTPUT.srt|OUTPUT.vtt [MODEL_DIR]" >&2; exit 2; }
case "$2" in
  *.vtt) CAPS=application/x-subtitle-vtt ;;
  *.srt) CAPS=application/x-subtitle ;;
  *) echo "$0: OUTPUT must end in .srt or .vtt" >&2; exit 2 ;;
esac
MODEL=${3:+model=$3}
exec gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert \
  ! vlmcaption name=c $MODEL c. ! queue ! fakesink \
  c.text_src ! $CAPS ! queue ! filesink location="$2"
