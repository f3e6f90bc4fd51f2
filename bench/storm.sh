#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# storm.sh: fork/exec storm benchmark of lifemon against its peers (bpftrace one-liner,
# forkstat, bcc snoops) and no monitor at all, alternating contenders over several rounds;
# --pause adds a SIGSTOP experiment. Root only. Starts forkbomb-lite, the contenders and the
# WS clients (bench/ws_sink.py), and stops only those, by pid. Accounting: bench/storm_check.py.
#
# usage: bench/storm.sh [--pause | --pause-only] [--no-append] [--smoke] [--help]
#   --smoke  a few seconds, for make test: lifemon only, one round of 100 children at 16 live,
#            nothing appended; fails unless lifemon's file and both WS clients saw them all
#            and its /metrics gave the kernel ring bytes per record
# Per run (runs.jsonl, the report): BPF ns per run of each program, ring bytes per record.
# env:   ROUNDS=3 SHAPES="16 64" TOTAL=100000 LIMIT_S=10 PAUSE=60 PAUSE_LIVE=64 PAUSE_MARGIN=10
#        CONTENDERS="none lifemon bpftrace forkstat bcc"
#        PAUSE_CONTENDERS="lifemon lifemon:32M bpftrace forkstat" (lifemon:32M: --ring-size 32M)
#        LIFEMON=build/lifemon FORKBOMB=(built from bench/forkbomb-lite.c) PORT_BASE=18200
#        OUT=(mktemp -d /tmp/storm.XXXXXX) BENCH_MD=BENCHMARKS.md PYTHON=python3
#        BPF_STATS=1 (sets kernel.bpf_stats_enabled for the run, restored at exit)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_VARS="ROUNDS SHAPES TOTAL LIMIT_S PAUSE PAUSE_LIVE PAUSE_MARGIN CONTENDERS PAUSE_CONTENDERS
	  LIFEMON FORKBOMB PORT_BASE BPF_STATS"
CMDLINE=""
for v in $ENV_VARS; do
	[ -n "${!v+x}" ] && CMDLINE+="$v=\"${!v}\" "
done
CMDLINE+="bench/storm.sh${*:+ $*}"

ROUNDS=${ROUNDS:-3}
SHAPES=${SHAPES:-"16 64"}
TOTAL=${TOTAL:-100000}
LIMIT_S=${LIMIT_S:-10}
PAUSE=${PAUSE:-60}
PAUSE_LIVE=${PAUSE_LIVE:-64}
PAUSE_MARGIN=${PAUSE_MARGIN:-10}
CONTENDERS=${CONTENDERS:-"none lifemon bpftrace forkstat bcc"}
PAUSE_CONTENDERS=${PAUSE_CONTENDERS:-"lifemon lifemon:32M bpftrace forkstat"}
LIFEMON=${LIFEMON:-$ROOT/build/lifemon}
FORKBOMB=${FORKBOMB:-}
PORT_BASE=${PORT_BASE:-18200}
BENCH_MD=${BENCH_MD:-$ROOT/BENCHMARKS.md}
PY=${PYTHON:-python3}
BPF_STATS=${BPF_STATS:-1}
CHECK="$ROOT/bench/storm_check.py"

DO_STORM=1
DO_PAUSE=0
DO_APPEND=1
SMOKE=0
for a in "$@"; do
	case "$a" in
	--pause) DO_PAUSE=1 ;;
	--pause-only) DO_PAUSE=1; DO_STORM=0 ;;
	--no-append) DO_APPEND=0 ;;
	--smoke)
		SMOKE=1 DO_APPEND=0 ROUNDS=1 SHAPES=16 TOTAL=100 LIMIT_S=10 CONTENDERS=lifemon
		PAUSE_CONTENDERS="" BPF_STATS=0 ;;
	-h|--help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "storm.sh: unknown option '$a' (see --help)" >&2; exit 2 ;;
	esac
done

