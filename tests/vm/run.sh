#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel matrix: boots Debian 12's own kernels (6.1, 6.1 PREEMPT_RT and the 6.12 backport,
# named through the meta packages so the matrix follows kernel updates) in qemu (TCG, 2 vCPUs)
# with an initramfs holding this build's lifemon, tests/vm/init.sh as /init, vm_work and
# vm_check, and reads each guest's verdict off its serial console. Kernels come from
# `apt-get download` and only ./boot/vmlinuz-* is unpacked, into DIR/kernels: nothing is
# installed on the host. Starts one qemu at a time under `timeout` (which kills it), nothing
# else. Exit status: 0 all kernels passed, 1 a check failed, 77 skipped (not root, CI unset).
#
# usage: run.sh --lifemon BIN --work BIN --check BIN --dir DIR [--storm PxTxR] [--it BIN]...
#               [--kernels META...]
# Each --it BIN (an integration test, tests/it_*.c) also runs inside every guest, with CI=true.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lifemon="" work="" check="" dir="" storm=200x16x4
its=()
metas=(linux-image-amd64 linux-image-rt-amd64 linux-image-6.12-amd64)
vm_timeout=${LM_VM_TIMEOUT:-240} # seconds per guest, boot to power-off

while [ $# -gt 0 ]; do
	case "$1" in
	--lifemon) lifemon=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	--check) check=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--storm) storm=$2; shift 2 ;;
	--it) its+=("$2"); shift 2 ;;
	--kernels) shift; metas=("$@"); break ;;
	*) echo "usage: $0 --lifemon BIN --work BIN --check BIN --dir DIR [--storm PxTxR]" \
		"[--it BIN]... [--kernels META...]" >&2; exit 2 ;;
	esac
done
if [ -z "$lifemon" ] || [ -z "$work" ] || [ -z "$check" ] || [ -z "$dir" ]; then
	echo "$0: --lifemon, --work, --check and --dir are required" >&2
	exit 2
fi

# Missing preconditions skip loudly, or fail under CI (as tests/it_util.h does).
skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: vm_kernels: $*" >&2
		exit 1
	fi
	echo "SKIP: vm_kernels: $*" >&2
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (device nodes in the initramfs, apt-get download)"
for tool in qemu-system-x86_64 cpio gzip apt-get apt-cache dpkg-deb ldd timeout; do
	command -v "$tool" >/dev/null || skip "$tool missing: run scripts/install-deps.sh"
done
busybox=/bin/busybox
if ! [ -x $busybox ] || ldd $busybox >/dev/null 2>&1; then
	skip "$busybox is not busybox-static's static binary: run scripts/install-deps.sh"
fi

mkdir -p "$dir/kernels" "$dir/debs" "$dir/logs"

# The real linux-image package behind a meta package, as apt would install it now.
resolve() {
	apt-cache show --no-all-versions "$1" 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
		grep -m1 '^linux-image-' || true
}

