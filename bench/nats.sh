#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# nats.sh: the NATS JetStream sink's throughput and cost, side by side with lifemon without it.
# Starts a 3-node nats-server JetStream cluster on 127.0.0.1 (bench/nats_ctl.py with
# tests/nats_cluster.py: free ports, a config file and a store_dir each under OUT). Each round
# runs lifemon twice over the same rate steps, each time a fresh lifemon with --output FILE and
# --bench-tgid (every rename of bench/synth-load is an event through the BPF path): once
# without --nats and once with --nats <the 3 URLs> --nats-stream B<round> (lifemon creates the
# stream, 3 replicas). After each step nats_ctl.py reads /metrics at once (the rates, what is
# pending), then again once every event has been acked (the CPU, the catch-up time). After the
# round, lifemon --nats-tail must print exactly the --output file's lines, or where a sink
# dropped, lack only the events that sink's own LOST notices tell (bench/nats_check.py); then
# the stream is deleted (every stream lifemon creates takes lifemon.>, so the next round's
# would overlap).
# Root only. Stops what it started (servers, lifemon, synth-load) by pid, also on failure.
#
# usage: bench/nats.sh [--rounds N] [--rates "R1 ..."] [--seconds S] [--settle S] [--port P]
#                      [--modes "file nats"] [--label TEXT] [--report OUT] [--smoke] [--help]
#   --rates     events/s per step, 0 = unlimited (default "10000 25000 50000 100000 0")
#   --seconds   length of each step (default 3)
#   --settle    at most this long after a step for every event to be acked (default 40)
#   --rounds    rounds; the table shows the median per step (default 3)
#   --modes     the runs of each round: file (without --nats), nats (default "file nats")
#   --report    only print the report of an earlier run from its OUT directory
#   --smoke     a few seconds, for make test: the run with --nats only, one 2 s step at
#               5000 ev/s; fails unless the stream holds exactly the --output file's lines
# env: BUILD=build (lifemon, synth-load; built there when missing) OUT=(mktemp -d)
#      KEEP=1 keeps the --output files, the tails and the servers' stores in OUT
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LIFEMON=${LIFEMON:-$BUILD/lifemon}
SYNTH_LOAD=${SYNTH_LOAD:-$BUILD/synth-load}
RATES="10000 25000 50000 100000 0"
MODES="file nats"
STEP_S=3
SETTLE_S=40
PORT=18320
ROUNDS=3
LABEL=""
REPORT_ONLY=""
SMOKE=0
STRICT=""
FAIL=""
CMDLINE="bench/nats.sh${*:+ $*}"

die() { echo "nats.sh: $*" >&2; exit 2; }
log() { printf '%s nats.sh: %s\n' "$(date +%T)" "$*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=${2:?}; shift ;;
	--modes) MODES=${2:?}; shift ;;
	--rates) RATES=${2:?}; shift ;;
	--seconds) STEP_S=${2:?}; shift ;;
	--settle) SETTLE_S=${2:?}; shift ;;
	--port) PORT=${2:?}; shift ;;
	--label) LABEL=${2:?}; shift ;;
	--report) REPORT_ONLY=${2:?}; shift ;;
	--smoke) SMOKE=1 RATES=5000 STEP_S=2 ROUNDS=1 MODES=nats STRICT=1 ;;
	-h|--help) sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
	[ "$SMOKE" = 1 ] && [ "${CI:-}" != true ] && { echo "SKIP: nats.sh: needs root" >&2; exit 77; }
	die "needs root (BPF)"
fi
command -v python3 >/dev/null || die "no python3"
command -v curl >/dev/null || die "no curl"
[ -n "$REPORT_ONLY" ] || [ -x /usr/sbin/nats-server ] ||
	die "no /usr/sbin/nats-server (Debian package nats-server; scripts/install-deps.sh)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[[ $PORT =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ $SETTLE_S =~ ^[0-9]+$ ]] || die "--settle must be a number of seconds"
for r in $RATES; do [[ $r =~ ^[0-9]+$ ]] || die "bad rate '$r'"; done
for m in $MODES; do [[ $m =~ ^(file|nats)$ ]] || die "bad mode '$m'"; done
if [ -z "$REPORT_ONLY" ] && { [ ! -x "$LIFEMON" ] || [ ! -x "$SYNTH_LOAD" ]; }; then
	log "building lifemon and synth-load in $BUILD"
	cmake --build "$BUILD" -j"$(nproc)" --target lifemon synth-load >&2 ||
		die "build failed; configure $BUILD with bench/pipeline.cmake included"
