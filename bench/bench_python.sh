#!/usr/bin/env bash
# Benchmarks of the Python package (bindings/python/metaflow) against
# Metaflow 2.19's reference figures. Figures are printed, not asserted.
#
#   (a) a 3-step hello flow, `python flow.py run`: wall time (median of 5)
#   (b) a 100-way foreach of trivial tasks and its join (median of 3)
#   (c) a 200 MB random uint8 numpy array stored in one step and read in the
#       next: wall time (median of 3, each in a fresh datastore) and peak
#       memory of the whole run, children included (one more run, sampled)
#   (d) a cold client read in a new interpreter (median of 5):
#       python -c "from metaflow import Flow; Flow('X').latest_run['end'].task.data.x"
#
# The flows are in bench/python/. Usage: bench/bench_python.sh
#
# Environment:
#   PYTHON            the interpreter (default /usr/bin/python3; needs numpy)
#   LIBMETAFLOW_PATH  the library (default build/lib/libmetaflow.so.0)
#   BENCH_DIR         where the datastores and the bytecode cache go (default:
#                     a new directory under $TMPDIR, removed at the end)
#   MF_REFERENCE_PYTHONPATH
#                     a directory holding Netflix Metaflow's `metaflow`
#                     package: the same flows are then also measured with it
#                     on this machine (one run each for (b) and (c)), in an
#                     extra column
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOWS=$ROOT/bench/python
PY=${PYTHON:-/usr/bin/python3}
export LIBMETAFLOW_PATH=${LIBMETAFLOW_PATH:-$ROOT/build/lib/libmetaflow.so.0}
OURS_PATH=$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}
REF_PATH=${MF_REFERENCE_PYTHONPATH:-}
# Metaflow refuses to run as root without a user name it accepts.
export METAFLOW_USER=${METAFLOW_USER:-bench} USERNAME=${USERNAME:-bench}
unset METAFLOW_DATASTORE_SYSROOT_LOCAL

[ -x "$PY" ] || { echo "bench_python: no Python at $PY (set PYTHON)" >&2; exit 1; }
[ -f "$LIBMETAFLOW_PATH" ] || {
    echo "bench_python: no library at $LIBMETAFLOW_PATH (build it: ninja -C build)" >&2; exit 1; }
"$PY" -c "import numpy" 2>/dev/null || {
    echo "bench_python: $PY has no numpy (apt-get install python3-numpy)" >&2; exit 1; }

if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_python.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi
# Bytecode is cached, as in an installed package, but under $WORK: the
# source tree is left alone (the warm-up runs fill the cache).
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX=$WORK/pycache

now() { date +%s%N; }

