#!/bin/sh
# Build and run the whole test suite: the gcc build, then the same suite
# under clang ASan+UBSan (leaks included), then every fuzz corpus replayed
# through the libFuzzer binaries. Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh

echo "== build (gcc) and test"
[ -f build/build.ninja ] || meson setup build
meson configure build -Dpython=true  # the install test then checks the Python package
ninja -C build
# -v prints each suite's own closing lines (cmocka's PASSED/FAILED counts).
meson test -C build --print-errorlogs -v --num-processes 2

echo "== build (clang, ASan+UBSan) and test"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
[ -f build-asan/build.ninja ] || CC=clang CXX=clang++ meson setup build-asan \
    -Db_sanitize=address,undefined -Db_lundef=false -Dfuzzing=libfuzzer \
    -Dc_args=-fno-sanitize-recover=undefined -Dcpp_args=-fno-sanitize-recover=undefined
ninja -C build-asan
meson test -C build-asan --print-errorlogs --num-processes 2

echo "== fuzz corpora through libFuzzer"
status=0
for f in build-asan/fuzz/*_fuzzer; do
    t=$(basename "$f" _fuzzer)
    if "$f" -runs=0 "fuzz/corpora/$t" >"build-asan/fuzz/$t.log" 2>&1; then
        echo "ok: $t ($(ls "fuzz/corpora/$t" | wc -l) inputs)"
    else
        echo "FAIL: $t"; tail -30 "build-asan/fuzz/$t.log"; status=1
    fi
done
[ $status -eq 0 ] || exit 1
echo "all test suites passed"
