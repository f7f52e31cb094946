#!/bin/sh
# Build a release tree and run the benchmarks (figures are printed, not
# asserted). Usage: scripts/bench.sh [bench_store|bench_index|bench_runtime ...]
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -f build-rel/build.ninja ] || meson setup build-rel --buildtype=release -Dtests=false
ninja -C build-rel
benches=${*:-"bench_store bench_index bench_runtime"}
for b in $benches; do
    echo "== $b"
    ./build-rel/bench/$b
done
