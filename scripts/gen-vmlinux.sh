#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Regenerate the pinned bpf/vmlinux/<arch>/vmlinux.h from a running kernel's BTF.
# The build never reads /sys/kernel/btf itself; commit the result on its own.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
case "$(uname -m)" in
x86_64) arch=x86 ;;
aarch64) arch=arm64 ;;
*) echo "gen-vmlinux: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac
btf=${1:-/sys/kernel/btf/vmlinux}
[ -r "$btf" ] || { echo "gen-vmlinux: $btf is not readable: need a kernel with CONFIG_DEBUG_INFO_BTF" >&2; exit 2; }
mkdir -p "$top/bpf/vmlinux/$arch"
bpftool btf dump file "$btf" format c > "$top/bpf/vmlinux/$arch/vmlinux.h.tmp"
mv "$top/bpf/vmlinux/$arch/vmlinux.h.tmp" "$top/bpf/vmlinux/$arch/vmlinux.h"
echo "gen-vmlinux: wrote bpf/vmlinux/$arch/vmlinux.h from $btf ($(uname -r))"
