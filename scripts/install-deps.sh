#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs everything lifemon needs to build, run, test and benchmark, from Debian 12's
# packages only. Idempotent and non-interactive: installs only what is missing.
set -euo pipefail

pkgs=(
	# build
	build-essential cmake make pkg-config clang llvm
	libbpf-dev libelf-dev zlib1g-dev bpftool
	libck-dev libwebsockets-dev liburing-dev libcap-dev
	# tests
	libcmocka-dev libjansson-dev libssl-dev curl procps util-linux
	# JSON Schema validation of real output (tests/schema_check.py)
	python3 python3-jsonschema
	# the page's browser test (tests/it_page.py): headless Chromium driven through WebDriver
	chromium chromium-driver python3-selenium
	# libFuzzer and the sanitizer runtimes for clang (fuzz tests)
	libclang-rt-14-dev
	# benchmarks and peers
	bpftrace forkstat hyperfine
	# promtool, to lint /metrics in tests
	prometheus
	# kernel matrix (tests/vm): boot Debian's kernels under qemu with a busybox initramfs
	qemu-system-x86 busybox-static cpio
	# the Dockerfile's test (tests/it_image.sh): podman on runc (crun refuses hybrid cgroup
	# hosts), and debootstrap for a local debian:12 base image
	podman runc debootstrap
)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (apt-get needs it): sudo $0" >&2
	exit 2
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
