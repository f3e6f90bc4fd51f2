#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=dash
# Kernel matrix (tests/vm): /init of the guest's initramfs, built by tests/vm/run.sh. Starts
# lifemon (/vm/lifemon), runs the smoke set (exit code, SIGKILL, memcg OOM kill, exit_group
# storms), stops lifemon with SIGTERM and has /vm/vm_check judge its JSON Lines file, then
# runs the integration tests in /vm/it (if any) with CI=true. Every
# line for the host starts with "LMVM " on the serial console; then the guest powers off.
# Programs are called by full path: busybox runs bare applet names without an exec.
# Kernel command line: lmvm.storm=PROCSxTHREADSxROUNDS.

/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox --install -s /bin
export PATH=/bin

say() { echo "LMVM $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
result() { say "RESULT $*"; }
finish() {
	say "DONE uptime=$(uptime_s)"
	sync
	/bin/poweroff -f
}

storm=200x16x1
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	lmvm.storm=*) storm=${arg#lmvm.storm=} ;;
	esac
done
storm_procs=${storm%%x*}
storm_threads=${storm#*x}
storm_threads=${storm_threads%%x*}
storm_rounds=${storm##*x}

say "KERNEL $(uname -r) $(uname -v)"
say "CPUS $(grep -c ^processor /proc/cpuinfo) MEM_KB $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
preempt=none
grep -q PREEMPT_RT /proc/version && preempt=rt
say "PREEMPT $preempt"

/bin/ip link set lo up
/bin/mount -t cgroup2 cgroup2 /sys/fs/cgroup || result cgroup FAIL "cannot mount cgroup2"

# --- lifemon ---
/vm/lifemon --listen 127.0.0.1:8080 --output /tmp/ev.jsonl 2>/tmp/lifemon.err &
lm=$!
healthy=0
i=0
while [ $i -lt 600 ]; do
	if ! [ -d /proc/$lm ]; then
		break
	fi
	if /bin/wget -q -O /tmp/healthz http://127.0.0.1:8080/healthz 2>/dev/null; then
		healthy=1
		break
	fi
	/bin/sleep 0.1
	i=$((i + 1))
done
if [ $healthy -ne 1 ]; then
	wait $lm
	rc=$?
	result attach FAIL "lifemon not healthy after 60 s (exit status $rc if it ended)"
	sed 's/^/LMVM LOG /' /tmp/lifemon.err
	finish
fi
result attach PASS "healthy at uptime=$(uptime_s)"
say "STEP attached uptime=$(uptime_s)"

# --- exit code, then SIGKILL (killed only after its exec, so its EXEC exists) ---
/vm/vm_work exit 7 &
p_exit=$!
wait $p_exit
say "STEP exit7 pid=$p_exit status=$?"

/vm/vm_work hang &
p_kill=$!
i=0
while [ "$(cat /proc/$p_kill/comm 2>/dev/null)" != vm_work ] && [ $i -lt 200 ]; do
	/bin/sleep 0.05
	i=$((i + 1))
done
/bin/kill -9 $p_kill
wait $p_kill
say "STEP kill9 pid=$p_kill status=$?"

# --- a real OOM kill, confined to a 32 MiB memory cgroup ---
cg=/sys/fs/cgroup/lmvm-oom
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
/bin/mkdir -p $cg
echo 32M >$cg/memory.max
[ -e $cg/memory.swap.max ] && echo 0 >$cg/memory.swap.max
/vm/vm_work oom $cg &
p_oom=$!
wait $p_oom
st=$?
say "STEP oom pid=$p_oom status=$st oom_kill=$(awk '/^oom_kill / {print $2}' $cg/memory.events)"

# --- exit_group storms: every process ends while all its threads are alive ---
storm_args=""
r=1
while [ $r -le "$storm_rounds" ]; do
	t0=$(uptime_s)
	/vm/vm_work storm "$storm_procs" "$storm_threads" /tmp/storm$r.pids
	st=$?
	say "STEP storm$r status=$st from=$t0 to=$(uptime_s)"
	[ $st -eq 0 ] || result storm${r}_run FAIL "vm_work storm exited $st"
	storm_args="$storm_args --storm /tmp/storm$r.pids:42"
	r=$((r + 1))
done

# --- the books, once the reader has caught up (vm_check polls /metrics); then SIGTERM ---
/vm/vm_check --poll-books 8080 /tmp/metrics
say "STEP metrics uptime=$(uptime_s)"

/bin/kill -TERM $lm
i=0
while [ -d /proc/$lm ] && [ "$(cat /proc/$lm/stat 2>/dev/null | cut -d' ' -f3)" != Z ] &&
	[ $i -lt 300 ]; do
	/bin/sleep 0.1
	i=$((i + 1))
done
if [ -d /proc/$lm ] && [ "$(cut -d' ' -f3 /proc/$lm/stat)" != Z ]; then
	result shutdown FAIL "lifemon still running 30 s after SIGTERM"
	/bin/kill -9 $lm
fi
wait $lm
st=$?
if [ $st -eq 0 ]; then result shutdown PASS "exit 0"; else result shutdown FAIL "exit $st"; fi
sed 's/^/LMVM LOG /' /tmp/lifemon.err
say "STEP stopped uptime=$(uptime_s)"

# shellcheck disable=SC2086 # storm_args is a list of options
/vm/vm_check /tmp/ev.jsonl --exit "$p_exit:7" --signal "$p_kill:9" --oom "$p_oom" \
	$storm_args --metrics /tmp/metrics 2>&1 | sed 's/^vm_check:/LMVM LOG vm_check:/'
say "STEP checked uptime=$(uptime_s)"

# --- the integration tests themselves, each against a fresh lifemon; CI=true: no skipping ---
for t in /vm/it/it_*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	t0=$(uptime_s)
	CI=true LM_IT_EMULATED=1 /bin/timeout 200 "$t" /vm/lifemon >"/tmp/$name.log" 2>&1
	st=$?
	if [ $st -eq 0 ]; then
		result "$name" PASS "from=$t0 to=$(uptime_s)"
	else
		result "$name" FAIL "exit $st from=$t0 to=$(uptime_s)"
		{ grep "^FAIL" "/tmp/$name.log"; tail -n 40 "/tmp/$name.log"; } |
			sed "s/^/LMVM LOG $name: /"
	fi
done
finish