die() { echo "storm.sh: $*" >&2; exit 2; }
log() { printf '%s storm: %s\n' "$(date +%T)" "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
	# make test: not run (ctest SKIP_RETURN_CODE), except in CI
	[ "$SMOKE" = 1 ] && [ "${CI:-}" != true ] && { echo "SKIP: storm.sh: needs root" >&2; exit 77; }
	die "needs root (BPF)"
fi
[ -x "$LIFEMON" ] || die "no lifemon at $LIFEMON: run 'cmake --preset dev && cmake --build build -j2'"
command -v "$PY" >/dev/null || die "no $PY"
command -v curl >/dev/null || die "no curl"
for n in ROUNDS TOTAL LIMIT_S PAUSE PAUSE_LIVE PAUSE_MARGIN PORT_BASE; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, got '${!n}'"
done
[ "$PORT_BASE" -ge 18200 ] || die "PORT_BASE must be 18200 or above"

OUT=${OUT:-$(mktemp -d /tmp/storm.XXXXXX)}
mkdir -p "$OUT" || die "cannot create $OUT"
RECORDS="$OUT/runs.jsonl"
: > "$RECORDS"

# --- processes we started: cleaned up by pid on any exit ---
OURS=()
TRACEFS_MOUNTED=0
BPF_STATS_OLD=""
cleanup() {
	local p k
	for p in "${OURS[@]}"; do
		# only our own children: the parent must still be this shell
		if [ -r "/proc/$p/stat" ] && [ "$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)" = $$ ]; then
			# the storm loop's forkbomb-lite first (its children die with it: PDEATHSIG)
			for k in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill -TERM "$k" 2>/dev/null; done
			kill -CONT "$p" 2>/dev/null
			kill -KILL "$p" 2>/dev/null
		fi
	done
	wait 2>/dev/null
	[ "$TRACEFS_MOUNTED" = 1 ] && umount /sys/kernel/tracing 2>/dev/null
	[ -n "$BPF_STATS_OLD" ] && echo "$BPF_STATS_OLD" > /proc/sys/kernel/bpf_stats_enabled
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools: a frozen copy of lifemon (others may rebuild build/), forkbomb-lite, markers ---
cp "$LIFEMON" "$OUT/lifemon" || die "cannot copy $LIFEMON"
LM_REV="build of $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git -C "$ROOT" status --porcelain -- core net bpf 2>/dev/null)" ] &&
	LM_REV+=" + uncommitted core/net/bpf changes"
LM_REV+=" ($(basename "$LIFEMON") of $(date -r "$LIFEMON" '+%F %T'), sha256 $(sha256sum "$OUT/lifemon" | cut -c1-12))"
if [ -z "$FORKBOMB" ]; then
	FORKBOMB="$OUT/forkbomb-lite"
	cc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -o "$FORKBOMB" "$ROOT/bench/forkbomb-lite.c" ||
		die "cannot build bench/forkbomb-lite.c"
fi
# uniquely named copies of /bin/true: storm children (comm "stormchild") and markers
cp /bin/true "$OUT/stormchild" && cp /bin/true "$OUT/stormmark" || die "cannot copy /bin/true"

SKIPPED_JSON="{}"
skip() { # contender reason
	SKIPPED_JSON=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]=sys.argv[3]; print(json.dumps(d))' \
		"$SKIPPED_JSON" "$1" "$2")
	log "skip $1: $2"
}
has() { [[ " $1 " == *" $2 "* ]]; }

# bpftrace resolves tracepoint:sched:* through tracefs; mount it for the run if absent
if has "$CONTENDERS $PAUSE_CONTENDERS" bpftrace && [ ! -d /sys/kernel/tracing/events/sched ]; then
	if mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
		TRACEFS_MOUNTED=1
		log "mounted tracefs on /sys/kernel/tracing for bpftrace (unmounted at exit)"
	fi
fi
BT_OK=1 FS_OK=1
if has "$CONTENDERS $PAUSE_CONTENDERS" bpftrace; then
	if ! command -v bpftrace >/dev/null; then BT_OK=0; skip bpftrace "not installed"
	elif [ ! -d /sys/kernel/tracing/events/sched ]; then BT_OK=0; skip bpftrace "no tracefs"; fi
fi
if has "$CONTENDERS $PAUSE_CONTENDERS" forkstat && ! command -v forkstat >/dev/null; then
	FS_OK=0
	skip forkstat "not installed"
