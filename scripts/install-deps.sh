#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs what lifemon needs from Debian 12's packages only. Idempotent and non-interactive:
# installs only what is missing. Starts and stops nothing but apt-get.
#   install-deps.sh          everything: build, run, test, benchmark, package (make run, test)
#   install-deps.sh --build  only what `make build`, `make install` and `make deb` need
# Without root, when something is missing, it prints one line naming the packages and the
# command that installs them, and exits 2.
set -euo pipefail

# CMake's configure step checks for the test libraries too (cmocka, jansson, libcrypto), so
# they belong to the build set; build-essential brings dpkg-dev (dpkg-shlibdeps, make deb).
build_pkgs=(
	build-essential cmake make pkg-config clang llvm
	libbpf-dev libelf-dev zlib1g-dev bpftool
	libck-dev libwebsockets-dev liburing-dev libcap-dev libnats-dev
	libcmocka-dev libjansson-dev libssl-dev
)
test_pkgs=(
	# tests
	curl procps util-linux
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
	# the NATS JetStream cluster the nats sink's tests run against
	nats-server
	# deploy tests: the package (dpkg-deb, dpkg-shlibdeps), the unit (systemd-analyze
	# verify, setpriv, strace), the Kubernetes YAML (python3-yaml), the man page (help2man,
	# groff)
	dpkg-dev systemd python3-yaml help2man groff-base man-db strace
	# the Dockerfile's test (tests/it_image.sh): podman on runc (crun refuses hybrid cgroup
	# hosts), and debootstrap for a local debian:12 base image
	podman runc debootstrap
)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
--build) ;;
"") pkgs+=("${test_pkgs[@]}") ;;
*)
	echo "usage: $0 [--build]" >&2
	exit 2
	;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; install them as root:" \
		"sudo apt-get install --no-install-recommends ${missing[*]}" >&2
	exit 2
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
