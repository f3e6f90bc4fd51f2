#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds lifemon's Debian package from this tree: the release build (preset deb: no fault
# injection, prefix /usr) in DIR (default build-deb), then CPack's DEB generator
# (cmake/install.cmake). Prints the package's path last. Starts nothing but the build.
#   make-deb.sh [DIR]
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "${1:-build-deb}")
cd "$src"
cmake --preset deb -B "$dir" >/dev/null
# Only what ships: the package needs lifemon, not the tests and benchmarks (the preset skips
# building everything before install).
cmake --build "$dir" -j"$(nproc)" --target lifemon
rm -f "$dir"/lifemon_*.deb
(cd "$dir" && cpack -G DEB >/dev/null)
deb=("$dir"/lifemon_*.deb)
if [ ${#deb[@]} -ne 1 ] || [ ! -f "${deb[0]}" ]; then
	echo "make-deb: cpack made no single lifemon_*.deb in $dir" >&2
	exit 1
fi
echo "${deb[0]}"
