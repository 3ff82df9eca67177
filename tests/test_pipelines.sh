#!/bin/sh
# Runs the headless scripts of pipelines/ on the test card and checks what
# they wrote. Needs the system's base, good and bad plugins (videotestsrc,
# textoverlay, matroskamux, vp8enc, decodebin, qtmux, ccextractor,
# ccconverter) and the plugin in
# GST_PLUGIN_PATH. Usage: test_pipelines.sh PROJECT_ROOT PYTHON (one with
# PyGObject) CC608DUMP (tests/cc608dump.c)
set -eu
ROOT=$1
PYTHON=$2
CC608DUMP=$3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }
expect () { grep -q "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }

gst-launch-1.0 -q videotestsrc pattern=smpte num-buffers=90 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! jpegenc ! matroskamux \
  ! filesink location="$TMP/in.mkv"

echo "# the README's first pipeline, headless (fakesink, 90 frames)"
CMD=$(sed -n '/GST_PLUGIN_PATH=build\/gst gst-launch-1.0/,/[^\\]$/p' "$ROOT/README.md" \
  | sed 's/^ *GST_PLUGIN_PATH=build\/gst //; s/\\$//' | tr -d '\n' \
  | sed 's/autovideosink/fakesink/; s/videotestsrc/videotestsrc num-buffers=90/')
case "$CMD" in *vlmcaption*textoverlay*) ;; *) fail "no pipeline found in README.md: $CMD" ;; esac
timeout 120 sh -c "$CMD" > "$TMP/readme.log" 2>&1 || { cat "$TMP/readme.log" >&2; fail "README pipeline: $CMD"; }
# the issue's hang: clips every 3 s and a default queue before textoverlay
timeout 120 gst-launch-1.0 -q videotestsrc pattern=smpte num-buffers=150 \
  ! video/x-raw,width=320,height=240 ! vlmcaption name=c caption-interval=3000000000 \
  ! videoconvert ! queue ! textoverlay name=o ! fakesink c.text_src ! o.text_sink \
  || fail "caption-interval=3 s through textoverlay"

echo "# testcard-overlay.sh"
SINK=fakesink NUM_BUFFERS=60 "$ROOT/pipelines/testcard-overlay.sh" smpte > "$TMP/overlay.log" 2>&1 \
  || { cat "$TMP/overlay.log" >&2; fail "testcard-overlay.sh"; }

echo "# file-to-subtitles.sh .srt"
"$ROOT/pipelines/file-to-subtitles.sh" "$TMP/in.mkv" "$TMP/out.srt"
cat "$TMP/out.srt"
expect "$TMP/out.srt" "^1$"
expect "$TMP/out.srt" "^00:00:00,000 --> 00:00:01,000$"
expect "$TMP/out.srt" "^television color bars$"
expect "$TMP/out.srt" "^00:00:02,000 --> 00:00:03,000$"

echo "# file-to-subtitles.sh .vtt"
"$ROOT/pipelines/file-to-subtitles.sh" "$TMP/in.mkv" "$TMP/out.vtt"
[ "$(head -n 1 "$TMP/out.vtt")" = "WEBVTT" ] || fail "out.vtt has no WEBVTT header"
expect "$TMP/out.vtt" "^00:00:01.000 --> 00:00:02.000$"
expect "$TMP/out.vtt" "^television color bars$"
# subparse reads back what we wrote
gst-launch-1.0 -q filesrc location="$TMP/out.srt" ! subparse ! text/x-raw \
  ! filesink location="$TMP/parsed.txt"
expect "$TMP/parsed.txt" "television color bars"

echo "# file-to-mkv.sh"
"$ROOT/pipelines/file-to-mkv.sh" "$TMP/in.mkv" "$TMP/out.mkv"
gst-launch-1.0 -q filesrc location="$TMP/out.mkv" ! matroskademux ! text/x-raw \
  ! filesink location="$TMP/track.txt"
expect "$TMP/track.txt" "television color bars"

echo "# file-to-mov-cc.sh: a CEA-608 track, read back with qtdemux"
"$ROOT/pipelines/file-to-mov-cc.sh" "$TMP/in.mkv" "$TMP/out.mov"
gst-launch-1.0 -q filesrc location="$TMP/out.mov" ! qtdemux name=d d.subtitle_0 ! ccconverter \
  ! closedcaption/x-cea-608,format=raw ! filesink location="$TMP/cc.raw"
"$CC608DUMP" "$TMP/cc.raw" > "$TMP/cc.txt" || { cat "$TMP/cc.txt" >&2; fail "cc608dump"; }
cat "$TMP/cc.txt"
[ "$(grep -c '^television color bars@' "$TMP/cc.txt")" = 3 ] || fail "out.mov lacks 3 captions"

echo "# read-meta.py"
"$PYTHON" "$ROOT/pipelines/read-meta.py" smpte 90 > "$TMP/meta.log"
cat "$TMP/meta.log"
expect "$TMP/meta.log" "^meta [0-9.]*s: television color bars$"
expect "$TMP/meta.log" "^message [0-9.]*s: television color bars"
expect "$TMP/meta.log" "^signal [0-9.]*s: television color bars$"
echo "all pipelines OK"
