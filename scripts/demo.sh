#!/bin/sh
# Build libmetaflow and run the demo on the embedded default: a filesystem
# datastore in ./.metaflow with its LMDB index.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
./build/examples/demo
