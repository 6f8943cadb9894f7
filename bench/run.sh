#!/usr/bin/env bash
# Benchmark of ganger's log relay, startup, stop and footprint.
#
#   bench/run.sh            # builds `cargo build --release`, runs everything 5 times
#   RUNS=9 bench/run.sh     # more runs per median
#   ONLY=start bench/run.sh # only start-up, stop and footprint (rows d-f)
#   ONLY=relay bench/run.sh # only throughput (rows a-c, g)
#   GANGER=path bench/run.sh # measure that binary instead of building one
#
# Prints a Markdown table: the median over RUNS runs of each measurement, the
# median of a floor measured in the same run with the same generator, and the
# ratio. Throughput runs count the lines that arrive, so a lost line shows as
# LOST (and the script exits with 1). honcho and foreman are measured when
# installed; nothing is installed by this script.
#
# Start-up rows compare ganger with bench/floor.c, a minimal spawner compiled
# here with cc, started and stopped the same way in the same run.
#
# Needs: bash, cargo, cc, coreutils, findutils, awk. python3 adds the python3-generator rows
# (and generates the input file faster; awk is used without it).

set -uo pipefail

RUNS=${RUNS:-5}
LINES=${LINES:-500000}
WRITERS=8
IDLE_SECS=5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${GANGER:-}" ]; then
    # Another build, e.g. a copy of an earlier one, to compare with.
    G=$(realpath "$GANGER")
