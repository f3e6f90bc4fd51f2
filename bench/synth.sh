#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# synth.sh: kernel-driven synthetic load through the real lifemon binary. lifemon
# --bench-tgid turns every rename (prctl PR_SET_NAME) of bench/synth-load into an event that
# takes the real path: BPF program, per-CPU ring, reader, serializer, file sink, /ws. Steps the
# rename rate up, reads /metrics after each step and checks that the books balance.
# Root only. Starts synth-load, lifemon and one WebSocket client (pipeline --connect) and
# stops only those, by pid.
#
# usage: bench/synth.sh [--ring-size SIZE] [--pin] [--threads T] [--rounds N] [--rates "R1 ..."]
#                       [--seconds S] [--port P] [--ws-out FILE] [--label TEXT] [--help]
#   --rates     events/s per step, 0 = unlimited (default "100000 250000 500000 750000 1000000 0")
#   --seconds   length of each step (default 3)
#   --pin       synth-load on CPU 1; lifemon and the client on CPU 0
#   --threads   synth-load renames from T threads at once (one process; default 1)
#   --rounds    fresh lifemon per round; the table shows the median per step (default 1)
#   --ws-out    the client also writes the stream it receives to FILE (default: count only)
#   --report    only print the report of an earlier run from its OUT directory
#   --smoke     a few seconds, for make test: one 1 s step at 20k ev/s; fails unless lifemon
#               exits 0, the --output file has every seq, and the books balance
# env: BUILD=build (lifemon, pipeline, synth-load; built there when missing) OUT=(mktemp -d)
#      OUTPUT=/tmp/synth.jsonl (lifemon --output; deleted at the end unless KEEP_OUTPUT=1)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LIFEMON=${LIFEMON:-$BUILD/lifemon}
PIPELINE=${PIPELINE:-$BUILD/pipeline}
SYNTH_LOAD=${SYNTH_LOAD:-$BUILD/synth-load}
OUTPUT=${OUTPUT:-/tmp/synth.jsonl}
RATES="100000 250000 500000 750000 1000000 0"
STEP_S=3
PORT=18310
RING_SIZE=""
PIN=0
THREADS=1
ROUNDS=1
WS_OUT=""
LABEL=""
REPORT_ONLY=""
SMOKE=0
SMOKE_FAIL=""
CMDLINE="bench/synth.sh${*:+ $*}"

die() { echo "synth.sh: $*" >&2; exit 2; }
log() { printf '%s synth: %s\n' "$(date +%T)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--ring-size) RING_SIZE=${2:?}; shift ;;
	--pin) PIN=1 ;;
	--threads) THREADS=${2:?}; shift ;;
	--rounds) ROUNDS=${2:?}; shift ;;
	--rates) RATES=${2:?}; shift ;;
	--seconds) STEP_S=${2:?}; shift ;;
	--port) PORT=${2:?}; shift ;;
	--ws-out) WS_OUT=${2:?}; shift ;;
	--label) LABEL=${2:?}; shift ;;
	--report) REPORT_ONLY=${2:?}; shift ;;
	--smoke) SMOKE=1 RATES=20000 STEP_S=1 ROUNDS=1 ;;
	-h|--help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done

if [ -n "$REPORT_ONLY" ]; then
	OUT=$REPORT_ONLY
	# shellcheck disable=SC1091
	. "$OUT/meta" || die "no $OUT/meta"
fi
if [ -z "$REPORT_ONLY" ] && [ "$(id -u)" != 0 ]; then
	# make test: not run (ctest SKIP_RETURN_CODE), except in CI
	[ "$SMOKE" = 1 ] && [ "${CI:-}" != true ] && { echo "SKIP: synth.sh: needs root" >&2; exit 77; }
	die "needs root (BPF)"
fi
command -v curl >/dev/null || die "no curl"
command -v python3 >/dev/null || die "no python3"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[[ $PORT =~ ^[0-9]+$ ]] || die "--port must be a number"
for r in $RATES; do [[ $r =~ ^[0-9]+$ ]] || die "bad rate '$r'"; done
if [ -z "$REPORT_ONLY" ] && { [ ! -x "$LIFEMON" ] || [ ! -x "$PIPELINE" ] ||
			       [ ! -x "$SYNTH_LOAD" ]; }; then
	log "building lifemon, pipeline and synth-load in $BUILD"
	cmake --build "$BUILD" -j"$(nproc)" --target lifemon pipeline synth-load >&2 ||
		die "build failed; configure $BUILD with bench/pipeline.cmake included"
