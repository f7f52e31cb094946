#!/bin/sh
# Build a release tree and run the benchmarks (figures are printed, not
# asserted). Usage: scripts/bench.sh [bench_store|bench_index|bench_runtime|bench_python ...]
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -f build-rel/build.ninja ] || meson setup build-rel --buildtype=release -Dtests=false
ninja -C build-rel
benches=${*:-"bench_store bench_index bench_runtime bench_python"}
for b in $benches; do
    echo "== $b"
    if [ "$b" = bench_python ]; then
        LIBMETAFLOW_PATH=$PWD/build-rel/lib/libmetaflow.so.0 bash bench/bench_python.sh
    else
        ./build-rel/bench/$b
    fi
done