# time_cmd DIR CMD...: run CMD in DIR (output discarded); print seconds.
time_cmd() {
    local dir=$1 t0 t1
    shift
    t0=$(now)
    (cd "$dir" && "$@" >/dev/null 2>"$WORK/last.err") || {
        echo "bench_python: failed: $*" >&2; cat "$WORK/last.err" >&2; exit 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

median() {
    sort -g | awk '{ v[NR] = $1 }
                   END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# repeat N DIR CMD...: one untimed warm-up, then N timed runs; prints the median.
repeat() {
    local n=$1 dir=$2 i
    shift 2
    time_cmd "$dir" "$@" >/dev/null
    for ((i = 0; i < n; i++)); do time_cmd "$dir" "$@"; done | median
}

declare -A R  # R[<who>.<figure>]

# bench WHO PYTHONPATH RUNS_BC: every benchmark with the metaflow package
# found on PYTHONPATH; RUNS_BC timed runs for (b) and (c).
bench() {
    local who=$1 n=$3 w=$WORK/$1 i t mem
    export PYTHONPATH=$2
    mkdir -p "$w/a" "$w/b" "$w/c"

    echo "[$who] (a) hello flow ..." >&2
    R[$who.a]=$(repeat 5 "$w/a" "$PY" "$FLOWS/hello_flow.py" --quiet run)

    echo "[$who] (b) 100-way foreach ..." >&2
    R[$who.b]=$(repeat "$n" "$w/b" "$PY" "$FLOWS/foreach_flow.py" --quiet run)

    echo "[$who] (c) 200 MB array ..." >&2
    # Each run in a fresh datastore: the array is random, but a datastore
    # that already held the content would not write it again.
    local runs=()
    for ((i = 0; i <= n; i++)); do
        mkdir -p "$w/c/$i"
        t=$(time_cmd "$w/c/$i" "$PY" "$FLOWS/bigarray_flow.py" --quiet run)
        [ "$i" = 0 ] || runs+=("$t")   # run 0 is the warm-up
        rm -rf "$w/c/$i"
    done
    R[$who.c]=$(printf '%s\n' "${runs[@]}" | median)
    mkdir -p "$w/c/mem"
    mem=$(cd "$w/c/mem" && "$PY" "$FLOWS/measure.py" -- "$PY" "$FLOWS/bigarray_flow.py" --quiet run)
    rm -rf "$w/c/mem"
    for f in rc peak_process_rss_mb peak_tree_rss_mb peak_tree_pss_mb rusage_children_maxrss_mb; do
        R[$who.$f]=$("$PY" -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" \
                     "$mem" "$f")
    done
    [ "${R[$who.rc]}" = 0 ] || { echo "bench_python: the measured run of (c) failed" >&2; exit 1; }
    R[$who.time]="n/a"
    if [ -x /usr/bin/time ]; then
        mkdir -p "$w/c/time"
        R[$who.time]=$(cd "$w/c/time" &&
            /usr/bin/time -v "$PY" "$FLOWS/bigarray_flow.py" --quiet run 2>&1 >/dev/null |
            awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }')
        rm -rf "$w/c/time"
    fi

    echo "[$who] (d) cold client read ..." >&2
    local x
    x=$(cd "$w/a" &&
        "$PY" -c "from metaflow import Flow; print(Flow('BenchHelloFlow').latest_run['end'].task.data.x)")
    [ "$x" = 42 ] || { echo "bench_python: (d) read x = '$x', not 42" >&2; exit 1; }
    R[$who.d]=$(repeat 5 "$w/a" "$PY" -c \
        "from metaflow import Flow; Flow('BenchHelloFlow').latest_run['end'].task.data.x")
}

echo "Python: $($PY -V 2>&1) ($PY); library: $LIBMETAFLOW_PATH"
echo "CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); datastores in $WORK"
bench ours "$OURS_PATH" 3
if [ -n "$REF_PATH" ]; then
    ref_version=$(PYTHONPATH=$REF_PATH "$PY" -c "import metaflow; print(metaflow.__version__)")
    echo "Reference measured here: Metaflow $ref_version from $REF_PATH"
    bench ref "$REF_PATH" 1
fi
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

verdict() {  # verdict VALUE TARGET
    awk -v v="$1" -v t="$2" 'BEGIN { if (v !~ /^[0-9.]+$/) print "n/a"
                                     else print (v + 0 <= t + 0) ? "ok" : "MISSED" }'
}

# row LABEL UNIT KEY SPEC TARGET
row() {
    local ref=""
    [ -z "$REF_PATH" ] || ref="${R[ref.$3]:-}"
    printf '%-40s %9s %-2s %9s %-2s %9s %-2s %9s %-2s  %s\n' "$1" "${R[ours.$3]}" "$2" \
        "$ref" "${ref:+$2}" "$4" "${4:+$2}" "$5" "${5:+$2}" \
        "$([ -z "$5" ] || verdict "${R[ours.$3]}" "$5")"
}

printf '%-40s %12s %12s %12s %12s\n' "benchmark" "libmetaflow" \
    "${REF_PATH:+Metaflow here}" "Metaflow 2.19" "target (<=)"
row "(a) hello flow, 3 steps (median of 5)" s a 1.86 0.19
row "(b) foreach 100 + join (median of 3)" s b 36.6 1.8
row "(c) 200 MB array: wall (median of 3)" s c 15.3 1.5
row "    peak RSS, largest process" MB peak_process_rss_mb 842 300
row "    peak PSS, sum over the process tree" MB peak_tree_pss_mb "" 300
row "    peak RSS, sum over the process tree" MB peak_tree_rss_mb "" ""
row "    /usr/bin/time -v maximum RSS" MB time "" ""
row "    RUSAGE_CHILDREN maxrss" MB rusage_children_maxrss_mb "" ""
row "(d) cold client read (median of 5)" s d 0.43 0.1
echo
echo "Peak memory is sampled from /proc every 5 ms over the whole process tree"
echo "(bench/python/measure.py). /usr/bin/time -v and RUSAGE_CHILDREN only see"
echo "processes that were waited for: tasks forked by the fork server are reaped"
echo "by the kernel, so those two figures leave the tasks out."
