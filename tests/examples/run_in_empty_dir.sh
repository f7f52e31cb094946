#!/bin/sh
# Run an example as a new user would: in a fresh, empty directory, with no
# METAFLOW_* variables set, so that the engine makes ./.metaflow there.
# Then check that it exited 0 and that every pattern of EXPECT (one
# grep -E pattern a line; blank lines and lines starting with '#' skipped)
# matches a line of its standard output.
#
# With --broken-datastore, a plain file named .metaflow is put in the
# directory first, so that opening the engine fails: the example must
# then exit 1 and say why on standard error.
#
# usage: run_in_empty_dir.sh [--broken-datastore] EXE EXPECT
set -eu
broken=
if [ "${1:-}" = --broken-datastore ]; then
    broken=1
    shift
fi
[ $# -eq 2 ] || { echo "usage: $0 [--broken-datastore] EXE EXPECT" >&2; exit 2; }
exe=$1
expect=$2
case $exe in /*) ;; *) exe=$(pwd)/$exe ;; esac
[ -x "$exe" ] || { echo "FAIL: $exe is not an executable" >&2; exit 1; }
[ -f "$expect" ] || { echo "FAIL: no expectations file $expect" >&2; exit 1; }
name=$(basename "$expect" .expect)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mf-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/run"
for v in $(env | sed -n 's/^\(METAFLOW_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done

if [ -n "$broken" ]; then
    : >"$tmp/run/.metaflow"
    rc=0
    (cd "$tmp/run" && exec "$exe") >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q "cannot create root" "$tmp/err"; then
        echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"
        echo "FAIL: $name exited $rc without a datastore; expected 1 and the reason"
        exit 1
    fi
    cat "$tmp/err"
    echo "PASS: $name exits 1 and says why when the datastore cannot be made"
    exit 0
fi

rc=0
(cd "$tmp/run" && exec "$exe") >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out"
if [ -s "$tmp/err" ]; then
    echo "--- stderr"
    cat "$tmp/err"
fi
[ "$rc" -eq 0 ] || { echo "FAIL: $name exited $rc"; exit 1; }
[ -d "$tmp/run/.metaflow" ] || { echo "FAIL: $name made no ./.metaflow datastore"; exit 1; }
fail=0
while IFS= read -r pattern; do
    case $pattern in ''|'#'*) continue ;; esac
    if ! grep -Eq -- "$pattern" "$tmp/out"; then
        echo "FAIL: $name: no output line matches: $pattern"
        fail=1
    fi
done <"$expect"
[ "$fail" -eq 0 ] || exit 1
echo "PASS: $name"