# Downloads and unpacks one kernel package's vmlinuz (cached); prints its path.
fetch_kernel() {
	local pkg=$1 deb tmp
	local ver=${pkg#linux-image-}
	local out=$dir/kernels/vmlinuz-$ver

	if [ -s "$out" ]; then
		echo "$out"
		return 0
	fi
	rm -f "$dir/debs/${pkg}"_*.deb
	(cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
	deb=$(ls "$dir/debs/${pkg}"_*.deb)
	tmp=$(mktemp -d "$dir/kernels/unpack.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
	mv "$tmp/boot/vmlinuz-$ver" "$out"
	rm -rf "$tmp" "$deb"
	echo "$out"
}

declare -A kernel_of
pkgs=()
for meta in "${metas[@]}"; do
	pkg=$(resolve "$meta")
	if [ -z "$pkg" ]; then
		echo "vm: no package lists for $meta: apt-get update" >&2
		apt-get -q -o DPkg::Lock::Timeout=300 update >&2
		pkg=$(resolve "$meta")
	fi
	[ -n "$pkg" ] || { echo "FAIL: vm_kernels: apt knows no $meta" >&2; exit 1; }
	kernel_of[$meta]=$(fetch_kernel "$pkg")
	pkgs+=("$pkg")
	echo "vm: $meta -> $pkg (${kernel_of[$meta]})"
done

# --- initramfs: busybox, lifemon, vm_work, vm_check, their libraries and the loader ---
stage=$dir/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,vm,dev,proc,sys,tmp}
cp $busybox "$stage/bin/busybox"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init"
mknod "$stage/dev/console" c 5 1
mknod "$stage/dev/null" c 1 3
copy_lib() {
	mkdir -p "$stage$(dirname "$1")"
	cp -L "$1" "$stage$1"
}
copy_libs_of() {
	# "libx.so => /lib/.../libx.so (0x...)" and the loader's "/lib64/ld-linux... (0x...)"
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
		while read -r lib; do copy_lib "$lib"; done
}
for bin in "$lifemon" "$work" "$check"; do
	cp "$bin" "$stage/vm/"
	copy_libs_of "$bin"
done
mkdir -p "$stage/vm/it"
for bin in "${its[@]}"; do
	cp "$bin" "$stage/vm/it/"
	copy_libs_of "$bin"
done
# it_shutdown looks lifemon's BPF objects up with bpftool, at its usual path.
if [ ${#its[@]} -gt 0 ]; then
	bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
	copy_lib "$bpftool"
	copy_libs_of "$bpftool"
fi
# glibc dlopens libgcc_s for pthread_exit and cancellation; ldd does not list it.
# (awk reads to the end: an early exit would SIGPIPE ldconfig and fail under pipefail)
gcc_s=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !p {p = $NF} END {print p}')
[ -n "$gcc_s" ] && copy_lib "$gcc_s"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initramfs.gz"
echo "vm: initramfs $(du -k "$dir/initramfs.gz" | cut -f1) KiB"

# --- boot each kernel, one at a time ---
required="attach exit_code exit_signal oom_kill events seq time_order exec_before_exit books
shutdown"
rounds=${storm##*x}
for ((r = 1; r <= rounds; r++)); do required+=" storm$r"; done
for bin in "${its[@]}"; do required+=" $(basename "$bin")"; done

failed=0
summary=()
for i in "${!metas[@]}"; do
	meta=${metas[$i]}
	pkg=${pkgs[$i]}
	kernel=${kernel_of[$meta]}
	log=$dir/logs/${pkg#linux-image-}.log
	rm -f "$log".boot*
	t0=$(date +%s%N)
	# A guest that dies before running /init is retried once: under MTTCG a stock kernel
	# sometimes oopses on an int3 while patching its own text in early boot (seen on 6.12,
	# about 1 boot in 5). Once /init ran, nothing is retried.
	boots=0
	while :; do
		boots=$((boots + 1))
		set +e
		timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
			-smp 2 -m 1024 -nodefaults -display none -serial stdio -monitor none \
			-no-reboot -kernel "$kernel" -initrd "$dir/initramfs.gz" \
			-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=3 lmvm.storm=$storm" \
			</dev/null >"$log" 2>&1
		qrc=$?
		set -e
		if grep -aq 'LMVM KERNEL' "$log" || [ $boots -ge 2 ]; then
			break
		fi
		echo "vm: $pkg: guest died before /init (qemu status $qrc), booting again; console tail:"
		tail -n 12 "$log" | sed 's/^/    | /'
		cp "$log" "$log.boot$boots"
	done
	secs=$((($(date +%s%N) - t0) / 1000000000))
	tr -d '\r' <"$log" >"$log.txt" && mv "$log.txt" "$log"

	echo "=== $meta -> $pkg: $(sed -n '/LMVM KERNEL /{s/.*LMVM KERNEL //p;q}' "$log")"
	grep -a 'LMVM \(LOG\|STEP\|PREEMPT\|CPUS\)' "$log" | sed 's/.*LMVM /  /' || true
	bad=0
	grep -a 'LMVM RESULT' "$log" | sed 's/.*LMVM RESULT /  /' || true
	if grep -aq 'LMVM RESULT [^ ]* FAIL' "$log"; then bad=1; fi
	for name in $required; do
		if ! grep -aq "LMVM RESULT $name " "$log"; then
			echo "  $name MISSING (no verdict on the console)"
			bad=1
		fi
	done
	if ! grep -aq 'LMVM DONE' "$log"; then
		echo "  guest did not finish (qemu status $qrc; timeout ${vm_timeout}s); console tail:"
		tail -n 30 "$log" | sed 's/^/    | /'
		bad=1
	fi
	dups=$(grep -ao 'LMVM RESULT storm[0-9]* [A-Z]* procs=[0-9]* duplicates=[0-9]*' "$log" |
		sed 's/.*duplicates=//' | paste -sd/ -)
	verdict=PASS
	[ $bad -eq 0 ] || { verdict=FAIL; failed=1; }
	printf '  %s: %s in %d s (%d boots), storm EXIT duplicates per round: %s (log %s)\n' \
		"$verdict" "$pkg" "$secs" "$boots" "${dups:-none}" "$log"
	summary+=("$(printf '%-4s %-36s %4d s  %d boots  duplicates %s' "$verdict" "$pkg" "$secs" \
		"$boots" "${dups:-?}")")
done

echo "=== kernel matrix (storm ${storm}: procs x threads x rounds)"
printf '  %s\n' "${summary[@]}"
exit $failed
