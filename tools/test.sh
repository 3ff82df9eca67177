#!/bin/sh
# Sets up, builds and runs every test; ends with "N passed, N failed".
# The weights, tokenizer and model-folder loader tests run a second time under valgrind.
set -e
cd "$(dirname "$0")/.."
tools/build.sh
rc=0
meson test -C build --print-errorlogs --num-processes 2 || rc=1
cp build/meson-logs/testlog.json build/testlog-main.json
meson test -C build --setup=valgrind --print-errorlogs test_safetensors test_tokenizer test_loader || rc=1
cp build/meson-logs/testlog.json build/testlog-valgrind.json
python3 tools/test-summary.py build/testlog-main.json build/testlog-valgrind.json || rc=1
exit $rc
