#!/bin/sh
# Builds the libFuzzer harnesses of tests/fuzz with clang (AddressSanitizer
# + UndefinedBehaviorSanitizer, criticals fatal) against the engine sources
# into build-fuzz/, seeds their corpora from ../shared/fixtures, and runs
# each for SECONDS (default 60). Prints executions per harness; a crash
# leaves its input in build-fuzz/artifacts/HARNESS/ and makes the exit
# status 1.
#   tools/fuzz.sh [SECONDS] [HARNESS...]    e.g. tools/fuzz.sh 60 tokenizer
# Needs clang and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev).
set -e
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-"safetensors index torchbin tokenizer config image genconfig chat"}
command -v clang >/dev/null || { echo "fuzz: clang is missing (apt-get install clang libclang-rt-14-dev)"; exit 1; }

out=build-fuzz
mkdir -p $out/obj $out/corpus $out/artifacts
cflags="-g -O1 -fno-omit-frame-pointer -fopenmp -fsanitize=address,undefined -fno-sanitize-recover=all
  -Wno-unused-command-line-argument -DG_LOG_DOMAIN=\"vlm\" -Iinclude -Iengine -Itests/fuzz
  $(pkg-config --cflags glib-2.0 json-glib-1.0 openblas)"
libs="$(pkg-config --libs glib-2.0 json-glib-1.0 openblas) -ldnnl -lm"

# The engine, instrumented; rebuilt when any engine source or header is newer.
stamp=$out/obj/.stamp
if [ ! -f $stamp ] || [ -n "$(find engine include tests/fuzz/fuzz.c tests/fuzz/fuzz.h -newer $stamp -type f)" ]; then
  echo "fuzz: building the engine with clang"
  rm -f $out/obj/*.o
  for src in engine/*.c tests/fuzz/fuzz.c; do
    [ "$src" = engine/ops_kernels.c ] && continue
    clang $cflags -fsanitize=fuzzer-no-link -c "$src" -o "$out/obj/$(basename "$src" .c).o"
  done
  # the kernels once per CPU tier, as engine/meson.build builds them
  for t in "avx512vnni 16 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma" \
           "avx512 16 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma" "avx2 8 -mavx2 -mfma" "generic 4"; do
    set -- $t
    name=$1 vec=$2
    shift 2
    clang $cflags "$@" -DVLM_VEC=$vec -DVLM_KERNELS_NAME=vlm_kernels_$name -fsanitize=fuzzer-no-link \
      -c engine/ops_kernels.c -o "$out/obj/ops_kernels_$name.o"
  done
  touch $stamp
fi

rm -rf $out/seeds
python3 tests/fuzz/seeds.py "$PWD" $out/seeds
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 VLM_PROJECT_ROOT="$PWD"
export UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
rc=0
for h in $harnesses; do
  # fuzz_chat also reads requests as vlm-server does
  extra=""
  [ "$h" = chat ] && extra="-Itools tools/serve_request.c tools/serve_image.c $(pkg-config --cflags --libs libturbojpeg libpng)"
  clang $cflags -fsanitize=fuzzer "tests/fuzz/fuzz_$h.c" $extra $out/obj/*.o $libs -o "$out/fuzz_$h"
  mkdir -p "$out/corpus/$h" "$out/artifacts/$h"
  # the largest seed bounds an input (pytorch_model.bin is ~300 KB)
  max_len=$(find "$out/seeds/$h" -type f -printf '%s\n' | sort -n | tail -1)
  [ "${max_len:-0}" -lt 4096 ] && max_len=4096
  log=$out/fuzz_$h.log
  if ! "$out/fuzz_$h" -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 \
       -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$out/artifacts/$h/" \
       "$out/corpus/$h" "$out/seeds/$h" >"$log" 2>&1; then
    rc=1
    echo "fuzz_$h: FAILED, see $log and $out/artifacts/$h/"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz_$h: ${execs:-?} executions in $secs s, corpus $(ls "$out/corpus/$h" | wc -l) inputs"
done
exit $rc
