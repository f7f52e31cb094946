#!/bin/sh
# Install the built library into a temporary root, then build the demo as a
# user would, from C and from C++, with pkg-config alone, and run it in an
# empty directory. Then build every example the same way (examples/c/*.c
# with cc, examples/cpp/*.cpp with c++) and run each in an empty directory
# of its own, checking its output against tests/examples/<name>.expect.
# usage: check_install.sh BUILDDIR SOURCEDIR
set -eu
build=$1
src=$(cd "$2" && pwd)  # absolute: the checks below run from other directories
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
mfctl=$(find "$tmp/root" -path '*/bin/mfctl' | head -1)
[ -n "$mfctl" ] || { echo "FAIL: mfctl not installed"; exit 1; }
LD_LIBRARY_PATH=$(dirname "$so") "$mfctl" --version | grep -q "^mfctl .*libmetaflow" || {
    LD_LIBRARY_PATH=$(dirname "$so") "$mfctl" --version; echo "FAIL: mfctl --version"; exit 1; }
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

# Exactly what examples/README.md tells users to type.
runner="$src/tests/examples/run_in_empty_dir.sh"
n=0
for f in "$src"/examples/c/*.c "$src"/examples/cpp/*.cpp; do
    [ -f "$f" ] || continue
    case $f in
        *.c) name=$(basename "$f" .c); compiler=cc ;;
        *) name=$(basename "$f" .cpp); compiler=c++ ;;
    esac
    [ -f "$src/tests/examples/$name.expect" ] || {
        echo "FAIL: example $name has no tests/examples/$name.expect"; exit 1; }
    mkdir "$tmp/ex_$name"
    (cd "$tmp/ex_$name" &&
        $compiler $(pkg-config --cflags metaflow) "$f" $(pkg-config --libs metaflow)) ||
        { echo "FAIL: example $name does not build with $compiler and pkg-config"; exit 1; }
    sh "$runner" "$tmp/ex_$name/a.out" "$src/tests/examples/$name.expect" \
        >"$tmp/ex_$name.log" 2>&1 || { cat "$tmp/ex_$name.log"; echo "FAIL: example $name"; exit 1; }
    n=$((n + 1))
done
[ "$n" -ge 6 ] || { echo "FAIL: only $n examples found"; exit 1; }

# The Python package, when the build installs it (-Dpython=true): it must
# find the installed library by itself.
pkgdir=$(find "$tmp/root" -path '*/metaflow/__init__.py' -exec dirname {} \; | head -1)
py=/usr/bin/python3
if [ -n "$pkgdir" ] && [ -x "$py" ]; then
    mkdir "$tmp/py"
    cat >"$tmp/py/hello.py" <<'PYEOF'
from metaflow import FlowSpec, step


class InstalledFlow(FlowSpec):
    @step
    def start(self):
        self.x = 41
        self.next(self.end)

    @step
    def end(self):
        self.x += 1


if __name__ == "__main__":
    InstalledFlow()
PYEOF
    (cd "$tmp/py" && env -u LIBMETAFLOW_PATH -u LD_LIBRARY_PATH -u METAFLOW_DATASTORE_SYSROOT_LOCAL \
        PYTHONPATH="$(dirname "$pkgdir")" "$py" hello.py --quiet run >"$tmp/py.log" 2>&1 &&
     env -u LIBMETAFLOW_PATH -u LD_LIBRARY_PATH -u METAFLOW_DATASTORE_SYSROOT_LOCAL \
        PYTHONPATH="$(dirname "$pkgdir")" "$py" -c \
        "from metaflow import Flow; print('x =', Flow('InstalledFlow').latest_run.data.x)" \
        >>"$tmp/py.log" 2>&1) || { cat "$tmp/py.log"; echo "FAIL: installed Python package"; exit 1; }
    grep -q "^x = 42$" "$tmp/py.log" || { cat "$tmp/py.log"; echo "FAIL: Python read-back"; exit 1; }
    echo "install: the Python package ran a flow with the installed library"
fi

echo "install: headers, library, metaflow.pc; C and C++ demos built with pkg-config and ran"
echo "install: $n examples built standalone with pkg-config and ran in empty directories"
echo "1 passed, 0 failed"
