#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# filter_cost.sh: what per-client /ws filters cost lifemon's lm-ws thread. For each filter
# case, a fresh lifemon (--bench-tgid: every rename of bench/synth-load is an event through
# the real pipeline) serves K WebSocket clients (pipeline --connect, all with that case's
# query) while synth-load makes R events/s for S seconds; the lm-ws thread's CPU time (from
# /proc/PID/task/TID/stat) is divided by the events published. Cases run side by side in
# each round, rounds repeat, the table shows medians.
# Root only. Starts synth-load, lifemon and the K clients for each case and stops only
# those, by pid.
#
# usage: bench/filter_cost.sh [--clients K] [--rate R] [--seconds S] [--rounds N] [--port P]
# env: BUILD=build (lifemon, pipeline, synth-load)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CLIENTS=8 RATE=20000 SECS=5 ROUNDS=3 PORT=18330
while [ $# -gt 0 ]; do
	case "$1" in
	--clients) CLIENTS=${2:?}; shift ;;
	--rate) RATE=${2:?}; shift ;;
	--seconds) SECS=${2:?}; shift ;;
	--rounds) ROUNDS=${2:?}; shift ;;
	--port) PORT=${2:?}; shift ;;
	--help|-h) sed -n '3,13p' "$0"; exit 0 ;;
	*) echo "filter_cost: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "filter_cost: needs root (BPF)" >&2; exit 2; }
for b in lifemon pipeline synth-load; do
	[ -x "$BUILD/$b" ] || { echo "filter_cost: $BUILD/$b missing: make build" >&2; exit 2; }
done

# name|query: none = no filter (whole chunks written in place); the others copy what passes
CASES=(
	"none|"
	"all pass (comm=*)|comm=*"
	"none pass (type=exit&comm=nomatch*)|type=exit&comm=nomatch*"
	"exe/args (args=nomatch, process set)|args=nomatch"
)
OUT=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$OUT"
}
trap cleanup EXIT

metric() { # metric NAME: its value from /metrics
	curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" |
		awk -v n="$1" '$1 == n { print $2; exit }'
}

ws_ticks() { # ws_ticks PID: utime + stime of its lm-ws thread, in clock ticks
	local t
	for t in /proc/"$1"/task/*; do
		if [ "$(cat "$t/comm" 2>/dev/null)" = lm-ws ]; then
			# fields after the ")" of comm: state is 3rd, utime 14th, stime 15th
			sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }'
			return
		fi
	done
	echo 0
}

run_case() { # run_case QUERY: prints "published cpu_s"
	local query=$1 drv lm i t0 t1 pub cl=()
	mkfifo "$OUT/in" "$OUT/out"
	"$BUILD/synth-load" --batch 64 < "$OUT/in" > "$OUT/out" &
	drv=$!
	PIDS+=("$drv")
	exec {IN}>"$OUT/in" {OUTFD}<"$OUT/out"
	"$BUILD/lifemon" --listen "127.0.0.1:$PORT" --bench-tgid "$drv" 2>"$OUT/lm.log" &
	lm=$!
	PIDS+=("$lm")
	for _ in $(seq 100); do
		curl -sf --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null && break
		sleep 0.1
	done
	for i in $(seq "$CLIENTS"); do
		if [ -n "$query" ]; then
			"$BUILD/pipeline" --connect "$PORT" --query "$query" > "$OUT/cl.$i" 2>&1 &
		else
			"$BUILD/pipeline" --connect "$PORT" > "$OUT/cl.$i" 2>&1 &
		fi
		cl+=($!)
		PIDS+=($!)
	done
	for _ in $(seq 100); do
		[ "$(metric lifemon_ws_clients)" = "$CLIENTS" ] && break
		sleep 0.1
	done
	t0=$(ws_ticks "$lm")
	echo "$RATE $SECS" >&"$IN"
	read -r _ <&"$OUTFD"
	# the clients keep up at this rate: let the last events reach them
	sleep 1
	t1=$(ws_ticks "$lm")
	pub=$(metric lifemon_ws_published_total)
	kill -TERM "${cl[@]}" 2>/dev/null || true
	wait "${cl[@]}" 2>/dev/null || true
	kill -TERM "$lm"
	wait "$lm" || true
	echo quit >&"$IN"
	exec {IN}>&- {OUTFD}<&-
	wait "$drv" 2>/dev/null || true
	rm -f "$OUT/in" "$OUT/out"
	PIDS=()
	echo "$pub $(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')"
}

RES="$OUT/results"
: > "$RES"
for r in $(seq "$ROUNDS"); do
	for c in "${CASES[@]}"; do
		name=${c%%|*} query=${c#*|}
		set -- $(run_case "$query")
		echo "round $r: $name: published $1, lm-ws CPU $2 s" >&2
		printf '%s\t%s\t%s\n' "$name" "$1" "$2" >> "$RES"
	done
done

echo "filter_cost: $CLIENTS clients, $RATE events/s for $SECS s, $ROUNDS rounds (medians)"
echo
echo "| case | query | lm-ws CPU s | events | lm-ws µs per event (all clients) | µs per event and client | vs none |"
echo "|---|---|---:|---:|---:|---:|---:|"
python3 - "$RES" "$CLIENTS" "${CASES[@]}" <<'EOF'
import statistics, sys
res, k, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for line in open(res):
    name, pub, cpu = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(pub), float(cpu)))
base = None
for c in cases:
    name, query = c.split("|", 1)
    runs = rows.get(name, [])
    cpu = statistics.median(r[1] for r in runs)
    pub = statistics.median(r[0] for r in runs)
    us = statistics.median(r[1] / r[0] * 1e6 for r in runs if r[0])
    if base is None:
        base = us
    print(f"| {name} | `{query or '-'}` | {cpu:.2f} | {pub:.0f} | {us:.2f} | {us / k:.3f} | "
          f"{us / base:.2f}x |")
EOF