fi
if has "$CONTENDERS" bcc; then
	why=""
	if ! command -v execsnoop-bpfcc >/dev/null && ! command -v exitsnoop-bpfcc >/dev/null; then
		why="not installed"
	else
		why="installed"
	fi
	[ -e /sys/kernel/tracing/kprobe_events ] || why+="; not runnable here: no kprobes (CONFIG_KPROBES unset)"
	if [ "$why" = installed ]; then
		why="installed and perhaps runnable, but not measured by this storm.sh"
	fi
	skip bcc "$why"
fi

# run_time_ns/run_cnt of BPF programs (fdinfo) need kernel.bpf_stats_enabled
if [ "$BPF_STATS" = 1 ] && [ -w /proc/sys/kernel/bpf_stats_enabled ]; then
	BPF_STATS_OLD=$(cat /proc/sys/kernel/bpf_stats_enabled)
	echo 1 > /proc/sys/kernel/bpf_stats_enabled
fi

# --- helpers ---
bpf_stats() { # pid: "run_time_ns run_cnt" summed over the BPF programs it holds open
	awk '/^prog_id:/ {id[FILENAME] = $2} /^run_time_ns:/ {rt[FILENAME] = $2}
	     /^run_cnt:/ {rc[FILENAME] = $2}
	     END {for (f in rt) if (!(id[f] in seen)) {seen[id[f]] = 1; t += rt[f]; c += rc[f]}
		  printf "%d %d\n", t, c}' /proc/"$1"/fdinfo/* 2>/dev/null || echo "0 0"
}
cpu_ns() { # pid: CPU time of all its threads, ns (schedstat: on-CPU time)
	local s=0 t a
	for t in /proc/"$1"/task/*/schedstat; do
		read -r a _ < "$t" 2>/dev/null && s=$((s + a))
	done
	echo "$s"
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
free_port() {
	local p
	for ((p = PORT_BASE; p < PORT_BASE + 100; p++)); do
		[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	return 1
}
mark() { # runs one marker process; prints its pid
	"$OUT/stormmark" &
	local p=$!
	wait "$p"
	echo "$p"
}
seen_exit() { # format file pid
	case "$1" in
	lifemon) grep -qF "\"type\":\"EXIT\",\"pid\":$3," "$2" 2>/dev/null ;;
	bpftrace) grep -q "^EXIT $3 " "$2" 2>/dev/null ;;
	forkstat) grep -Eq "^[^ ]+ +exit +$3 " "$2" 2>/dev/null ;;
	esac
}
all_seen() { # pid outs...
	local pid=$1 o fmt path
	shift
	for o in "$@"; do
		fmt=${o#*:}; fmt=${fmt%%:*}; path=${o#*:*:}
		seen_exit "$fmt" "$path" "$pid" || return 1
	done
	return 0
}
wait_seen() { # timeout_s pid: until every output shows the pid's EXIT
	local end=$(($(date +%s) + $1)) pid=$2
	while [ "$(date +%s)" -lt "$end" ]; do
		all_seen "$pid" "${OUTS[@]}" && return 0
		alive "$CPID" || return 1
		sleep 0.2
	done
	return 1
}
catch_up() { # timeout_s: marker processes until one shows in every output
	local end=$(($(date +%s) + $1)) p
	while [ "$(date +%s)" -lt "$end" ]; do
		p=$(mark)
		# a lossy contender (forkstat) may miss one marker: try a new one after 5 s
		wait_seen 5 "$p" && return 0
		alive "$CPID" || return 1
	done
	return 1
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
metric() { # name{labels} -> value
	curl -s --max-time 5 "$METRICS_URL" | awk -v k="$1" '$1 == k {print $2}'
}

# --- contenders: set CPID (process measured), CLIENTS, OUTS, STOP_SIG ---
CPID="" CLIENTS=() OUTS=() STOP_SIG=TERM METRICS_URL="" READY_PID=""
start_contender() { # name run_dir n_ws_clients
	local name=$1 run=$2 nws=${3:-2} i port end ring=()
	CPID="" CLIENTS=() OUTS=() STOP_SIG=TERM METRICS_URL="" READY_PID=""
	case "$name" in
	none) return 0 ;;
	lifemon|lifemon:*)
		[ "$name" != lifemon ] && ring=(--ring-size "${name#lifemon:}")
		port=$(free_port) || { log "no free port from $PORT_BASE"; return 1; }
		"$OUT/lifemon" --listen "127.0.0.1:$port" --output "$run/lifemon.jsonl" "${ring[@]}" \
			2> "$run/lifemon.err" &
		CPID=$!
		OURS+=("$CPID")
		METRICS_URL="http://127.0.0.1:$port/metrics"
		end=$(($(date +%s) + 20))
		until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
			"http://127.0.0.1:$port/healthz")" = 200 ]; do
			alive "$CPID" && [ "$(date +%s)" -lt "$end" ] ||
				{ log "lifemon did not become healthy: $(tail -1 "$run/lifemon.err")"; return 1; }
			sleep 0.1
		done
		OUTS=("file:lifemon:$run/lifemon.jsonl")
		for ((i = 1; i <= nws; i++)); do
			"$PY" "$ROOT/bench/ws_sink.py" --url "ws://127.0.0.1:$port/ws" \
				--out "$run/ws$i.jsonl" 2> "$run/ws$i.err" &
			CLIENTS+=($!)
			OURS+=($!)
			OUTS+=("ws$i:lifemon:$run/ws$i.jsonl")
		done
		end=$(($(date +%s) + 20))
		until [ "$(metric lifemon_ws_clients)" = "$nws" ]; do
			[ "$(date +%s)" -lt "$end" ] || { log "WS clients did not connect"; return 1; }
			sleep 0.1
		done
		;;
	bpftrace)
		[ "$BT_OK" = 1 ] || return 1
		bpftrace "$ROOT/bench/peers/lifecycle.bt" > "$run/bpftrace.txt" 2> "$run/bpftrace.err" &
		CPID=$!
		OURS+=("$CPID")
		STOP_SIG=INT
		OUTS=("bpftrace:bpftrace:$run/bpftrace.txt")
		;;
	forkstat)
		[ "$FS_OK" = 1 ] || return 1
		# -l: line-buffered, so catch-up can be seen (bpftrace also writes once per event)
		forkstat -l -e exec,exit > "$run/forkstat.txt" 2> "$run/forkstat.err" &
		CPID=$!
		OURS+=("$CPID")
		OUTS=("forkstat:forkstat:$run/forkstat.txt")
		;;
	*) return 1 ;;
	esac
	# ready when every output shows a marker process's EXIT (bpftrace needs seconds to attach)
	end=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$end" ]; do
		alive "$CPID" || { log "$name exited while starting"; return 1; }
		READY_PID=$(mark)
		if wait_seen 3 "$READY_PID"; then
			return 0
		fi
	done
	log "$name never showed a marker event"
	return 1
}

stop_pid() { # pid signal timeout_s
	local p=$1 end=$(($(date +%s) + $3))
	alive "$p" || { wait "$p" 2>/dev/null; return 0; }
	kill -CONT "$p" 2>/dev/null
	kill -"$2" "$p" 2>/dev/null
	while alive "$p" && [ "$(date +%s)" -lt "$end" ]; do
		# a zombie is no longer alive for us
		[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	if alive "$p" && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
		log "pid $p ignored SIG$2 for $3 s: SIGKILL"
		kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	return 0
}
stop_contender() {
	local c
	[ -n "$CPID" ] && stop_pid "$CPID" "$STOP_SIG" 30
	for c in "${CLIENTS[@]}"; do
		stop_pid "$c" TERM 10 # they normally leave when lifemon closes
	done
}

clients_cpu_ns() {
	local s=0 c
	for c in "${CLIENTS[@]}"; do
		s=$((s + $(cpu_ns "$c")))
	done
	echo "$s"
}

# --- one storm run ---
RUN_SEQ=0
run_storm() { # round shape contender
	local r=$1 s=$2 c=$3 run cpu0 cpu1 cl0=0 cl1=0 hwm="" args=()
	local t0 caught=1 b0=(0 0) b1
	run="$OUT/storm-$(printf %03d $((RUN_SEQ + 1)))-r$r-s$s-$c"
	mkdir -p "$run"
	if ! start_contender "$c" "$run" 2; then
		log "round $r live $s: $c could not start; skipped"
		stop_contender
		return
	fi
	[ -n "$METRICS_URL" ] && curl -s --max-time 5 "$METRICS_URL" > "$run/metrics0.txt"
	cpu0=$( [ -n "$CPID" ] && cpu_ns "$CPID" || echo 0 )
	[ -n "$CPID" ] && read -r -a b0 <<< "$(bpf_stats "$CPID")" &&
		"$PY" "$CHECK" bpfsnap "$CPID" > "$run/bpf0.json"
	[ "${#CLIENTS[@]}" -gt 0 ] && cl0=$(clients_cpu_ns)
	head -1 /proc/stat > "$run/host0"
	"$FORKBOMB" --max-live "$s" --total "$TOTAL" --seconds "$LIMIT_S" --mode exec \
		--exec "$OUT/stormchild" --pids "$run/pids.txt" --json > "$run/fb.json"
	if [ -n "$CPID" ]; then
		t0=$(now)
		catch_up 120 || { caught=0; log "$c did not catch up within 120 s"; }
		[ "$c" = bpftrace ] && sleep 0.5 # per-CPU perf buffers are not merged by time
		args+=(--catchup-s "$(echo "$(now) - $t0" | bc)")
	fi
	head -1 /proc/stat > "$run/host1"
	if [ -n "$CPID" ]; then
		cpu1=$(cpu_ns "$CPID")
		hwm=$(hwm_kb "$CPID")
		args+=(--cpu-ns $((cpu1 - cpu0)) --hwm-kb "$hwm" --after-pid "$READY_PID")
		read -r -a b1 <<< "$(bpf_stats "$CPID")"
		[ "${b1[1]}" -gt "${b0[1]}" ] &&
			args+=(--bpf-ns $((b1[0] - b0[0])) --bpf-runs $((b1[1] - b0[1])))
		# per program: kernel.bpf_stats_enabled counts nothing without BPF_STATS=1
		[ "${b1[1]}" -gt "${b0[1]}" ] && "$PY" "$CHECK" bpfsnap "$CPID" > "$run/bpf1.json" &&
			args+=(--bpf0 "$run/bpf0.json" --bpf1 "$run/bpf1.json")
	fi
	[ "${#CLIENTS[@]}" -gt 0 ] && cl1=$(clients_cpu_ns) && args+=(--extra-cpu-ns $((cl1 - cl0)))
	[ -n "$METRICS_URL" ] && curl -s --max-time 5 "$METRICS_URL" > "$run/metrics1.txt" &&
		args+=(--metrics0 "$run/metrics0.txt" --metrics1 "$run/metrics1.txt")
	[ "$caught" = 0 ] && args+=(--note "did not catch up within 120 s")
	stop_contender
	local o
	for o in "${OUTS[@]}"; do args+=(--out "$o"); done
	RUN_SEQ=$((RUN_SEQ + 1))
	"$PY" "$CHECK" record --kind storm --round "$r" --shape "$s" --contender "$c" --seq "$RUN_SEQ" \
		--pids "$run/pids.txt" --fb "$run/fb.json" --comm stormchild --want-exec \
		--host0 "$run/host0" --host1 "$run/host1" --load "$(cut -d' ' -f1 /proc/loadavg)" \
		"${args[@]}" >> "$RECORDS" ||
		log "record failed for $run"
	log "round $r live $s $c: $(tail -1 "$RECORDS" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
lost = " ".join("%s:%s/%s" % (k, o.get("exec_lost"), o.get("exit_lost"))
		for k, o in r["outputs"].items())
line = ("spawned=%d rate=%.0f/s cpu_s=%.3f lost(exec/exit)=%s"
        % (r["spawned"], r["rate"], r.get("cpu_s", 0), lost or "-"))
if r.get("bpf_runs"):
    line += " bpf_ns/run=%.0f" % (r["bpf_ns"] / r["bpf_runs"])
if "ring_bytes_per_record" in r:
    line += " ring_B/record=%.1f 32M_holds_s=%.0f" % (r["ring_bytes_per_record"],
                                                      r.get("stall_s_32m", 0))
print(line)')"
}

# --- one pause run ---
storm_loop() { # run_dir seconds: back-to-back forkbomb-lite runs (each at most 100000)
	local run=$1 dur=$2 end i=0 left
	end=$(($(date +%s) + dur))
	while left=$((end - $(date +%s))); [ "$left" -gt 0 ]; do
		i=$((i + 1))
		[ "$left" -gt 300 ] && left=300
		"$FORKBOMB" --max-live "$PAUSE_LIVE" --total 100000 --seconds "$left" --mode exec \
			--exec "$OUT/stormchild" --pids "$run/pids.$i.txt" --json >> "$run/fb.json"
	done
}

run_pause() { # contender
	local c=$1 run="$OUT/pause-${1/:/-}" cpu0 loop t_end args=() note=""
	mkdir -p "$run"
	if ! start_contender "$c" "$run" 1; then
		log "pause: $c could not start; skipped"
		stop_contender
		return
	fi
	[ -n "$METRICS_URL" ] && curl -s --max-time 5 "$METRICS_URL" > "$run/metrics0.txt"
	cpu0=$(cpu_ns "$CPID")
	head -1 /proc/stat > "$run/host0"
	storm_loop "$run" $((PAUSE + 2 * PAUSE_MARGIN)) &
	loop=$!
	OURS+=("$loop")
	sleep "$PAUSE_MARGIN"
	log "pause: SIGSTOP $c (pid $CPID) for $PAUSE s"
	kill -STOP "$CPID"
	sleep "$PAUSE"
	kill -CONT "$CPID"
	log "pause: SIGCONT $c"
	wait "$loop"
	t_end=$(now)
	if alive "$CPID"; then
		catch_up 600 || note="did not catch up within 600 s"
		[ "$c" = bpftrace ] && sleep 0.5
	else
		note="$c exited during the experiment: $(tail -1 "$run/${c%%:*}.err" 2>/dev/null)"
	fi
	args+=(--catchup-s "$(echo "$(now) - $t_end" | bc)")
	head -1 /proc/stat > "$run/host1"
	if alive "$CPID"; then
		args+=(--cpu-ns $(($(cpu_ns "$CPID") - cpu0)) --hwm-kb "$(hwm_kb "$CPID")")
	fi
	[ -n "$METRICS_URL" ] && alive "$CPID" && curl -s --max-time 5 "$METRICS_URL" > "$run/metrics1.txt" &&
		args+=(--metrics0 "$run/metrics0.txt" --metrics1 "$run/metrics1.txt")
	[ -n "$note" ] && args+=(--note "$note")
	stop_contender
	local o p
	for o in "${OUTS[@]}"; do args+=(--out "$o"); done
	for p in "$run"/pids.*.txt; do args+=(--pids "$p"); done
	[[ $c == lifemon:* ]] && args+=(--ring "${c#lifemon:}")
	"$PY" "$CHECK" record --kind pause --contender "${c%%:*}" --shape "$PAUSE_LIVE" \
		--fb "$run/fb.json" --comm stormchild --want-exec --after-pid "$READY_PID" \
		--pause-s "$PAUSE" --host0 "$run/host0" --host1 "$run/host1" \
		--load "$(cut -d' ' -f1 /proc/loadavg)" "${args[@]}" \
		>> "$RECORDS" || log "record failed for $run"
	log "pause $c: $(tail -1 "$RECORDS" | cut -c1-400)"
}

foreign_bpf() { # other processes holding BPF programs (they tax every exec, baseline too)
	local p l=""
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		if find "$p/fd" -maxdepth 1 -lname 'anon_inode:bpf-prog' 2>/dev/null | grep -q .; then
			l+="$(cat "$p/comm" 2>/dev/null)(${p#/proc/}) "
		fi
	done
	echo "${l% }"
}

# --- main ---
command -v bc >/dev/null || die "no bc"
FOREIGN0=$(foreign_bpf)
[ -n "$FOREIGN0" ] && log "warning: other BPF users running: $FOREIGN0"
log "output in $OUT; lifemon $LM_REV; load: $(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$(date +%s)
if [ "$DO_STORM" = 1 ]; then
	read -r -a LIST <<< "$CONTENDERS"
	RUNNABLE=()
	for c in "${LIST[@]}"; do
		case "$c" in
		bcc) ;;
		bpftrace) [ "$BT_OK" = 1 ] && RUNNABLE+=("$c") ;;
		forkstat) [ "$FS_OK" = 1 ] && RUNNABLE+=("$c") ;;
		*) RUNNABLE+=("$c") ;;
		esac
	done
	# every contender run sits between two baseline runs (the host is shared and noisy):
	# none c1 none c2 none c3 none, the contender order rotating each round
	MONITORS=()
	for c in "${RUNNABLE[@]}"; do [ "$c" != none ] && MONITORS+=("$c"); done
	BASELINE=0
	has "$CONTENDERS" none && BASELINE=1
	n=${#MONITORS[@]}
	for ((r = 1; r <= ROUNDS; r++)); do
		for s in $SHAPES; do
			[ "$BASELINE" = 1 ] && run_storm "$r" "$s" none
			for ((k = 0; k < n; k++)); do
				run_storm "$r" "$s" "${MONITORS[$(((k + r - 1) % n))]}"
				[ "$BASELINE" = 1 ] && run_storm "$r" "$s" none
			done
		done
	done
fi
if [ "$DO_PAUSE" = 1 ]; then
	for c in $PAUSE_CONTENDERS; do
		case "$c" in
		bpftrace) [ "$BT_OK" = 1 ] || continue ;;
		forkstat) [ "$FS_OK" = 1 ] || continue ;;
		esac
		run_pause "$c"
	done
fi
T_END=$(date +%s)
FOREIGN1=$(foreign_bpf)

PARAMS=""
[ "$DO_STORM" = 1 ] &&
	PARAMS+="storm: forkbomb-lite --mode exec (fork + exec a copy of /bin/true), live children $SHAPES, up to $TOTAL children or $LIMIT_S s per run, $ROUNDS round(s), each contender run between two baseline runs; "
[ "$DO_PAUSE" = 1 ] && PARAMS+="pause: $PAUSE s SIGSTOP after $PAUSE_MARGIN s of a $((PAUSE + 2 * PAUSE_MARGIN)) s storm at $PAUSE_LIVE live children (forkbomb-lite --mode exec, back to back); "
PARAMS+="wall time $((T_END - T_START)) s; raw data in $OUT"
[ -n "$FOREIGN0$FOREIGN1" ] &&
	PARAMS+="; other BPF users on the host: at start ${FOREIGN0:-none}, at end ${FOREIGN1:-none}"
"$PY" - "$OUT/meta.json" "$CMDLINE" "$LM_REV" "$PARAMS" "$SKIPPED_JSON" <<'EOF'
import json, os, subprocess, sys, time
cpu = "?"
for ln in open("/proc/cpuinfo"):
    if ln.startswith("model name"):
        cpu = ln.split(":", 1)[1].strip()
        break
json.dump({"command": sys.argv[2], "lifemon_rev": sys.argv[3], "params": sys.argv[4],
           "skipped": json.loads(sys.argv[5]),
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "kernel": os.uname().release,
           "cpu": cpu, "ncpu": os.cpu_count()}, open(sys.argv[1], "w"))
EOF
if [ "$SMOKE" = 1 ]; then
	# the lifemon path ran end to end: one record, every child seen in every output
	"$PY" - "$RECORDS" "$TOTAL" <<'EOF' || exit 1
import json, sys
recs = [json.loads(ln) for ln in open(sys.argv[1]) if ln.strip()]
lm = [r for r in recs if r.get("contender") == "lifemon"]
if not lm:
    sys.exit("storm.sh --smoke: no lifemon run was recorded (it could not start?)")
r = lm[0]
outs = r.get("outputs", {})
bad = {k: (o.get("exec_lost"), o.get("exit_lost")) for k, o in outs.items()
       if o.get("exec_lost") != 0 or o.get("exit_lost") != 0}
if r.get("spawned") != int(sys.argv[2]) or len(outs) != 3 or bad:
    sys.exit("storm.sh --smoke: spawned %s of %s, outputs %s, lost (exec, exit) %s"
             % (r.get("spawned"), sys.argv[2], sorted(outs), bad))
# the ring-footprint metric reached the record (issue 9 measures bytes per record with it)
if not r.get("ring_bytes_per_record"):
    sys.exit("storm.sh --smoke: no ring bytes per record (lifemon_read_ring_bytes_total "
             "missing from /metrics?)")
print("storm.sh --smoke: %d children, none lost in %s, %.1f ring bytes per record"
      % (r["spawned"], ", ".join(sorted(outs)), r["ring_bytes_per_record"]))
EOF
fi
if [ "$DO_APPEND" = 1 ]; then
	"$PY" "$CHECK" report "$RECORDS" --meta "$OUT/meta.json" --bench "$BENCH_MD"
	log "added to $BENCH_MD"
else
	"$PY" "$CHECK" report "$RECORDS" --meta "$OUT/meta.json"
fi
