#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The Dockerfile, built and run: makes a local debian:12 base with debootstrap (no image registry
# is reachable from the test machines), builds the image with podman, runs it both ways the
# README gives (--privileged --pid=host; the capability list without --pid=host) and checks each
# time that the lifemon inside sees a host process's exec and exit, serves /healthz and /metrics
# to the host, and exits 0 when stopped.
#
# Every piece of state lives under DIR: podman's configuration (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF), its storage, the debootstrap tarball (kept, so later runs skip
# debootstrap) and the logs. Podman 4.3 writes a few files whatever its configuration says
# (runc's state under /run/runc, a blob cache under /var/lib/containers/cache, temporary files
# in /var/tmp), so the script runs in a mount namespace of its own where /run, /var/lib and
# /var/tmp are overlays whose changes land in DIR/ns. Starts debootstrap, podman (build, run),
# two containers one after the other, each stopped and removed by its id, and for each one
# `sh -c 'exit 7'` on the host.
# Exit status: 0 passed, 1 failed, 77 skipped (not root or no BTF, CI unset).
#
# usage: it_image.sh --src DIR --dir DIR [--python PYTHON3]
set -euo pipefail

src="" dir="" python3=/usr/bin/python3
while [ $# -gt 0 ]; do
	case "$1" in
	--src) src=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--python) python3=$2; shift 2 ;;
	*) echo "usage: $0 --src DIR --dir DIR [--python PYTHON3]" >&2; exit 2 ;;
	esac
done
if [ -z "$src" ] || [ -z "$dir" ]; then
	echo "usage: $0 --src DIR --dir DIR" >&2
	exit 2
fi