fi

OUT=${OUT:-$(mktemp -d /tmp/natsbench.XXXXXX)}
mkdir -p "$OUT" || die "cannot create $OUT"
STEPS="$OUT/steps.tsv"
if [ -z "$REPORT_ONLY" ]; then
	: > "$STEPS"
	: > "$OUT/rounds.txt"
fi

# --- processes we started, stopped by pid on any exit; nats_ctl.py stops the servers ---
LM_PID=""
DRV_PID=""
CTL_PID=""
cleanup() {
	local p
	for p in $LM_PID $DRV_PID; do
		kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
	done
	if [ -n "$CTL_PID" ] && kill -0 "$CTL_PID" 2>/dev/null; then
		kill -TERM "$CTL_PID" 2>/dev/null
	fi
	wait 2>/dev/null
	if [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$OUT/cluster"
		rm -f "$OUT"/out.*.jsonl "$OUT"/tail.*.jsonl
	fi
}
[ -n "$REPORT_ONLY" ] || trap cleanup EXIT
trap 'exit 130' INT TERM

CTL_IN=""
CTL_OUT=""
ctl() {
	local line
	echo "$*" >&"$CTL_IN"
	read -r line <&"$CTL_OUT" || die "nats_ctl.py ended (see $OUT/ctl.log)"
	echo "$line"
}

# one value of a snapshot line, as an integer
snapval() {
	local v=${1#* "$2"=}
	v=${v%% *}
	echo "${v%%.*}"
}

# one lifemon over every step; mode file: --output only, mode nats: with --nats too
run_mode() {
	local round=$1 mode=$2 nats_args=() before end set drv_line st inst ndrop fdrop check threads
	local outfile="$OUT/out.$round.$mode.jsonl" lmlog="$OUT/lifemon.$round.$mode.log"
	local stream="B$round"

	[ "$mode" = nats ] && nats_args=(--nats "$URLS" --nats-stream "$stream")
	rm -f "$outfile" "$OUT"/drv.*.fifo
	mkfifo "$OUT/drv.in.fifo" "$OUT/drv.out.fifo" || die "mkfifo failed"
	"$SYNTH_LOAD" --batch 64 < "$OUT/drv.in.fifo" > "$OUT/drv.out.fifo" &
	DRV_PID=$!
	exec {DRV_IN}>"$OUT/drv.in.fifo" {DRV_OUT}<"$OUT/drv.out.fifo"
	"$LIFEMON" --listen "127.0.0.1:$PORT" --output "$outfile" --bench-tgid "$DRV_PID" \
		"${nats_args[@]}" 2>"$lmlog" &
	LM_PID=$!
	for _ in $(seq 150); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
			"http://127.0.0.1:$PORT/healthz")" = 200 ] && break
		kill -0 "$LM_PID" 2>/dev/null || die "lifemon exited: $(tail -3 "$lmlog")"
		sleep 0.1
	done
	[ "$(ctl attach "$PORT" "$([ "$mode" = nats ] && echo 1 || echo 0)" "$LM_PID")" = ok ] ||
		die "nats_ctl.py: attach failed"
	log "round $round, $mode: lifemon pid $LM_PID, synth-load pid $DRV_PID"
	before=$(ctl idle)
	ctl threads mark > /dev/null
	[ "${before%% *}" != settled=0 ] ||
		log "round $round, $mode: not idle (or no stream) before the first step"
	for r in $RATES; do
		echo "$r $STEP_S" >&"$DRV_IN"
		read -r drv_line <&"$DRV_OUT" || die "synth-load ended early"
		end=$(ctl snap)
		set=$(ctl settle "$SETTLE_S")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$r" "$drv_line" "$before" \
			"$end" "$set" >> "$STEPS"
		log "round $round, $mode, rate $r: $drv_line ${set%% *}"
		[ "${set%% *}" != settled=0 ] ||
			log "round $round, $mode, rate $r: not caught up within $SETTLE_S s"
		before=$set
	done
	threads=$(ctl threads)
	kill -TERM "$LM_PID"
	wait "$LM_PID"
	st=$?
	LM_PID=""
	exec {DRV_IN}>&- {DRV_OUT}<&-
	wait "$DRV_PID" 2>/dev/null
	DRV_PID=""
	[ "$st" = 0 ] || FAIL+=" round $round, $mode: lifemon exit status $st;"
	if [ "$mode" = nats ]; then
		inst=$(head -c 4096 "$outfile" | grep -o -m1 '"instance":"[0-9a-f]*"' | cut -d'"' -f4)
		# the sinks' drops while running (the last snapshot), plus any the nats sink counted
		# at shutdown (never acked)
		ndrop=$(snapval "$before" ndrop)
		fdrop=$(snapval "$before" fdrop)
		ndrop=$((ndrop + $(sed -n 's/.* \([0-9]*\) events were not acked.*/\1/p' "$lmlog" |
			tail -1 | grep . || echo 0)))
		"$LIFEMON" --nats-tail --nats "${URLS%%,*}" --nats-stream "$stream" \
			--tail-instance "${inst:-none}" > "$OUT/tail.$round.jsonl" \
			2> "$OUT/tail.$round.log"
		st=$?
		check="nats-tail exit status $st, $(tail -1 "$OUT/tail.$round.log"); "
		check+=$(python3 "$ROOT/bench/nats_check.py" ${STRICT:+--strict} "$outfile" \
			"$OUT/tail.$round.jsonl" "$ndrop" "$fdrop") ||
			FAIL+=" round $round: the stream is not the file;"
		[ "$st" = 0 ] || FAIL+=" round $round: nats-tail exit status $st;"
		echo "- round $round: instance $inst, $check" >> "$OUT/rounds.txt"
		tail -1 "$OUT/rounds.txt" >&2
		# the next round's stream would overlap this one's subjects: stop here if it stays
		[ "$(ctl delete "$stream")" = ok ] || die "round $round: could not delete stream $stream"
	fi
	{
		echo "- round $round, lifemon $([ "$mode" = nats ] && echo with || echo without)" \
			"--nats: $(grep -h 'stopped on signal' "$lmlog" | sed 's/^lifemon: main: //')"
		echo "  - CPU s by thread over the steps and their catch-up: $threads"
		grep -h 'nats' "$lmlog" | grep -v 'connected to\|created stream\|publishing to' |
			sed 's/^/  - /'
	} >> "$OUT/rounds.txt"
	[ "${KEEP:-0}" = 1 ] || rm -f "$outfile" "$OUT/tail.$round.jsonl"
}

if [ -z "$REPORT_ONLY" ]; then
	log "output in $OUT"
	rm -f "$OUT"/*.fifo "$OUT"/lifemon.*.log "$OUT"/tail.*
	mkfifo "$OUT/ctl.in.fifo" "$OUT/ctl.out.fifo" || die "mkfifo failed"
	python3 "$ROOT/bench/nats_ctl.py" "$OUT/cluster" < "$OUT/ctl.in.fifo" \
		> "$OUT/ctl.out.fifo" 2> "$OUT/ctl.log" &
	CTL_PID=$!
	exec {CTL_IN}>"$OUT/ctl.in.fifo" {CTL_OUT}<"$OUT/ctl.out.fifo"
	started=$(ctl start)
	URLS=${started#urls=}
	URLS=${URLS%% *}
	[[ $URLS == nats://* ]] || die "cluster: $started"
	log "cluster: $started"
	LOAD_START=$(cat /proc/loadavg)
	T_START=$(date +%s)
	for round in $(seq "$ROUNDS"); do
		# alternate which run goes first, so neither always meets a warmer cluster
		order=$MODES
		[ $((round % 2)) = 0 ] && order=$(echo "$MODES" | tr ' ' '\n' | tac | tr '\n' ' ')
		for mode in $order; do
			run_mode "$round" "$mode"
		done
	done
	WALL_S=$(($(date +%s) - T_START))
	LOAD_END=$(cat /proc/loadavg)
	echo quit >&"$CTL_IN"
	wait "$CTL_PID" 2>/dev/null
	CTL_PID=""
	exec {CTL_IN}>&- {CTL_OUT}<&-
	HOSTINFO="$(uname -r), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo |
		head -1)), $(/usr/sbin/nats-server --version), lifemon $(git -C "$ROOT" \
		describe --always --dirty 2>/dev/null)"
	declare -p CMDLINE LABEL LOAD_START LOAD_END WALL_S HOSTINFO STEP_S > "$OUT/meta"
fi

# --- report: median per step over rounds ---
REPORT=$(python3 - "$STEPS" "$CMDLINE" "$LABEL" "$LOAD_START" "$LOAD_END" "$WALL_S" \
	"$HOSTINFO" <<'EOF'
import statistics, sys
path, cmdline, label, load0, load1, wall, host = sys.argv[1:8]
LE_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 2500, 10000)

def snap(s):
    out = {}
    for kv in s.split():
        k, _, v = kv.partition("=")
        out[k] = [int(x) for x in v.split(",") if x] if k == "ackb" else float(v)
    return out

def p99_ms(b0, b1):
    """The 99th percentile of the histogram's growth from b0 to b1, interpolated linearly in
    its bucket (beyond the last bound: that bound)."""
    d = [y - x for x, y in zip(b0, b1)] if b0 else list(b1)
    n = d[-1] if d else 0
    if not n:
        return None
    want = 0.99 * n
    lo = 0.0
    for i, le in enumerate(LE_MS):
        if d[i] >= want:
            below = d[i - 1] if i else 0
            return lo + (le - lo) * (want - below) / max(d[i] - below, 1)
        lo = le
    return LE_MS[-1]

rows = {}
order = []
for line in open(path):
    rnd, mode, rate, drv, b, e, s = line.rstrip("\n").split("\t")
    d = dict(kv.split("=") for kv in drv.split())
    b, e, s = snap(b), snap(e), snap(s)
    dt = e["t"] - b["t"]
    ev = s["ser"] - b["ser"]
    ackn = s["ackn"] - b["ackn"]
    # what reached each sink (lifemon_serialized_total is added once per batch, and a batch
    # lasts as long as the reader keeps up, so it lags far behind the sinks under load)
    into_file = lambda x: x["fdel"] + x["fdrop"]
    into_nats = lambda x: x["ndel"] + x["ndrop"] + x["npend"]
    r = dict(rnd=rnd, offered=float(d["rate"]),
             file_rate=(into_file(e) - into_file(b)) / dt,
             nats_rate=(into_nats(e) - into_nats(b)) / dt,
             ack_rate=(e["ndel"] - b["ndel"]) / dt, ndrop=s["ndrop"] - b["ndrop"],
             kdrop=s["kdrop"] - b["kdrop"], fdrop=s["fdrop"] - b["fdrop"], pend=e["npend"],
             peak=s["npeak"] / 2**20, catchup=s["t"] - e["t"],
             ack_mean=1e3 * (s["acksum"] - b["acksum"]) / ackn if ackn else None,
             ack_p99=p99_ms(b["ackb"], s["ackb"]), ev=ev,
             lm_cpu=(s["lmcpu"] - b["lmcpu"]) / (ev / 1e6) if ev else 0,
             lm_pct=100 * (s["lmcpu"] - b["lmcpu"]) / (s["t"] - b["t"]),
             srv_cpu=(s["srvcpu"] - b["srvcpu"]) / (ev / 1e6) if ev else 0,
             srv_pct=100 * (s["srvcpu"] - b["srvcpu"]) / (s["t"] - b["t"]),
             kpeak=s.get("kpeak", 0.0),
             retries=s["nretry"] - b["nretry"], failures=s["nfail"] - b["nfail"],
             dups=s["ndup"] - b["ndup"], settled=int(s["settled"]))
    key = (rate, mode)
    if rate not in order:
        order.append(rate)
    rows.setdefault(key, []).append(r)

def med(rs, k):
    vals = [x[k] for x in rs if x[k] is not None]
    return statistics.median(vals) if vals else None

def f(v, fmt):
    return "-" if v is None else fmt % v

def target(rate):
    return "unlimited" if rate == "0" else f"{int(rate)/1e3:g}k"

nr = max(len(v) for v in rows.values())
print(f"\n#### {label or 'nats.sh'}\n")
print(f"`{cmdline}` — median of {nr} round(s) per step; {host}\n")
if any(k[1] == "nats" for k in rows):
    print("With `--nats` (3-node cluster, stream with 3 replicas):\n")
    print("| target ev/s | offered ev/s | into the NATS sink ev/s | acked by NATS ev/s "
          "| NATS dropped "
          "| kernel dropped | pending at end of step | backlog peak MiB | catch-up s "
          "| ack mean ms | ack p99 ms | retries | rounds with loss |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rate in order:
        rs = rows.get((rate, "nats"))
        if not rs:
            continue
        lossy = [x for x in rs if x["ndrop"] or x["kdrop"] or x["fdrop"]]
        loss = "%d/%d" % (len(lossy), len(rs)) + "".join(
            " (r%s: NATS %d, kernel %d, file %d)" % (x["rnd"], x["ndrop"], x["kdrop"], x["fdrop"])
            for x in lossy)
        print(f"| {target(rate)} | {med(rs,'offered'):.0f} | {med(rs,'nats_rate'):.0f} "
              f"| {med(rs,'ack_rate'):.0f} | {med(rs,'ndrop'):.0f} | {med(rs,'kdrop'):.0f} "
              f"| {med(rs,'pend'):.0f} | {med(rs,'peak'):.1f} | {med(rs,'catchup'):.1f} "
              f"| {f(med(rs,'ack_mean'),'%.1f')} | {f(med(rs,'ack_p99'),'%.0f')} "
              f"| {med(rs,'retries'):.0f} | {loss} |")
if any(k[1] == "file" for k in rows) and any(k[1] == "nats" for k in rows):
    print("\nSide by side, the same steps in the same rounds (CPU over the step and its "
          "catch-up, per\n1M events serialized):\n")
    print("| target ev/s | offered ev/s without / with | into the file sink ev/s without / with "
          "| file dropped without / with | kernel ring fill peak without / with "
          "| lifemon CPU s/1M without --nats | with --nats "
          "| ratio | lifemon CPU without / with | nats-server CPU s/1M (3 servers) "
          "| nats-server CPU | (lifemon + servers) / lifemon without |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate in order:
        a, n = rows.get((rate, "file")), rows.get((rate, "nats"))
        if not a or not n:
            continue
        ca, cn, cs = med(a, "lm_cpu"), med(n, "lm_cpu"), med(n, "srv_cpu")
        print(f"| {target(rate)} | {med(a,'offered'):.0f} / {med(n,'offered'):.0f} "
              f"| {med(a,'file_rate'):.0f} / {med(n,'file_rate'):.0f} "
              f"| {med(a,'fdrop'):.0f} / {med(n,'fdrop'):.0f} "
              f"| {max(x['kpeak'] for x in a):.2f} / {max(x['kpeak'] for x in n):.2f} "
              f"| {ca:.2f} | {cn:.2f} | {cn/ca:.1f}x | {med(a,'lm_pct'):.0f}% / "
              f"{med(n,'lm_pct'):.0f}% | {cs:.2f} | {med(n,'srv_pct'):.0f}% "
              f"| {(cn+cs)/ca:.1f}x |")
unsettled = [(k, x["rnd"]) for k, rs in rows.items() for x in rs if not x["settled"]]
odd = [(k, x) for k, rs in rows.items() for x in rs if x["failures"] or x["dups"]]
print("\nrates: over the step (synth-load's run), from /metrics read as it ended (into a sink: "
      "its delivered + dropped + pending); catch-up: "
      "from then until every event counted had been written and acked; CPU "
      "(process_cpu_seconds_total; the servers' utime + stime from /proc) over the step and "
      "its catch-up, 100% = one core; ack latency from lifemon_nats_ack_seconds over the "
      "same span (p99 interpolated within a bucket); backlog peak since lifemon started; "
      "kernel ring fill peak: the highest lifemon_kernel_ring_fill_peak_ratio of the rounds "
      "(since lifemon started; lifemon's consumers stop waiting at 0.75).")
if unsettled:
    print("\nNot caught up within --settle: " + ", ".join(
        "%s/%s round %s" % (target(k[0]), k[1], r) for k, r in unsettled))
if odd:
    print("\nPublish failures or duplicates: " + ", ".join(
        "%s round %s: %d failures, %d duplicates" % (target(k[0]), x["rnd"], x["failures"],
                                                    x["dups"]) for k, x in odd))
print("\nLoad average (1/5/15 min) at start: %s; at end: %s; %s s in all."
      % (" ".join(load0.split()[:3]), " ".join(load1.split()[:3]), wall))
EOF
)
echo "$REPORT"
echo
echo "Per round (the stream read back with lifemon --nats-tail after lifemon's exit):"
echo
cat "$OUT/rounds.txt"
log "raw steps: $STEPS"
if [ -z "$REPORT_ONLY" ]; then
	[ -s "$STEPS" ] || FAIL+=" no step recorded;"
	[ -z "$FAIL" ] || die "failed:$FAIL"
	[ "$SMOKE" = 0 ] || log "--smoke: ok"
fi
