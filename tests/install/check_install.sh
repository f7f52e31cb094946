#!/bin/sh
# Install the built library into a temporary root, then build the demo as a
# user would, from C and from C++, with pkg-config alone, and run it in an
# empty directory.
# usage: check_install.sh BUILDDIR SOURCEDIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --destdir "$tmp/root" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/root" -name metaflow.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: metaflow.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
for h in metaflow.h metaflow/common.h metaflow/flow.h metaflow/engine.h metaflow/runtime.h \
         metaflow/sys/datastore.h metaflow/sys/executor.h; do
    [ -n "$(find "$tmp/root" -path "*/include/$h")" ] || { echo "FAIL: $h not installed"; exit 1; }
done
so=$(find "$tmp/root" -name 'libmetaflow.so.0' | head -1)
[ -n "$so" ] || { echo "FAIL: libmetaflow.so.0 not installed"; exit 1; }
cc $(pkg-config --cflags metaflow) -o "$tmp/demo_c" "$src/examples/c/demo.c" $(pkg-config --libs metaflow)
cp "$src/examples/c/demo.c" "$tmp/demo.cpp"
c++ -x c++ $(pkg-config --cflags metaflow) -o "$tmp/demo_cpp" "$tmp/demo.cpp" $(pkg-config --libs metaflow)
mkdir "$tmp/empty"
cd "$tmp/empty"
export LD_LIBRARY_PATH=$(dirname "$so")
unset METAFLOW_DATASTORE_SYSROOT_LOCAL || true
"$tmp/demo_c" >"$tmp/out_c.txt"
"$tmp/demo_cpp" >"$tmp/out_cpp.txt"
grep -q "equal: yes" "$tmp/out_c.txt" || { cat "$tmp/out_c.txt"; echo "FAIL: C demo"; exit 1; }
grep -q "equal: yes" "$tmp/out_cpp.txt" || { cat "$tmp/out_cpp.txt"; echo "FAIL: C++ demo"; exit 1; }
[ "$(grep -c 'succeeded' "$tmp/out_cpp.txt")" -eq 2 ] || { cat "$tmp/out_cpp.txt"; echo "FAIL: runs"; exit 1; }
[ -d "$tmp/empty/.metaflow/data" ] || { echo "FAIL: no ./.metaflow datastore"; exit 1; }
echo "install: headers, library, metaflow.pc; C and C++ demos built with pkg-config and ran"
echo "1 passed, 0 failed"
