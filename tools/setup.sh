#!/bin/sh
# Installs the Debian bookworm packages vlmcaption needs, if any is missing.
# Idempotent and quiet when everything is there.
set -e
PKGS="build-essential pkg-config meson ninja-build libglib2.0-dev libjson-glib-dev \
libdnnl-dev libopenblas-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-x \
gstreamer1.0-plugins-bad \
valgrind python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
clang libclang-rt-14-dev libsoup-3.0-dev libturbojpeg0-dev libpng-dev openssl"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup: installing$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