# Missing preconditions skip loudly, or fail under CI (as tests/it_util.h does).
skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: it_image: $*" >&2
		exit 1
	fi
	echo "SKIP: it_image: $*" >&2
	exit 77
}
fail() {
	echo "FAIL: it_image: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, podman run --privileged, BPF)"
[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF at /sys/kernel/btf/vmlinux"
for tool in podman runc conmon debootstrap unshare curl "$python3" tar timeout apt-get; do
	command -v "$tool" >/dev/null || skip "$tool missing: run scripts/install-deps.sh"
done

src=$(cd "$src" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Re-run inside a private mount namespace (see the top). The overlays' upper directories stay
# in DIR between runs, so a container a killed run left behind can still be removed.
if [ -z "${LM_IT_IMAGE_NS:-}" ]; then
	exec unshare --mount --propagation private env LM_IT_IMAGE_NS=1 bash "$0" \
		--src "$src" --dir "$dir" --python "$python3"
fi
for d in run var/lib var/tmp; do
	n=${d//\//-}
	mkdir -p "$dir/ns/$n.upper" "$dir/ns/$n.work"
	mount -t overlay "lm-it-image-$n" -o \
		"lowerdir=/$d,upperdir=$dir/ns/$n.upper,workdir=$dir/ns/$n.work" "/$d" ||
		fail "cannot overlay /$d for podman's stray state"
done

t_start=$SECONDS
export CONTAINERS_CONF=$dir/containers.conf
export CONTAINERS_STORAGE_CONF=$dir/storage.conf
export TMPDIR=$dir/tmp
mkdir -p "$dir/tmp" "$dir/storage" "$dir/runroot" "$dir/logs" "$dir/cni"

# runc, not crun: crun refuses this machines' hybrid cgroup layout. Podman's default ulimits
# ask for more open files than the hard limit allows here. cgroupfs: no systemd to ask.
# File locks and tmp_dir in DIR, not /dev/shm/libpod_lock and /run/libpod; CNI's lock file too
# (the containers use the host's network, no CNI network). No event log (journald). Container
# output in a plain file the test reads.
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
nofile=$(( hard_nofile < 1048576 ? hard_nofile : 1048576 ))
cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
lock_type = "file"
tmp_dir = "$dir/tmp/libpod"
image_copy_tmp_dir = "$dir/tmp"

[network]
network_backend = "cni"
network_config_dir = "$dir/cni"
EOF
cat > "$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
EOF

cid="" sh_pid=""
cleanup() {
	local rc=$?

	[ -n "$sh_pid" ] && kill "$sh_pid" 2>/dev/null
	if [ -n "$cid" ]; then
		timeout 60 podman stop -t 10 "$cid" >/dev/null 2>&1 || true
		timeout 60 podman rm -f "$cid" >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT

# step NAME CMD...: runs CMD with its output in DIR/logs/NAME.log, prints how long it took.
step() {
	local name=$1 t0=$SECONDS
	shift
	if ! "$@" > "$dir/logs/$name.log" 2>&1; then
		tail -n 40 "$dir/logs/$name.log" >&2
		fail "$name failed (log: $dir/logs/$name.log)"
	fi
	echo "it_image: $name: $((SECONDS - t0)) s"
}

# Containers a killed run left behind (this storage holds only the test's own).
timeout 120 podman rm -f --all >/dev/null 2>&1 || true

# The base image: Debian 12 minbase from the host's mirror, with the host's apt sources and the
# apt settings about fetching (proxies, validity checks), so apt-get in the image reaches the
# same mirror the host uses. Runs under `step`, where set -e does not apply: each command that
# matters says `|| return`, and the tarball appears only once whole.
make_rootfs() {
	local rootfs=$dir/rootfs.tmp mirror http_proxy="" f key

	rm -rf "$rootfs" "$dir/debian-12.tar.tmp" || return
	# shellcheck disable=SC2016 # $(REPO_URI) is apt's placeholder, not the shell's
	mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Release: bookworm' \
		'Identifier: Packages' 'Component: main' | head -n 1)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian/
	eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
	export http_proxy
	timeout 300 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" || return

	rm -f "$rootfs/etc/apt/sources.list"
	if [ -e /etc/apt/sources.list ]; then
		cp /etc/apt/sources.list "$rootfs/etc/apt/" || return
	fi
	for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		if [ -e "$f" ]; then
			cp "$f" "$rootfs/etc/apt/sources.list.d/" || return
		fi
	done
	for f in /etc/apt/apt.conf.d/* /etc/apt/auth.conf.d/*; do
		if [ -f "$f" ] && grep -qi 'acquire' "$f"; then
			cp "$f" "$rootfs$f" || return
		fi
	done
	# Keys: apt's own places, and the files sources name (Signed-By, signed-by=).
	for key in /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/* /etc/apt/keyrings/* \
			$(sed -n 's/^Signed-By: *\(\/.*\)/\1/p; s/.*signed-by=\([^] ]*\).*/\1/p' \
			"$rootfs"/etc/apt/sources.list "$rootfs"/etc/apt/sources.list.d/* \
			2>/dev/null | sort -u); do
		if [ -f "$key" ] && [ ! -e "$rootfs$key" ]; then
			mkdir -p "$rootfs$(dirname "$key")" && cp "$key" "$rootfs$key" || return
		fi
	done
	# What a container engine provides at run time, and apt's caches.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs/etc/resolv.conf" || return
	: > "$rootfs/etc/hostname" || return
	tar -C "$rootfs" --numeric-owner -cf "$dir/debian-12.tar.tmp" . || return
	mv "$dir/debian-12.tar.tmp" "$dir/debian-12.tar" || return
	rm -rf "$rootfs"
}
if [ ! -s "$dir/debian-12.tar" ]; then
	step debootstrap make_rootfs
fi
if ! podman image exists localhost/debian:12; then
	step import timeout 120 podman import "$dir/debian-12.tar" localhost/debian:12
fi

# The deps stage is tagged on its own, so that pruning the build stage's layers (new with every
# source change) keeps the packages' layer for the next run.
step build_deps timeout 600 podman build --pull=never --network host --target deps \
	-t localhost/lifemon-deps:test "$src"
step build timeout 600 podman build --pull=never --network host -t localhost/lifemon:test "$src"
timeout 120 podman image prune -f >/dev/null

# Every shared library of the binary resolves inside the image.
ldd_out=$(podman run --rm --network none --entrypoint ldd localhost/lifemon:test \
	/usr/local/bin/lifemon) || fail "ldd in the image failed"
if grep 'not found' <<< "$ldd_out"; then
	fail "the image lacks shared libraries lifemon needs"
fi

# A host process with an argument nobody else uses, exiting with 7, in this script's cgroup (v2
# path; none on a host without the unified hierarchy).
cgroup=$(sed -n 's/^0:://p' /proc/self/cgroup)

# k8s-file lines: "TIME stdout F JSON". The EXEC names the marker; the EXIT of the same process
# (key) has exit_code 7. Exit status 3: not (yet) both.
check_events() {
	"$python3" - "$out" "$marker" "$sh_pid" "$cgroup" <<'EOF'
import json, sys
path, marker, pid, cgroup = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
key = None
ok = False
with open(path, errors="replace") as f:
    for line in f:
        parts = line.rstrip("\n").split(" ", 3)
        if len(parts) < 4 or parts[1] != "stdout" or not parts[3].startswith("{"):
            continue
        ev = json.loads(parts[3])
        if ev.get("type") == "EXEC" and ev.get("args") == ["/bin/sh", "-c", "exit 7", marker]:
            if ev["pid"] != pid:
                sys.exit(f"EXEC of {marker} has pid {ev['pid']}, the host says {pid}")
            key = ev["key"]
            if cgroup and ev.get("cgroup") != cgroup:
                sys.exit(f"EXEC of {marker} has cgroup {ev.get('cgroup')}, the host says {cgroup}")
        elif key and ev.get("type") == "EXIT" and ev.get("key") == key:
            if ev["exit_code"] != 7:
                sys.exit(f"EXIT of {marker} has exit_code {ev['exit_code']}, not 7")
            ok = True
sys.exit(0 if ok else 3)
EOF
}

# run_image NAME PODMAN_FLAG... -- LIFEMON_ARG...: runs the image in the background with the
# README's flags (the host's cgroup hierarchies: cgroup paths; --network host: the listen
# address is the host's) plus PODMAN_FLAGs, and checks what it must do. The container's output
# is DIR/logs/NAME.log.
run_image() {
	local name=$1 flags=() port t0 deadline rc code

	shift
	while [ "$1" != -- ]; do
		flags+=("$1")
		shift
	done
	shift
	port=$("$python3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); \
print(s.getsockname()[1])')
	out=$dir/logs/$name.log
	rm -f "$out"
	t0=$SECONDS
	cid=$(podman run -d "${flags[@]}" --network host \
		-v /sys/fs/cgroup:/sys/fs/cgroup:ro --log-opt "path=$out" localhost/lifemon:test \
		--listen "127.0.0.1:$port" --stdout "$@") || fail "$name: podman run failed"

	deadline=$((SECONDS + 60))
	until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
		if [ "$(podman inspect --format '{{.State.Running}}' "$cid")" != true ]; then
			cat "$out" >&2 || true
			fail "$name: lifemon in the container exited before it was ready"
		fi
		[ $SECONDS -lt $deadline ] || fail "$name: no 200 from /healthz within 60 s"
		sleep 0.2
	done

	marker=lm-it-image-$$-$RANDOM
	# exec: $! is then the pid of sh itself (bash may fork once more for a plain command).
	(exec /bin/sh -c 'exit 7' "$marker") &
	sh_pid=$!
	wait "$sh_pid" && rc=0 || rc=$?
	[ "$rc" -eq 7 ] || fail "$name: sh -c 'exit 7' exited with $rc"
	deadline=$((SECONDS + 20))
	until check_events; do
		rc=$?
		[ "$rc" -eq 3 ] || fail "$name: bad events in $out"
		[ $SECONDS -lt $deadline ] ||
			fail "$name: no EXEC and EXIT of $marker within 20 s (log: $out)"
		sleep 0.2
	done
	sh_pid_seen=$sh_pid
	sh_pid=""

	curl -sf -o "$dir/logs/$name.metrics" "http://127.0.0.1:$port/metrics" ||
		fail "$name: GET /metrics failed"
	grep -qx 'lifemon_attached 1' "$dir/logs/$name.metrics" ||
		fail "$name: /metrics: lifemon_attached is not 1 ($dir/logs/$name.metrics)"
	grep -Eq '^lifemon_events_total\{type="exec"\} [1-9]' "$dir/logs/$name.metrics" ||
		fail "$name: /metrics: the kernel programs counted no exec"

	# SIGTERM from podman stop: lifemon drains and exits 0.
	timeout 60 podman stop -t 10 "$cid" >/dev/null || fail "$name: podman stop failed"
	code=$(podman inspect --format '{{.State.ExitCode}}' "$cid")
	if [ "$code" != 0 ]; then
		cat "$out" >&2
		fail "$name: lifemon in the container exited with $code"
	fi
	timeout 60 podman rm "$cid" >/dev/null
	cid=""
	echo "it_image: $name: EXEC and EXIT (exit_code 7) of host pid $sh_pid_seen seen," \
		"/healthz and /metrics served, exit status 0: $((SECONDS - t0)) s"
}

run_image privileged --privileged --pid=host --
# The README's alternative to --privileged: the capabilities lifemon needs to load (SYS_ADMIN:
# libbpf reads the kernel modules' BTF by id; BPF, PERFMON) and to drop them (SETPCAP) and
# switch to --user (SETUID, SETGID); no seccomp filter, as the default one refuses io_uring.
# Without --pid=host: the kernel programs report the host's pids whatever namespace lifemon
# runs in, and the events say so.
run_image capabilities --cap-drop=all --cap-add=SYS_ADMIN,BPF,PERFMON,SETPCAP,SETUID,SETGID \
	--security-opt seccomp=unconfined -- --user nobody

echo "it_image: storage $(du -sh "$dir/storage" | cut -f1), base tarball" \
	"$(du -sh "$dir/debian-12.tar" | cut -f1); total $((SECONDS - t_start)) s"
echo "it_image: passed"
