#!/bin/sh
# shellcheck disable=SC2015 # "check && pass || fail": pass never fails
# mfctl end to end: build a datastore with cli_fixture (fixture.c says what
# is in it), then run mfctl against it and check exact output, exit
# statuses (0 ok, 1 failure, 2 usage), error messages naming the thing at
# fault, dumped bytes, gc figures, verify before and after damage, and
# reindex. Every mfctl run's stderr is also checked for sanitizer reports.
# usage: test_mfctl.sh MFCTL CLI_FIXTURE
set -u
case $1 in /*) mfctl=$1 ;; *) mfctl=$(pwd)/$1 ;; esac
case $2 in /*) fixture=$2 ;; *) fixture=$(pwd)/$2 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
unset METAFLOW_DATASTORE_SYSROOT_LOCAL || true
ds=$tmp/ds
root=$ds/.metaflow
here=$(pwd)
passed=0
failed=0

fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
pass() { passed=$((passed + 1)); }
show_err() { sed 's/^/    stderr: /' "$tmp/err"; }

# mf_at ROOT ARGS...: run mfctl (ROOT '' for none); sets $rc, $tmp/out, $tmp/err.
mf_at() {
    r=$1
    shift
    if [ -n "$r" ]; then
        "$mfctl" --root "$r" "$@" >"$tmp/out" 2>"$tmp/err"
    else
        "$mfctl" "$@" >"$tmp/out" 2>"$tmp/err"
    fi
    rc=$?
    if grep -q -e 'Sanitizer' -e 'runtime error:' "$tmp/err"; then
        fail "sanitizer report from: mfctl $*"
        show_err
    fi
}
mf() { mf_at "$root" "$@"; }

# want_rc N WHAT: the last exit status.
want_rc() {
    if [ "$rc" -eq "$1" ]; then pass; else fail "$2: exit status $rc, wanted $1"; show_err; fi
}
# want_out WHAT < expected: stdout exactly ('|' in the expected text is a tab).
want_out() {
    tr '|' '\t' >"$tmp/want"
    if cmp -s "$tmp/want" "$tmp/out"; then pass; else
        fail "$1: output differs (- wanted, + got)"
        diff -u "$tmp/want" "$tmp/out" | tail -n +3 | sed 's/^/    /'
        show_err
    fi
}
# want_err WHAT TEXT: stderr contains TEXT.
want_err() {
    if grep -qF -- "$2" "$tmp/err"; then pass; else fail "$1: stderr lacks \"$2\""; show_err; fi
}
want_no_out() {
    if [ -s "$tmp/out" ]; then fail "$1: unexpected output"; sed 's/^/    /' "$tmp/out"; else pass; fi
}
want_true() { # WHAT COMMAND...
    what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}

# ------------------------------------------------------------ no datastore
# Before the fixture exists. The walk up from $tmp/nowhere must not find a
# .metaflow of the machine's; if one is there, those checks cannot be made.
mkdir -p "$tmp/nowhere"
stray=
d=$tmp
while :; do
    [ -d "$d/.metaflow" ] && stray=$d/.metaflow
    [ "$d" = / ] && break
    d=$(dirname "$d")
done
if [ -z "$stray" ]; then
    for cmd in flows verify gc reindex "runs CliFlow"; do
        cd "$tmp/nowhere" || exit 1
        # shellcheck disable=SC2086
        mf_at '' $cmd
        cd "$here" || exit 1
        want_rc 1 "$cmd without a datastore"
        want_err "$cmd without a datastore" "no datastore found"
    done
    want_true "mfctl created $tmp/nowhere/.metaflow" test ! -e "$tmp/nowhere/.metaflow"
else
    echo "note: $stray exists; skipping the checks of datastore discovery failing"
fi
for cmd in flows gc reindex; do
    mf_at "$tmp/missing" $cmd
    want_rc 1 "$cmd --root missing"
    want_err "$cmd --root missing" "no datastore found: datastore root '$tmp/missing'"
    METAFLOW_DATASTORE_SYSROOT_LOCAL=$tmp/missing2 mf_at '' $cmd
    want_rc 1 "$cmd with METAFLOW_DATASTORE_SYSROOT_LOCAL missing"
    want_err "$cmd with METAFLOW_DATASTORE_SYSROOT_LOCAL missing" "$tmp/missing2/.metaflow"
done
want_true "mfctl created a datastore root" test ! -e "$tmp/missing" -a ! -e "$tmp/missing2"
# A root without an index: read commands and gc say so and create nothing.
mkdir -p "$tmp/bare"
mf_at "$tmp/bare" flows
want_rc 1 "flows on a root without an index"
want_err "flows on a root without an index" "no datastore found"
want_err "flows on a root without an index" "$tmp/bare/.index"
mf_at "$tmp/bare" gc --dry-run
want_rc 1 "gc on a root without an index"
want_err "gc on a root without an index" "mfctl reindex"
want_true "an index was created in $tmp/bare" test ! -e "$tmp/bare/.index"

# ------------------------------------------------------------ usage errors
mf_at '' --version
want_rc 0 "--version"
grep -q '^mfctl [0-9.]* (libmetaflow [0-9.]*)$' "$tmp/out" && pass || fail "--version output"
mf_at '' --help
want_rc 0 "--help"
for c in flows runs steps tasks artifacts show logs dump verify gc reindex; do
    grep -q "^  $c " "$tmp/out" && pass || fail "--help does not list $c"
done
mf_at '' help dump
want_rc 0 "help dump"
cp "$tmp/out" "$tmp/help_dump"
mf_at '' dump --help
want_rc 0 "dump --help"
want_true "help dump and dump --help differ" cmp -s "$tmp/out" "$tmp/help_dump"
grep -q '^usage: mfctl dump FLOW/RUN/STEP/TASK\[/ATTEMPT\] NAME' "$tmp/out" && pass ||
    fail "dump --help synopsis"
mf_at ''
want_rc 2 "no command"
want_err "no command" "no command given"
mf bogus
want_rc 2 "unknown command"
want_err "unknown command" "unknown command 'bogus'"
mf runs
want_rc 2 "runs without FLOW"
want_err "runs without FLOW" "missing FLOW"
mf dump CliFlow/1/start/1
want_rc 2 "dump without NAME"
want_err "dump without NAME" "missing NAME"
mf runs CliFlow --frobnicate
want_rc 2 "unknown option"
want_err "unknown option" "unknown option '--frobnicate'"
mf flows --all
want_rc 2 "an option of another command"
want_err "an option of another command" "unknown option '--all'"
mf runs CliFlow --limit 0
want_rc 2 "--limit 0"
want_err "--limit 0" "--limit '0'"
mf runs CliFlow --limit
want_rc 2 "--limit without a value"
mf gc --grace soon
want_rc 2 "--grace soon"
mf runs CliFlow extra
want_rc 2 "an extra argument"
want_err "an extra argument" "unexpected argument 'extra'"
mf steps CliFlow
want_rc 2 "a pathspec too short"
want_err "a pathspec too short" "pathspec 'CliFlow' is not FLOW/RUN"
mf artifacts CliFlow/1/start
want_rc 2 "a task pathspec too short"
want_err "a task pathspec too short" "pathspec 'CliFlow/1/start' is not FLOW/RUN/STEP/TASK[/ATTEMPT]"
mf show CliFlow/1/start/1/0/9
want_rc 2 "a pathspec too long"
mf tasks CliFlow//start
want_rc 2 "a pathspec with an empty part"

# ------------------------------------------------------------- the fixture
mkdir -p "$tmp/expect" "$ds"
before=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if ! "$fixture" "$root" "$tmp/expect" >"$tmp/fixture.log" 2>&1; then
    cat "$tmp/fixture.log"
    echo "FAIL: cli_fixture"
    exit 1
fi
after=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ----------------------------------------------------------------- queries
mf flows
want_rc 0 flows
want_out flows <<EOF
CliFlow
ResumeFlow
ShellFlow
EOF

# The run listing, with its creation times checked apart.
mf runs CliFlow
want_rc 0 "runs CliFlow"
cut -f3 "$tmp/out" >"$tmp/created"
times_ok=$(awk -v lo="$before" -v hi="$after" '
    !/^[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z$/ { bad = 1 }
    $0 < lo || $0 > hi { bad = 1 }
    NR > 1 && $0 > prev { bad = 1 }
    { prev = $0 }
    END { print (NR == 3 && !bad) ? "yes" : "no" }' "$tmp/created")
[ "$times_ok" = yes ] && pass || { fail "runs: creation times"; cat "$tmp/created"; }
cut -f1,2,4- "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs CliFlow" <<EOF
1003|crashed|bob|user:bob|runtime:dev|metaflow_version:libmetaflow-0.1.0
1002|failed|alice|user:alice|runtime:dev|metaflow_version:libmetaflow-0.1.0|nightly
1001|succeeded|alice|user:alice|runtime:dev|metaflow_version:libmetaflow-0.1.0|nightly|team:cli
EOF
mf runs CliFlow --successful
cut -f1,2 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs --successful" <<EOF
1001|succeeded
EOF
mf runs --tag nightly CliFlow
cut -f1 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs --tag nightly" <<EOF
1002
1001
EOF
mf runs CliFlow --tag nightly --tag=team:cli
cut -f1 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs --tag nightly --tag team:cli" <<EOF
1001
EOF
mf runs CliFlow --limit 2
cut -f1 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs --limit 2" <<EOF
1003
1002
EOF
mf runs CliFlow --tag nosuchtag
want_rc 0 "runs --tag nosuchtag"
want_no_out "runs --tag nosuchtag"
mf runs ShellFlow
cut -f1,2,4 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "runs ShellFlow" <<EOF
2001|succeeded|carol
EOF
mf runs NoSuchFlow
want_rc 1 "runs of an unknown flow"
want_err "runs of an unknown flow" "flow 'NoSuchFlow' not found"

# Finding the root: the nearest .metaflow above, or the environment.
mkdir -p "$ds/sub/dir"
cd "$ds/sub/dir" || exit 1
mf_at '' flows
cd "$here" || exit 1
want_rc 0 "flows found by walking up"
want_out "flows found by walking up" <<EOF
CliFlow
ResumeFlow
ShellFlow
EOF
METAFLOW_DATASTORE_SYSROOT_LOCAL=$ds mf_at '' steps ShellFlow/2001
want_rc 0 "steps via METAFLOW_DATASTORE_SYSROOT_LOCAL"
want_out "steps via METAFLOW_DATASTORE_SYSROOT_LOCAL" <<EOF
start
end
EOF
mf_at '' --index "$root/.index" --root "$root" flows
want_rc 0 "--index"

mf steps CliFlow/1001
want_rc 0 steps
want_out steps <<EOF
start
body
join
end
EOF
mf steps CliFlow/latest_successful
want_out "steps of latest_successful" <<EOF
start
body
join
end
EOF
mf steps CliFlow/1003
want_rc 0 "steps of a run without tasks"
want_no_out "steps of a run without tasks"
mf steps CliFlow/9999
want_rc 1 "steps of a missing run"
want_err "steps of a missing run" "run 'CliFlow/9999' not found"

mf tasks CliFlow/1001
want_rc 0 tasks
want_out tasks <<EOF
CliFlow/1001/start/1|succeeded|0
CliFlow/1001/body/2|succeeded|0
CliFlow/1001/body/3|succeeded|0
CliFlow/1001/body/4|succeeded|0
CliFlow/1001/join/5|succeeded|0
CliFlow/1001/end/6|succeeded|0
EOF
mf tasks CliFlow/1001/body
want_out "tasks of a step" <<EOF
CliFlow/1001/body/2|succeeded|0
CliFlow/1001/body/3|succeeded|0
CliFlow/1001/body/4|succeeded|0
EOF
mf tasks ResumeFlow/3001
want_out "tasks of a failed run" <<EOF
ResumeFlow/3001/start/1|succeeded|0
ResumeFlow/3001/a/2|failed|0
EOF
mf tasks CliFlow/latest
want_rc 0 "tasks of latest"
want_no_out "tasks of latest (1003, never ran a task)"
mf tasks CliFlow/1001/nostep
want_rc 1 "tasks of a missing step"
want_err "tasks of a missing step" "step 'nostep' not found in run 'CliFlow/1001'"

mf artifacts CliFlow/1001/start/1
want_rc 0 artifacts
want_out artifacts <<EOF
big|raw|17838137|1
bundle|pickle5|10|2
greeting|raw|13|1
EOF
mf artifacts CliFlow/1001/start/1/0 --all
want_out "artifacts --all" <<EOF
_secret|raw|6|1
big|raw|17838137|1
bundle|pickle5|10|2
greeting|raw|13|1
EOF
# A linear step carries its parent's artifacts on; a join starts afresh.
mf artifacts CliFlow/1001/body/3
want_out "artifacts of a body task" <<EOF
big|raw|17838137|1
bundle|pickle5|10|2
greeting|raw|13|1
item|raw|6|1
EOF
mf artifacts CliFlow/latest_successful/end/6
want_out "artifacts of the end task" <<EOF
done|json|4|1
joined|raw|20|1
EOF
mf dump CliFlow/1001/end/6 joined
printf 'item-0,item-1,item-2' >"$tmp/want"
want_true "dump joined: bytes differ" cmp -s "$tmp/out" "$tmp/want"
mf artifacts CliFlow/1001/start/42
want_rc 1 "artifacts of a missing task"
want_err "artifacts of a missing task" "task 'CliFlow/1001/start/42' not found"

mf show CliFlow/1001/body/3
want_rc 0 show
want_out "show a foreach task" <<EOF
pathspec: CliFlow/1001/body/3
step: body
task: 3
attempt: 0
status: succeeded
foreach: 1/3 green
input: 1001/start/1
EOF
mf show CliFlow/1001/join/5
want_out "show a join" <<EOF
pathspec: CliFlow/1001/join/5
step: join
task: 5
attempt: 0
status: succeeded
input: 1001/body/2
input: 1001/body/3
input: 1001/body/4
EOF
mf show ResumeFlow/3002/start/1
want_out "show a cloned task" <<EOF
pathspec: ResumeFlow/3002/start/1
step: start
task: 1
attempt: 0
status: succeeded
origin: 3001/start/1
EOF
mf show ResumeFlow/3001/a/2/0
want_rc 0 "show a failed task"
head -6 "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "show a failed task" <<EOF
pathspec: ResumeFlow/3001/a/2
step: a
task: 2
attempt: 0
status: failed
input: 3001/start/1
EOF
mf show ResumeFlow/3001/a/2
grep -q '^failure:$' "$tmp/out" && grep -q '^  step .a. task 2 attempt 0 failed: exit code 3$' "$tmp/out" &&
    grep -q '^ *failing a$' "$tmp/out" && pass || { fail "show: failure text"; cat "$tmp/out"; }
mf show CliFlow/1001/start/1/7
want_rc 1 "show a missing attempt"
want_err "show a missing attempt" "task 'CliFlow/1001/start/1/7' attempt 7 not found"
mf show CliFlow/latest/start/1
want_rc 1 "show in a run without tasks"
want_err "show in a run without tasks" "task 'CliFlow/1003/start/1' not found"

# -------------------------------------------------------------------- logs
mf logs CliFlow/1001/body/3
want_rc 0 logs
want_out "logs stdout" <<EOF
body 1 out 1
body 1 out 2
EOF
mf logs CliFlow/1001/body/3 --stderr
want_out "logs --stderr" <<EOF
body 1 err
EOF
mf logs CliFlow/1001/body/3 --both
want_out "logs --both in time order" <<EOF
body 1 out 1
body 1 err
body 1 out 2
EOF
mf logs CliFlow/1001/body/3 --both --timestamps
ts='[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{6\}Z '
[ "$(grep -c "^$ts" "$tmp/out")" -eq 3 ] && pass || { fail "logs --timestamps format"; cat "$tmp/out"; }
sort -c "$tmp/out" 2>/dev/null && pass || { fail "logs --both --timestamps not in time order"; cat "$tmp/out"; }
sed "s/^$ts//" "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "logs --both --timestamps text" <<EOF
body 1 out 1
body 1 err
body 1 out 2
EOF
mf logs CliFlow/1001/start/1 --timestamps
[ "$(grep -c "^$ts" "$tmp/out")" -eq 2 ] && pass || { fail "logs --timestamps"; cat "$tmp/out"; }
mf logs ShellFlow/2001/start/1
want_out "logs of a shell step" <<EOF
hello
EOF
mf logs ShellFlow/2001/start/1 --stderr
want_out "logs --stderr of a shell step" <<EOF
oops
EOF
mf logs ShellFlow/2001/start/1 --both
sort "$tmp/out" >"$tmp/out2" && mv "$tmp/out2" "$tmp/out"
want_out "logs --both of a shell step" <<EOF
hello
oops
EOF
mf logs ShellFlow/2001/end/2 --both
want_rc 0 "logs of a silent task"
want_no_out "logs of a silent task"
mf logs CliFlow/1002/start/1 --stderr
want_out "logs of a failed task" <<EOF
bad input
EOF
mf logs CliFlow/1002/start/2
want_rc 1 "logs of a missing task"
want_err "logs of a missing task" "task 'CliFlow/1002/start/2' not found"

# -------------------------------------------------------------------- dump
mf dump CliFlow/1001/start/1 greeting
want_rc 0 dump
want_true "dump greeting: bytes differ" cmp -s "$tmp/out" "$tmp/expect/greeting.bin"
mf dump CliFlow/1001/start/1 big
want_rc 0 "dump big (streamed)"
want_true "dump big: bytes differ" cmp -s "$tmp/out" "$tmp/expect/big.bin"
mf dump CliFlow/1001/start/1 bundle
printf 'main value' >"$tmp/want"
want_true "dump part 0: bytes differ" cmp -s "$tmp/out" "$tmp/want"
echo stale >"$tmp/part1.out"
mf dump CliFlow/1001/start/1 bundle --part 1 -o "$tmp/part1.out"
want_rc 0 "dump --part 1 -o"
want_no_out "dump -o"
want_true "dump --part 1 -o: bytes differ" cmp -s "$tmp/part1.out" "$tmp/expect/part1.bin"
mf dump CliFlow/1001/start/1 big --output="$tmp/big.out"
want_true "dump big --output: bytes differ" cmp -s "$tmp/big.out" "$tmp/expect/big.bin"
mf dump CliFlow/1001/start/1 bundle --part 2
want_rc 1 "dump of a missing part"
want_err "dump of a missing part" "artifact 'bundle' of task 'CliFlow/1001/start/1' has 2 parts: no part 2"
mf dump CliFlow/1001/start/1 nothing
want_rc 1 "dump of a missing artifact"
want_err "dump of a missing artifact" "'nothing'"
mf dump CliFlow/1001/start/1 greeting -o "$tmp/no/such/dir/file"
want_rc 1 "dump into a missing directory"
want_err "dump into a missing directory" "$tmp/no/such/dir/file"

# ------------------------------------------------------------- gc, reindex
orphan_key=$(sha256sum "$tmp/expect/orphan.bin" | cut -c1-64)
orphan=$root/data/$(echo "$orphan_key" | cut -c1-2)/$orphan_key
want_true "the orphan blob is not at $orphan" test -f "$orphan"
orphan_size=$(wc -c <"$orphan" | tr -d ' ')
nblobs=$(find "$root/data" -type f | wc -l | tr -d ' ')
nman=$(find "$root" -name '*.manifest' | wc -l | tr -d ' ')
want_true "the fixture committed 14 task attempts, found $nman" test "$nman" -eq 14
mf gc --dry-run
want_rc 0 "gc --dry-run"
want_out "gc --dry-run (default grace)" <<EOF
manifests|$nman
blobs|$nblobs
live|$((nblobs - 1))
young|1
swept|0
bytes_swept|0
EOF
mf gc --dry-run --grace 0
want_out "gc --dry-run --grace 0" <<EOF
manifests|$nman
blobs|$nblobs
live|$((nblobs - 1))
young|0
swept|1
bytes_swept|$orphan_size
EOF
want_true "gc --dry-run deleted the orphan" test -f "$orphan"
mf gc --grace 0
want_rc 0 "gc"
want_out "gc --grace 0" <<EOF
manifests|$nman
blobs|$nblobs
live|$((nblobs - 1))
young|0
swept|1
bytes_swept|$orphan_size
EOF
want_true "gc left the orphan" test ! -e "$orphan"
mf gc --grace 0 --dry-run
want_out "gc after gc" <<EOF
manifests|$nman
blobs|$((nblobs - 1))
live|$((nblobs - 1))
young|0
swept|0
bytes_swept|0
EOF
mf dump CliFlow/1001/start/1 big
want_true "dump big after gc: bytes differ" cmp -s "$tmp/out" "$tmp/expect/big.bin"

mf runs CliFlow
cp "$tmp/out" "$tmp/runs.before"
mf tasks ResumeFlow/3002
cp "$tmp/out" "$tmp/tasks.before"
rm -rf "$root/.index"
mf flows
want_rc 1 "flows without the index"
want_err "flows without the index" "no datastore found"
mf gc --dry-run
want_rc 1 "gc without the index"
want_true "gc created an index" test ! -e "$root/.index"
cd "$ds/sub/dir" || exit 1
mf_at '' reindex
cd "$here" || exit 1
want_rc 0 reindex
want_no_out reindex
mf runs CliFlow
want_true "runs differ after reindex" cmp -s "$tmp/out" "$tmp/runs.before"
mf tasks ResumeFlow/3002
want_true "tasks differ after reindex" cmp -s "$tmp/out" "$tmp/tasks.before"
mf show ResumeFlow/3002/start/1
grep -q '^origin: 3001/start/1$' "$tmp/out" && pass || fail "origin lost by reindex"

# ------------------------------------------------------------------ verify
mf verify
want_rc 0 verify
want_no_out verify
greeting_key=$(sha256sum "$tmp/expect/greeting.bin" | cut -c1-64)
blob=$root/data/$(echo "$greeting_key" | cut -c1-2)/$greeting_key
want_true "the greeting blob is not at $blob" test -f "$blob"
# The greeting ends in a newline: its last byte becomes an X.
size=$(wc -c <"$blob" | tr -d ' ')
printf X | dd of="$blob" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
mf verify
want_rc 1 "verify of a damaged store"
want_out "verify lists the damaged blob" <<EOF
data/$(echo "$greeting_key" | cut -c1-2)/$greeting_key
EOF
want_err "verify of a damaged store" "1 damaged blob"
mf dump CliFlow/1001/start/1 greeting
want_rc 1 "dump of a damaged artifact"
want_err "dump of a damaged artifact" "artifact 'greeting' of task 'CliFlow/1001/start/1'"
want_err "dump of a damaged artifact" "checksum mismatch"
mf dump CliFlow/1001/start/1 greeting -o "$tmp/greeting.out"
want_rc 1 "dump -o of a damaged artifact"
leftover=$(find "$tmp" -maxdepth 1 -name 'greeting.out*')
want_true "dump -o of a damaged artifact left $leftover" test -z "$leftover"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
