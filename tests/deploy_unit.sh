#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Checks deploy/systemd/lifemon.service as `make install` installs it, without a running
# systemd: installs a release build of lifemon under a prefix in the build directory, runs
# `systemd-analyze verify` (no output allowed) and `security --offline` (exposure bounded) on
# the installed unit, then, as root, runs the installed binary the way the unit would: with
# exactly its CapabilityBoundingSet, NoNewPrivileges and the arguments of the installed
# /etc/default/lifemon (--listen moved to a free loopback port, --output into the test's
# directory), once as root and once with --user nobody, each until it reports an exec of a
# process the test starts; a third run, under strace and publishing to a JetStream server of
# its own (nats-server on a free loopback port, store in the build directory), checks that
# lifemon makes no call in the unit's SystemCallFilter deny list and opens no socket family
# outside RestrictAddressFamilies. Starts lifemon, strace, nats-server and curl, and stops
# them by pid.
#   deploy_unit.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
work=$2/deploy-unit
name=deploy_unit
fails=0
lm_pid=
nats_pid=

fail() {
	echo "FAIL: $name: $*" >&2
	fails=$((fails + 1))
}

cleanup() {
	if [ -n "$lm_pid" ] && kill -0 "$lm_pid" 2>/dev/null; then
		kill -KILL "$lm_pid" 2>/dev/null || true
	fi
	if [ -n "$nats_pid" ]; then
		kill -TERM "$nats_pid" 2>/dev/null || true
		wait "$nats_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
# set -e ends the test at an unexpected failure: say where
trap 'echo "FAIL: $name: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
echo "$name: release build installed under $prefix"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLM_FAULT_INJECT=OFF \
	-DCMAKE_INSTALL_PREFIX="$prefix" >"$work/configure.log"
cmake --build "$work/build" -j"$(nproc)" --target lifemon >"$work/build.log"
cmake --install "$work/build" >"$work/install.log"

unit=$prefix/lib/systemd/system/lifemon.service
deffile=$prefix/etc/default/lifemon
for f in "$prefix/bin/lifemon" "$unit" "$deffile" "$prefix/share/man/man8/lifemon.8.gz" \
	"$prefix/share/doc/lifemon/README.md" "$prefix/share/doc/lifemon/copyright"; do
	[ -f "$f" ] || fail "make install left no $f"
done
grep -qx "ExecStart=$prefix/bin/lifemon \$LIFEMON_ARGS" "$unit" ||
	fail "the installed unit does not start $prefix/bin/lifemon \$LIFEMON_ARGS"
grep -qx "EnvironmentFile=-$deffile" "$unit" ||
	fail "the installed unit does not read $deffile"

# verify checks the unit's syntax, its commands and (with MANPATH) its Documentation= page
out=$(MANPATH=$prefix/share/man systemd-analyze verify "$unit" 2>&1) || fail "verify failed"
if [ -n "$out" ]; then
	fail "systemd-analyze verify $unit said:"
	echo "$out" | sed 's/^/    /' >&2
fi
# 0-100, printed as 0.0-10.0: the hardening scores 3.0 today; more is a regression
if ! out=$(systemd-analyze security --offline=true --threshold=30 "$unit" 2>&1); then
	fail "systemd-analyze security: $(echo "$out" | grep 'Overall exposure')"
fi
echo "$name: verify clean, $(echo "$out" | grep -o 'Overall exposure.*')"

if [ "$(id -u)" -ne 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
	if [ "${CI:-}" = true ]; then
		fail "the runs under the unit's capabilities need root and BTF"
		exit 1
	fi
	echo "SKIP: $name: the runs under the unit's capabilities need root and BTF" >&2
	[ "$fails" -eq 0 ] && exit 77
	exit 1
fi

# the bounding set and no_new_privs, as systemd would apply them
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
bset=-all
for c in $caps; do
	c=${c#CAP_}
	bset+=",+${c,,}"
done
nnp=()
grep -qx 'NoNewPrivileges=yes' "$unit" && nnp=(--no-new-privs)
# the arguments, as systemd would read them from EnvironmentFile=
args=$(
	set +u
	. "$deffile"
	echo "$LIFEMON_ARGS"
)
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
port=$(free_port)
run_args=$(echo "$args" | sed -E "s#--listen [^ ]+#--listen 127.0.0.1:$port#")
[ "$run_args" != "$args" ] || fail "no --listen in LIFEMON_ARGS '$args'"
logdir=$(echo "$args" | sed -nE 's#.*--output (/var/log/lifemon)/[^ ]+.*#\1#p')
[ -n "$logdir" ] || fail "LIFEMON_ARGS '$args' do not write to the unit's LogsDirectory"
echo "$name: bounding set $bset ${nnp[*]}; LIFEMON_ARGS $args"

# Starts lifemon under the unit's bounding set ($1: the log dir standing in for
# /var/log/lifemon; then a command to run lifemon under, and after -- more arguments), waits
# for /healthz, runs a marked process and waits until its EXEC is in the output file. Leaves
# lm_pid (lifemon, or the command lifemon runs under) running.
start_and_see_exec() {
	local dir=$1 marker i
	shift
	local a=${run_args//\/var\/log\/lifemon\//$dir/}
	local pre=() extra=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		pre+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	extra=("$@")
	# word splitting of $a is what systemd does with $LIFEMON_ARGS
	# shellcheck disable=SC2086
	setpriv --bounding-set "$bset" "${nnp[@]}" -- "${pre[@]}" "$prefix/bin/lifemon" $a \
		"${extra[@]}" 2>"$dir/stderr" &
	lm_pid=$!
	for i in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
		if ! kill -0 "$lm_pid" 2>/dev/null; then
			fail "lifemon exited at start: $(tail -3 "$dir/stderr")"
			return 1
		fi
		sleep 0.1
	done
	marker=lm-deploy-unit-$$-$RANDOM
	/bin/sh -c 'exit 0' "$marker"
	for i in $(seq 100); do
		grep -q "\"type\":\"EXEC\".*\"$marker\"" "$dir/events.jsonl" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no EXEC of $marker in $dir/events.jsonl within 10 s"
	return 1
}

stop_lifemon() {
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	lm_pid=
	return $rc
}

# 1: as the unit runs it by default (uid 0, no --user)
d=$work/run-root
mkdir -p "$d"
if start_and_see_exec "$d"; then
	stop_lifemon "$lm_pid" || fail "lifemon (root) exited $? on SIGTERM: $(tail -3 "$d/stderr")"
	grep -q 'dropped privileges: uid 0, capabilities none' "$d/stderr" ||
		fail "lifemon (root) did not drop its capabilities: $(tail -3 "$d/stderr")"
	echo "$name: run as root with the unit's capabilities: exec seen, exit 0"
fi

# 2: with --user, which needs the CAP_SETUID, CAP_SETGID and CAP_CHOWN of the set. Without
# CAP_DAC_OVERRIDE, root opens the file in a directory it owns and the user's group may write.
d=$work/run-user
mkdir -p "$d"
chown "root:$(id -gn nobody)" "$d"
chmod 0770 "$d"
if start_and_see_exec "$d" -- --user nobody; then
	stop_lifemon "$lm_pid" || fail "lifemon (--user) exited $? on SIGTERM: $(tail -3 "$d/stderr")"
	grep -q "dropped privileges: uid $(id -u nobody)," "$d/stderr" ||
		fail "lifemon --user nobody did not switch: $(tail -3 "$d/stderr")"
	echo "$name: run with --user nobody and the unit's capabilities: exec seen, exit 0"
fi

# 3: under strace, publishing to JetStream too: every call lifemon makes, checked against
# the unit's filters
d=$work/run-strace
mkdir -p "$d"
nport=$(free_port)
nats-server -js -a 127.0.0.1 -p "$nport" -sd "$d/js" >"$d/nats.log" 2>&1 &
nats_pid=$!
for i in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break
	sleep 0.1
done
if start_and_see_exec "$d" strace -f -qq -o "$d/trace" -- --nats "nats://127.0.0.1:$nport" \
	--nats-replicas 1; then
	delivered=0
	for i in $(seq 100); do
		delivered=$(curl -fs "http://127.0.0.1:$port/metrics" |
			sed -n 's/^lifemon_sink_delivered_total{sink="nats"} //p')
		[ "${delivered:-0}" -gt 0 ] && break
		sleep 0.1
	done
	[ "${delivered:-0}" -gt 0 ] ||
		fail "no event acked by nats-server within 10 s: $(tail -3 "$d/stderr")"
	curl -fs "http://127.0.0.1:$port/" >/dev/null || fail "GET / failed"
	# lm_pid is strace; SIGTERM goes to lifemon, its child
	lp=$(ps --ppid "$lm_pid" -o pid= | tr -d ' ')
	kill -HUP "$lp"
	sleep 0.5
	kill -TERM "$lp"
	wait "$lm_pid" || fail "strace/lifemon exited $?: $(tail -3 "$d/stderr")"
	lm_pid=
	used=$(sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p
		s/^[0-9]+ +<\.\.\. ([a-z0-9_]+) resumed>.*/\1/p' "$d/trace" | sort -u)
	groups=$(sed -n 's/^SystemCallFilter=~//p' "$unit")
	denied=
	while [ -n "$groups" ]; do
		list=$(systemd-analyze syscall-filter $groups | awk '/^    [@a-z0-9_]+$/ { print $1 }')
		denied+=" $(echo "$list" | grep -v '^@' || true)"
		groups=$(echo "$list" | grep '^@' | tr '\n' ' ' || true)
	done
	bad=$(comm -12 <(echo "$used") <(echo "$denied" | tr ' ' '\n' | sort -u))
	[ -z "$bad" ] || fail "lifemon calls what SystemCallFilter denies: $bad"
	fams=$(grep -oE 'socket\(AF_[A-Z0-9]+' "$d/trace" | sed 's/socket(//' | sort -u)
	allowed=$(sed -n 's/^RestrictAddressFamilies=//p' "$unit" | tr ' ' '\n')
	bad=$(comm -23 <(echo "$fams") <(echo "$allowed" | sort -u))
	[ -z "$bad" ] || fail "lifemon opens sockets RestrictAddressFamilies refuses: $bad"
	echo "$name: under strace, $delivered events acked by JetStream: $(echo "$used" | wc -w)" \
		"distinct calls, none denied; socket families $(echo $fams)"
fi
kill -TERM "$nats_pid"
wait "$nats_pid" || true
nats_pid=

if [ "$fails" -ne 0 ]; then
	echo "$name: $fails problem(s)" >&2
	exit 1
fi
echo "$name: ok"