fi

OUT=${OUT:-$(mktemp -d /tmp/synth.XXXXXX)}
mkdir -p "$OUT" || die "cannot create $OUT"
STEPS="$OUT/steps.tsv"
if [ -z "$REPORT_ONLY" ]; then
	: > "$STEPS"
	: > "$OUT/rounds.txt"
fi

# --- processes we started, stopped by pid on any exit ---
LM_PID=""
CL_PID=""
DRV_PID=""
MX_PID=""
cleanup() {
	local p
	for p in $MX_PID $CL_PID $LM_PID; do
		kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
	done
	if [ -n "$DRV_PID" ] && kill -0 "$DRV_PID" 2>/dev/null; then
		kill -TERM "$DRV_PID" 2>/dev/null
	fi
	wait 2>/dev/null
	[ "${KEEP_OUTPUT:-0}" = 1 ] || rm -f "$OUTPUT" "$OUTPUT".[0-9]*
}
[ -n "$REPORT_ONLY" ] || trap cleanup EXIT
trap 'exit 130' INT TERM

# /metrics through bench/synth_metrics.py, one process per round: an exec per sample (curl,
# awk) would itself be an event in the counters it reads
MX_IN=""
MX_OUT=""
mx() {
	local line
	echo "$1" >&"$MX_IN"
	read -r line <&"$MX_OUT" || die "synth_metrics.py ended"
	echo "$line"
}

# "k=v k=v" -> the values in the order steps.tsv keeps them
vals() {
	local kv out=""
	for kv in $1; do out+="${kv#*=} "; done
	echo "${out% }"
}

