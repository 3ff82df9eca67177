#!/bin/sh
# Installs what is missing, then configures (once) and builds into build/.
set -e
cd "$(dirname "$0")/.."
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
