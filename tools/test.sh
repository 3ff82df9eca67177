#!/bin/sh
# Sets up, builds and runs every test; ends with "N passed, N failed".
# The weights, tokenizer and model-folder loader tests run a second time under valgrind,
# the element's harness, soak and batcher tests under ASan/UBSan/LSan (build-asan/).
set -e
cd "$(dirname "$0")/.."
tools/build.sh
rc=0
meson test -C build --print-errorlogs --num-processes 2 || rc=1
cp build/meson-logs/testlog.json build/testlog-main.json
meson test -C build --setup=valgrind --print-errorlogs test_safetensors test_tokenizer test_loader || rc=1
cp build/meson-logs/testlog-valgrind.json build/testlog-valgrind.json
# The element's harness, soak and batcher tests again under ASan/UBSan + LeakSanitizer.
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-asan gst/gstvlmcaption tests/test_element tests/test_soak tests/test_batch >/dev/null
meson test -C build-asan --no-rebuild --setup=sanitize --print-errorlogs element soak test_batch || rc=1
cp build-asan/meson-logs/testlog-sanitize.json build/testlog-sanitize.json
python3 tools/test-summary.py build/testlog-main.json build/testlog-valgrind.json build/testlog-sanitize.json || rc=1
exit $rc