run_round() {
	local round=$1 pin_drv="" pin_lm="" ring_args=() before after drv_line snap st
	if [ "$PIN" = 1 ]; then
		pin_drv="taskset -c 1"
		pin_lm="taskset -c 0"
	fi
	[ -n "$RING_SIZE" ] && ring_args=(--ring-size "$RING_SIZE")
	rm -f "$OUTPUT" "$OUTPUT".[0-9]* "$OUT/client.stat" "$OUT"/*.fifo
	mkfifo "$OUT/drv.in.fifo" "$OUT/drv.out.fifo" "$OUT/mx.in.fifo" "$OUT/mx.out.fifo" ||
		die "mkfifo failed"

	# the driver first: lifemon needs its pid. It waits for a go line on stdin.
	# shellcheck disable=SC2086
	$pin_drv "$SYNTH_LOAD" --batch 64 --threads "$THREADS" \
		< "$OUT/drv.in.fifo" > "$OUT/drv.out.fifo" &
	DRV_PID=$!
	exec {DRV_IN}>"$OUT/drv.in.fifo" {DRV_OUT}<"$OUT/drv.out.fifo"
	# shellcheck disable=SC2086
	$pin_lm "$LIFEMON" --listen "127.0.0.1:$PORT" --output "$OUTPUT" --bench-tgid "$DRV_PID" \
		"${ring_args[@]}" 2>"$OUT/lifemon.$round.log" &
	LM_PID=$!
	for _ in $(seq 150); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
			"http://127.0.0.1:$PORT/healthz")" = 200 ] && break
		kill -0 "$LM_PID" 2>/dev/null || die "lifemon exited: $(tail -3 "$OUT/lifemon.$round.log")"
		sleep 0.1
	done
	# shellcheck disable=SC2086
	$pin_lm "$PIPELINE" --connect "$PORT" --stat "$OUT/client.stat" ${WS_OUT:+--out "$WS_OUT"} \
		> "$OUT/client.$round.out" 2>&1 &
	CL_PID=$!
	python3 "$ROOT/bench/synth_metrics.py" "$PORT" "$OUT/client.stat" \
		< "$OUT/mx.in.fifo" > "$OUT/mx.out.fifo" &
	MX_PID=$!
	exec {MX_IN}>"$OUT/mx.in.fifo" {MX_OUT}<"$OUT/mx.out.fifo"
	log "round $round: lifemon pid $LM_PID, synth-load pid $DRV_PID, client pid $CL_PID"
	snap=$(mx baseline)
	[ "${snap%% *}" = settled=1 ] || log "round $round: not idle before the first step: $snap"
	before=$(vals "${snap#* }")

	for r in $RATES; do
		echo "$r $STEP_S" >&"$DRV_IN"
		read -r drv_line <&"$DRV_OUT" || die "synth-load ended early"
		snap=$(mx snap)
		after=$(vals "${snap#* }")
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$r" "$drv_line" "$before" "$after" \
			"${snap:8:1}" >> "$STEPS"
		log "round $round, rate $r: $drv_line ${snap%% *}"
		before=$after
	done
	# stop in reverse: metrics reader, client, lifemon (shutdown drain), driver (EOF)
	echo quit >&"$MX_IN"
	exec {MX_IN}>&- {MX_OUT}<&-
	wait "$MX_PID" 2>/dev/null
	kill -TERM "$CL_PID" 2>/dev/null
	wait "$CL_PID" 2>/dev/null
	cp "$OUT/client.stat" "$OUT/client.$round.stat" 2>/dev/null
	kill -TERM "$LM_PID"
	wait "$LM_PID"
	st=$?
	check=$("$PIPELINE" --check-file "$OUTPUT") || SMOKE_FAIL+=" round $round: --output file: $check;"
	[ "$st" = 0 ] || SMOKE_FAIL+=" round $round: lifemon exit status $st;"
	{
		echo "- round $round, lifemon: $(grep -h 'stopped on signal' "$OUT/lifemon.$round.log" |
			sed 's/^lifemon: main: //'), exit status $st"
		echo "  - ws client (whole run): $(cat "$OUT/client.$round.out")"
		echo "  - --output file, checked after exit: $check"
	} >> "$OUT/rounds.txt"
	tail -3 "$OUT/rounds.txt" >&2
	exec {DRV_IN}>&- {DRV_OUT}<&-
	wait "$DRV_PID" 2>/dev/null
	LM_PID=""
	CL_PID=""
	DRV_PID=""
	MX_PID=""
}

if [ -z "$REPORT_ONLY" ]; then
	log "output in $OUT"
	LOAD_START=$(cat /proc/loadavg)
	for round in $(seq "$ROUNDS"); do
		run_round "$round"
	done
	LOAD_END=$(cat /proc/loadavg)
	declare -p CMDLINE LABEL RING_SIZE PIN THREADS LOAD_START LOAD_END > "$OUT/meta"
fi

# --- report: median per step over rounds ---
REPORT=$(python3 - "$STEPS" "$CMDLINE" "$LABEL" "$RING_SIZE" "$PIN" "$LOAD_START" "$LOAD_END" \
	"$THREADS" <<'EOF'
import statistics, sys
path, cmdline, label, ring, pin, load0, load1, threads = sys.argv[1:9]
rows = {}
order = []
for line in open(path):
    rnd, rate, drv, before, after, settled = line.rstrip("\n").split("\t")
    d = dict(kv.split("=") for kv in drv.split())
    b = [float(x) for x in before.split()]
    a = [float(x) for x in after.split()]
    ev, kd, rd, ser, pub, wd, wdr, fd, fdr, cpu, cev, clost, _, dt, _ = (
        y - x for x, y in zip(b, a))
    # the books since lifemon started, at the end of the step (all 0 when they balance)
    A = dict(zip(("ev", "kd", "rd", "ser", "pub", "wd", "wdr", "fd", "fdr", "cpu", "cev",
                  "clost", "clients", "t", "offws"), a))
    res = {"events-kdrop-read": A["ev"] - A["kd"] - A["rd"], "read-ser": A["rd"] - A["ser"],
           "ser-pub": A["ser"] - A["pub"],
           "pub-wsdel-wsdrop": A["pub"] - A["wd"] - A["wdr"] - A["offws"],
           "ser-filedel-filedrop": A["ser"] - A["fd"] - A["fdr"],
           "wsdel-client": A["wd"] - A["cev"]}
    bad = ["%s=%+d" % (k, v) for k, v in res.items() if v]
    if not bad:
        books = "ok"
    elif settled == "2" and all(v >= 0 for v in res.values()):
        # a busy host: other processes' events were in flight at every sample, but all that
        # had been counted 0.5 s earlier had passed every stage
        books = "ok, caught up (%d in flight)" % max(res.values())
    else:
        books = "OFF: " + ", ".join(bad) + ("" if settled != "0" else " (never settled)")
    r = dict(rate=int(rate), ach=float(d["rate"]), drv_cpu=float(d["cpu_s"]),
             secs=float(d["seconds"]), ev=ev, kd=kd, rd=rd, cev=cev, clost=clost, wdr=wdr,
             fdr=fdr, cpu_per_m=cpu / (ev / 1e6) if ev else 0, cpu_pct=100 * cpu / dt,
             noise=ev - int(d["count"]), books=books, rnd=rnd, inflight=max(res.values()))
    if rate not in rows:
        rows[rate] = []
        order.append(rate)
    rows[rate].append(r)

def med(rs, k):
    return statistics.median(x[k] for x in rs)

title = label or ("ring %s%s%s" % (ring or "4M (default)", ", pinned" if pin == "1" else "",
                                   ", %s driver threads" % threads if threads != "1" else ""))
print(f"\n#### synth: {title}\n")
print(f"`{cmdline}` — median of {max(len(v) for v in rows.values())} round(s) per step\n")
print("| target ev/s | achieved ev/s | synth-load CPU | events (kernel) | other processes' "
      "events | kernel dropped | read | ws client received | ws client lost | file dropped "
      "| lifemon CPU s per 1M events | lifemon CPU | rounds with loss | books |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
loss_at = None
for rate in order:
    rs = rows[rate]
    n = lambda k: "%.0f" % med(rs, k)
    target = "unlimited" if rate == "0" else f"{int(rate)/1e3:.0f}k"
    exact = sum(x["books"] == "ok" for x in rs)
    caught = [x["inflight"] for x in rs if x["books"].startswith("ok, caught")]
    off = [x["books"] for x in rs if x["books"].startswith("OFF")]
    books = "; ".join(([f"{exact}/{len(rs)} exact"] if exact else []) +
                      ([f"{len(caught)}/{len(rs)} caught up, <= {max(caught):.0f} in flight"]
                       if caught else []) + off)
    lossy = [x for x in rs if x["kd"] or x["wdr"] or x["fdr"]]
    losses = "%d/%d" % (len(lossy), len(rs)) + "".join(
        " (r%s: %.0fk/s: kernel %d, ws %d, file %d)" % (x["rnd"], x["ach"] / 1e3, x["kd"],
                                                      x["wdr"], x["fdr"]) for x in lossy)
    print(f"| {target} | {med(rs,'ach')/1e3:.0f}k | {100*med(rs,'drv_cpu')/med(rs,'secs'):.0f}% "
          f"| {n('ev')} | {n('noise')} | {n('kd')} | {n('rd')} | {n('cev')} | {n('clost')} "
          f"| {n('fdr')} | {med(rs,'cpu_per_m'):.2f} | {med(rs,'cpu_pct'):.0f}% | {losses} | {books} |")
    for x in rs:
        stages = [s for s, k in (("kernel ring", "kd"), ("ws client", "wdr"), ("file sink", "fdr"))
                  if x[k] > 0]
        if stages and loss_at is None:
            loss_at = (target, x["ach"], stages)
if loss_at:
    print(f"\nLoss begins at target {loss_at[0]} (achieved {loss_at[1]/1e3:.0f}k ev/s in that "
          f"round), at: {', '.join(loss_at[2])}.")
else:
    print("\nNo loss at any step.")
print("\nbooks: checked on lifemon's cumulative /metrics at the end of each step: events = "
      "kernel dropped + read, serialized = read, ws published = serialized, ws delivered + "
      "dropped = published (less the events published before the client connected), file "
      "delivered + dropped = serialized, ws delivered = what the client received.")
print("\nlifemon CPU: process_cpu_seconds_total over the step's wall time, settle included "
      "(100%% = one core). Load average (1/5/15 min) at start: %s; at end: %s."
      % (" ".join(load0.split()[:3]), " ".join(load1.split()[:3])))
EOF
)
echo "$REPORT"
echo
echo "Per round, after lifemon's shutdown drain (seqs checked for gaps and order):"
echo
cat "$OUT/rounds.txt"
log "raw steps: $STEPS"
if [ "$SMOKE" = 1 ]; then
	[ -s "$STEPS" ] || SMOKE_FAIL+=" no step recorded;"
	grep -q '| OFF: ' <<< "$REPORT" && SMOKE_FAIL+=" the books do not balance;"
	[ -z "$SMOKE_FAIL" ] || die "--smoke failed:$SMOKE_FAIL"
	log "--smoke: ok"
fi
