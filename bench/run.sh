#!/usr/bin/env bash
# Benchmark of ganger's log relay, startup, stop and footprint.
#
#   bench/run.sh            # builds `cargo build --release`, runs everything 5 times
#   RUNS=9 bench/run.sh     # more runs per median
#
# Prints a Markdown table: the median over RUNS runs of each measurement, the
# median of a floor measured in the same run with the same generator, and the
# ratio. Throughput runs count the lines that arrive, so a lost line shows as
# LOST (and the script exits with 1). honcho and foreman are measured when
# installed; nothing is installed by this script.
#
# Needs: bash, cargo, coreutils, awk. python3 adds the python3-generator rows
# (and generates the input file faster; awk is used without it).

set -uo pipefail

RUNS=${RUNS:-5}
LINES=${LINES:-500000}
WRITERS=8
IDLE_SECS=5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(cd "$here" && cargo build --release --quiet) || { echo "build failed" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
[[ $target = /* ]] || target="$here/$target"
G="$target/release/ganger"

work=$(mktemp -d "${TMPDIR:-/tmp}/ganger-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Nothing from the caller's environment may change ganger's behaviour.
unset GANGER_PROCFILE GANGER_ROOT GANGER_ENV GANGER_FORMATION GANGER_PORT \
    GANGER_TIMEOUT GANGER_NO_TIMESTAMP GANGER_COLOR GANGER_LOG_FORMAT
export NO_COLOR=1

have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- generators
# Each line is 95 bytes with its newline: "line 00000042 " + 80 x.
lines_file="$work/lines.txt"
if have python3; then
    python3 - "$LINES" >"$lines_file" <<'EOF'
import sys
n = int(sys.argv[1])
pad = b"x" * 80
sys.stdout.buffer.write(b"".join(b"line %08d %s\n" % (i, pad) for i in range(n)))
EOF
else
    awk -v n="$LINES" 'BEGIN { p = sprintf("%80s", ""); gsub(/ /, "x", p); for (i = 0; i < n; i++) printf "line %08d %s\n", i, p }' >"$lines_file"
fi
# A python3 program printing line by line, as an application would (buffered).
cat >"$work/gen.py" <<'EOF'
import sys
w = sys.stdout.buffer.write
pad = b"x" * 80
for i in range(int(sys.argv[1])):
    w(b"line %08d %s\n" % (i, pad))
EOF

gens=(cat)
python=""
if have python3; then
    gens+=(python3)
    # The interpreter itself, not a version manager's shim script in front of it.
    python=$(python3 -c 'import sys; print(sys.executable)')
fi

# The shell command of a generator (ganger, honcho and foreman run it with sh -c;
# the floor runs the very same command with sh -c).
gen_cmd() {
    case $1 in
        cat) echo "cat '$lines_file'" ;;
        python3) echo "'$python' '$work/gen.py' $LINES" ;;
    esac
}

# ------------------------------------------------------------------ helpers
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# An app directory with one Procfile line.
app() { # name procfile-text
    mkdir -p "$work/$1"
    printf '%s\n' "$2" >"$work/$1/Procfile"
    echo "$work/$1"
}

failed=0
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); }
verdict() { if [ "$1" = 1 ]; then echo "holds"; else failed=1; echo "**misses**"; fi; }

# Runs `cmd | wc -l` RUNS times; sets T (median seconds) and OK (1 when every run
# counted exactly EXPECT lines). The floor and the relays alternate run by run so
# that noise on this shared machine hits both alike.
measure_pipe() { # expect cmd...
    local expect=$1 t s e n
    shift
    local times=()
    OK=1
    for ((r = 0; r < RUNS; r++)); do
        s=$(now)
        n=$("$@" 2>/dev/null | wc -l)
        e=$(now)
        times+=("$(elapsed "$s" "$e")")
        [ "$n" -eq "$expect" ] || { OK=0; echo "  $*: counted $n lines, expected $expect" >&2; }
    done
    T=$(median "${times[@]}")
}

floor_one() { sh -c "$(gen_cmd "$1")"; }
floor_many() {
    local i
    for ((i = 0; i < WRITERS; i++)); do sh -c "$(gen_cmd "$1")" & done
    wait
}
# ganger's own lines: started and exited per instance, one "sending SIGTERM".
system_lines() { echo $((2 * $1 + 1)); }

in_dir() { local d=$1; shift; (cd "$d" && exec "$@"); }

echo "ganger $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, $(uname -sr), RUNS=$RUNS, $LINES lines of 95 bytes" >&2

# ------------------------------------------------------- a, b, c: throughput
for gen in "${gens[@]}"; do
    cmd=$(gen_cmd "$gen")
    one=$(app "one-$gen" "gen: $cmd")
    many=$(app "many-$gen" "gen: trap '' TERM; $cmd")

    echo "a/c: $gen" >&2
    measure_pipe "$LINES" floor_one "$gen"; floor=$T
    measure_pipe $((LINES + $(system_lines 1))) in_dir "$one" "$G" start; t=$T; ok=$OK
    good=0; [ $ok = 1 ] && le "$(awk -v a="$t" -v b="$floor" 'BEGIN{print a/b}')" 1.5 && good=1
    row "a" "throughput (s), 1 writer, $LINES lines ($gen)$([ $ok = 1 ] || echo ', LOST')" "$t" "$floor" "$(ratio "$t" "$floor")" "≤ 1.5×" "$(verdict $good)"

    measure_pipe $((LINES + $(system_lines 1))) in_dir "$one" "$G" start --log-format json; t=$T; ok=$OK
    good=0; [ $ok = 1 ] && le "$(awk -v a="$t" -v b="$floor" 'BEGIN{print a/b}')" 2 && good=1
    row "c" "same, --log-format json ($gen)$([ $ok = 1 ] || echo ', LOST')" "$t" "$floor" "$(ratio "$t" "$floor")" "≤ 2×" "$(verdict $good)"

    measure_pipe $((LINES + $(system_lines 1))) in_dir "$one" "$G" start --no-timestamp; t=$T; ok=$OK
    good=0; [ $ok = 1 ] && le "$(awk -v a="$t" -v b="$floor" 'BEGIN{print a/b}')" 1.5 && good=1
    row "c" "same, --no-timestamp ($gen)$([ $ok = 1 ] || echo ', LOST')" "$t" "$floor" "$(ratio "$t" "$floor")" "≤ 1.5×" "$(verdict $good)"

    echo "b: $gen" >&2
    measure_pipe $((WRITERS * LINES)) floor_many "$gen"; floor=$T
    measure_pipe $((WRITERS * LINES + $(system_lines $WRITERS))) in_dir "$many" "$G" start -m gen=$WRITERS -t 600; t=$T; ok=$OK
    good=0; [ $ok = 1 ] && le "$(awk -v a="$t" -v b="$floor" 'BEGIN{print a/b}')" 1.5 && good=1
    row "b" "throughput (s), $WRITERS writers × $LINES lines ($gen)$([ $ok = 1 ] && echo ', none lost' || echo ', LOST')" "$t" "$floor" "$(ratio "$t" "$floor")" "≤ 1.5×, none lost" "$(verdict $good)"
done

# Peak RSS while relaying at full speed (one run; informational, no target).
if [ -x /usr/bin/time ]; then
    many=$(app "many-cat" "gen: trap '' TERM; $(gen_cmd cat)")
    (cd "$many" && /usr/bin/time -f %M -o "$work/busy.rss" "$G" start -m gen=$WRITERS -t 600 2>/dev/null | wc -l >/dev/null)
    busy_rss=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/busy.rss")
fi

# ------------------------------------------------------------ g: the peers
peer_rows=()
for peer in honcho foreman; do
    if ! have $peer; then
        peer_rows+=("| g | $peer, throughput (cat) | not installed | | | | |")
        continue
    fi
    echo "g: $peer" >&2
    one=$(app "one-cat" "gen: $(gen_cmd cat)")
    measure_pipe "$LINES" floor_one cat; floor=$T
    # Their own lines vary in number; count only the relayed ones. A run that
    # does not end within PEER_TIMEOUT seconds is killed and counted as hung.
    times=(); lost=0; hung=0
    for ((r = 0; r < RUNS; r++)); do
        s=$(now)
        n=$(cd "$one" && { timeout -k 5 "${PEER_TIMEOUT:-120}" $peer start 2>/dev/null; echo $? >"$work/peer.status"; } | grep -c ' | line ')
        status=$(cat "$work/peer.status")
        e=$(now)
        if [ "$status" = 124 ] || [ "$status" = 137 ]; then
            hung=$((hung + 1)); echo "  $peer: hung, killed after ${PEER_TIMEOUT:-120} s" >&2; continue
        fi
        times+=("$(elapsed "$s" "$e")")
        [ "$n" -eq "$LINES" ] || { lost=1; echo "  $peer: counted $n lines, expected $LINES" >&2; }
    done
    t=$(median "${times[@]}")
    note=""; [ $lost = 0 ] || note=", LOST"; [ $hung = 0 ] || note="$note, hung in $hung of $RUNS runs"
    peer_rows+=("| g | $peer, throughput, 1 writer (cat)$note | $t | $floor | $(ratio "$t" "$floor") | (reference) | |")
done

# ------------------------------------------------------------ d: startup
# Seconds from launch until N instances have each printed their one line.
startup() { # n -> seconds
    local n=$1 d s e
    d=$(app "start-$n" "w: echo up; exec sleep 60")
    s=$(now)
    (cd "$d" && exec "$G" start -m w="$n" -t 5 >"$d/fifo.out" 2>&1) &
    local pid=$!
    # Poll the output: cheap next to what is measured, and no pipe to stall ganger.
    while [ "$(grep -c '| up$' "$d/fifo.out" 2>/dev/null)" -lt "$n" ]; do
        kill -0 $pid 2>/dev/null || break
        sleep 0.002
    done
    e=$(now)
    kill -TERM $pid 2>/dev/null
    wait $pid 2>/dev/null
    elapsed "$s" "$e"
}
for n in 100 500; do
    echo "d: $n instances" >&2
    times=()
    for ((r = 0; r < RUNS; r++)); do times+=("$(startup $n)"); done
    t=$(median "${times[@]}")
    limit=0.5; [ $n = 500 ] && limit=3
    good=0; le "$t" "$limit" && good=1
    row "d" "startup: $n instances each printed a line (s)" "$t" "" "" "< $limit s" "$(verdict $good)"
done

# ------------------------------------------------------- e: stop latency
# Waits until N instances are up; prints ganger's pid on fd 3 style via a file.
up_app() { # dir n
    local d=$1 n=$2
    (cd "$d" && exec "$G" start -m w="$n" -t 5 >"$d/out" 2>&1) &
    PID=$!
    while [ "$(grep -c '| up$' "$d/out" 2>/dev/null)" -lt "$n" ]; do
        kill -0 $PID 2>/dev/null || return 1
        sleep 0.01
    done
}
echo "e: stop" >&2
d=$(app stop "w: echo up; exec sleep 60")
times=()
for ((r = 0; r < RUNS; r++)); do
    up_app "$d" 10 || break
    s=$(now)
    kill -TERM $PID
    wait $PID
    e=$(now)
    times+=("$(elapsed "$s" "$e")")
done
t=$(median "${times[@]}")
good=0; le "$t" 0.05 && good=1
row "e" "stop: SIGTERM to exit, 10 instances that exit at once (s)" "$t" "" "" "< 0.05 s" "$(verdict $good)"

# --------------------------------------------------- f: memory and idle CPU
echo "f: footprint" >&2
d=$(app rss "w: echo up; exec sleep 60")
rss=()
for ((r = 0; r < RUNS; r++)); do
    up_app "$d" 100 || break
    rss+=("$(awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' /proc/$PID/status)")
    if [ $r = 0 ]; then
        # utime + stime are fields 14 and 15 of /proc/PID/stat (after the comm field).
        ticks() { sed 's/^.*) //' /proc/$PID/stat | awk '{ print $12 + $13 }'; }
        t0=$(ticks); sleep $IDLE_SECS; t1=$(ticks)
        idle=$((t1 - t0))
    fi
    kill -TERM $PID
    wait $PID
done
m=$(median "${rss[@]}")
good=0; le "$m" 15 && good=1
row "f" "peak RSS (VmHWM) of ganger with 100 instances (MB)" "$m" "" "" "< 15 MB" "$(verdict $good)"
good=0; [ "$idle" = 0 ] && good=1
[ -n "${busy_rss:-}" ] && row "f" "peak RSS while relaying $WRITERS writers (cat), one run (MB)" "$busy_rss" "" "" "(no target)" ""
row "f" "CPU ticks (utime+stime) of an idle ganger, 100 instances, ${IDLE_SECS} s, one run" "$idle" "" "" "0" "$(verdict $good)"

# ------------------------------------------------------------------ table
echo
echo "| | measurement | ganger (median) | floor (median) | ratio | target | |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" "${peer_rows[@]}"
echo
echo "Medians of $RUNS runs on $(nproc) CPUs ($(uname -r)); floor = the same generator straight into \`wc -l\`."
echo "Generators: \`cat\` of a pre-generated file (the fastest writer), and a python3 loop writing line by line."
exit $failed