else
    (cd "$here" && cargo build --release --quiet) || { echo "build failed" >&2; exit 2; }
    target=${CARGO_TARGET_DIR:-target}
    [[ $target = /* ]] || target="$here/$target"
    G="$target/release/ganger"
fi

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

# ONLY=relay or ONLY=start runs one half (rows a-c and g, or d-f).
want() { case ${ONLY:-all} in all | "$1") return 0 ;; esac; return 1; }
peer_rows=()

# ------------------------------------------------------- a, b, c: throughput
if want relay; then
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

fi

# ------------------------------------------- d, e, f: start-up at scale
# N instances of SCALE_CMD, started by ganger and by the floor: bench/floor.c,
# which only posix_spawns the same `sh -c` commands, each in its own process
# group, sharing one stdout, and on SIGTERM signals every group and reaps. Both
# write into the same counter (floor.c too), which notes the moment the N-th
# "up" line arrives: no polling. Sets READY (s), RSS (MB, VmHWM just before
# the stop), STOP (s from SIGTERM to exit) and LEFT (processes still running
# in the app's directory a second after the exit), and CPU (s of CPU the
# spawner itself used until then).
SCALE_CMD="echo up; exec sleep 60"
scale_once() { # ganger|floor n
    local who=$1 n=$2 d="$work/scale-$1-$2" s e pid i
    mkdir -p "$d"
    printf 'w: %s\n' "$SCALE_CMD" >"$d/Procfile"
    rm -f "$d/ready" "$d/out"
    mkfifo "$d/ready" "$d/out"
    s=$(now)
    # The counter is the script's child, not the spawner's (which reaps all).
    "$floor" count "$n" "$s" "$d/ready" <"$d/out" &
    if [ "$who" = ganger ]; then
        (cd "$d" && exec "$G" start -m w="$n" -t 5 >"$d/out" 2>&1) &
    else
        (cd "$d" && exec "$floor" spawn "$n" "$SCALE_CMD" </dev/null >"$d/out") &
    fi
    pid=$!
    read -r READY <"$d/ready"
    RSS=$(awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null)
    # utime + stime (fields 14 and 15, after the comm field), in 1/100 s.
    CPU=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ printf "%.2f\n", ($12 + $13) / 100 }')
    s=$(now)
    kill -TERM $pid 2>/dev/null
    wait $pid 2>/dev/null
    e=$(now)
    STOP=$(elapsed "$s" "$e")
    for ((i = 0; i < 20; i++)); do
        LEFT=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$d" 2>/dev/null | wc -l)
        [ "$LEFT" = 0 ] && break
        sleep 0.05
    done
    # What a run left behind must not slow the next one.
    [ "$LEFT" = 0 ] || find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$d" 2>/dev/null |
        awk -F/ '{ print $3 }' | xargs -r kill -KILL 2>/dev/null
}
floor="$work/floor"
scale_rows() {
    if ! cc -O2 -o "$floor" "$here/bench/floor.c"; then
        row "d" "start-up at scale: needs cc for the floor" "" "" "" "" "**misses**"
        failed=1
        return
    fi
    local n r gr fr grss frss gstop fstop gcpu fcpu left
    for n in 100 1000; do
        echo "d/e/f: $n instances" >&2
        gr=(); fr=(); grss=(); frss=(); gstop=(); fstop=(); gcpu=(); fcpu=(); left=0
        for ((r = 0; r < RUNS; r++)); do
            # Alternating, so that noise from other work hits both alike.
            scale_once floor "$n"
            fr+=("$READY"); frss+=("$RSS"); fstop+=("$STOP"); fcpu+=("$CPU")
            scale_once ganger "$n"
            gr+=("$READY"); grss+=("$RSS"); gstop+=("$STOP"); gcpu+=("$CPU")
            left=$((left + LEFT))
            [ "${READY}" != fail ] || { echo "  ganger: not every instance printed its line" >&2; failed=1; }
        done
        local t f m fm st fst limit good
        t=$(median "${gr[@]}"); f=$(median "${fr[@]}")
        limit=1.25; [ "$n" = 100 ] && limit=1.5
        good=0; le "$(awk -v a="$t" -v b="$f" 'BEGIN{print a/b}')" $limit && good=1
        row "d" "ready: $n instances each printed a line (s)" "$t" "$f" "$(ratio "$t" "$f")" "≤ ${limit}×" "$(verdict $good)"
        row "d" "CPU time the spawner used until then, $n instances (s)" "$(median "${gcpu[@]}")" "$(median "${fcpu[@]}")" "" "(no target)" ""
        st=$(median "${gstop[@]}"); fst=$(median "${fstop[@]}")
        good=0; le "$st" "$(awk -v b="$fst" 'BEGIN{print b + 0.1}')" && [ $left = 0 ] && good=1
        row "e" "stop: SIGTERM to exit, $n instances (s); processes left: $left" "$st" "$fst" "$(awk -v a="$st" -v b="$fst" 'BEGIN{printf "%+.3f s", a - b}')" "≤ floor + 0.1 s, 0 left" "$(verdict $good)"
        m=$(median "${grss[@]}"); fm=$(median "${frss[@]}")
        limit=15; [ "$n" = 1000 ] && limit=8
        good=0; le "$m" $limit && good=1
        row "f" "peak RSS (VmHWM) with $n instances (MB)" "$m" "$fm" "" "< $limit MB" "$(verdict $good)"
    done
}
want start && scale_rows

# ------------------------------------------------------------ f: idle CPU
if want start; then
    echo "f: idle" >&2
    d="$work/idle"
    mkdir -p "$d"
    printf 'w: %s\n' "$SCALE_CMD" >"$d/Procfile"
    mkfifo "$d/ready" "$d/out"
    "$floor" count 100 "$(now)" "$d/ready" <"$d/out" &
    (cd "$d" && exec "$G" start -m w=100 -t 5 >"$d/out" 2>&1) &
    PID=$!
    read -r _ <"$d/ready"
    # utime + stime are fields 14 and 15 of /proc/PID/stat (after the comm field).
    ticks() { sed 's/^.*) //' /proc/$PID/stat | awk '{ print $12 + $13 }'; }
    t0=$(ticks); sleep $IDLE_SECS; t1=$(ticks)
    idle=$((t1 - t0))
    kill -TERM $PID
    wait $PID
    good=0; [ "$idle" = 0 ] && good=1
    row "f" "CPU ticks (utime+stime) of an idle ganger, 100 instances, ${IDLE_SECS} s, one run" "$idle" "" "" "0" "$(verdict $good)"
fi
[ -n "${busy_rss:-}" ] && row "f" "peak RSS while relaying $WRITERS writers (cat), one run (MB)" "$busy_rss" "" "" "(no target)" ""

# ------------------------------------------------------------------ table
echo
echo "| | measurement | ganger (median) | floor (median) | ratio | target | |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" "${peer_rows[@]}"
echo
echo "Medians of $RUNS runs on $(nproc) CPUs ($(uname -r)), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
want relay && echo "Rows a-c: floor = the same generator straight into \`wc -l\`; \`cat\` of a pre-generated file (the fastest writer), and a python3 loop writing line by line."
want start && echo "Rows d-f: floor = bench/floor.c, which posix_spawns the same \`sh -c '$SCALE_CMD'\` into their own process groups with one shared stdout."
exit $failed
