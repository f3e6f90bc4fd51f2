#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs one libFuzzer target for a bounded time over a scratch copy of its committed seed corpus
# (the repository is never written), keeping crash inputs in ARTIFACT_DIR. Called by ctest
# (tests/fuzz.cmake); also usable by hand.
#
#   run-fuzz.sh FUZZER CORPUS_DIR SECONDS ARTIFACT_DIR [libFuzzer options...]
#   run-fuzz.sh --missing TEST REASON   (no clang/libFuzzer: skip, or fail when CI=true)
#
# Exit: 0 clean, 1 a crash, a failed check or a setup error, 77 skipped (ctest "Not Run").
set -u

if [ "${1:-}" = "--missing" ]; then
	if [ "${CI:-}" = "true" ]; then
		echo "FAIL: ${2:-fuzz}: ${3:-no fuzzer} (CI=true: a missing fuzzer is a failure)" >&2
		exit 1
	fi
	echo "SKIP: ${2:-fuzz}: ${3:-no fuzzer}" >&2
	exit 77
fi
if [ $# -lt 4 ]; then
	echo "usage: $0 FUZZER CORPUS_DIR SECONDS ARTIFACT_DIR [libFuzzer options...]" >&2
	exit 1
fi
fuzzer=$1
corpus=$2
secs=$3
artifacts=$4
shift 4
name=$(basename "$fuzzer")

if [ ! -x "$fuzzer" ]; then
	echo "FAIL: $name: $fuzzer is not built" >&2
	exit 1
fi
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
	echo "FAIL: $name: seed corpus $corpus is missing or empty" >&2
	exit 1
fi
case $secs in
'' | *[!0-9]*)
	echo "FAIL: $name: bad time '$secs'" >&2
	exit 1
	;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/lifemon-fuzz-$name.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
mkdir -p "$work/corpus" "$artifacts" || exit 1
cp "$corpus"/* "$work/corpus/" || exit 1
seeds=$(ls "$work/corpus" | wc -l)

echo "INFO: $name: ${secs}s over $seeds seeds (scratch copy in $work), crashes go to $artifacts/"
# -timeout: one input may take at most 10 s (a hang is a bug); -rss_limit_mb bounds a leak.
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$@" "$work/corpus" >"$work/log" 2>&1
rc=$?
# the summary lines, and everything from a crash report on
grep -a -E '^(INFO: Seed|INFO: Loaded|#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::|==[0-9]+==|SUMMARY|fuzz_|artifact_prefix|Test unit written|    #[0-9]+ )' \
	"$work/log" | tail -n 80
if [ "$rc" -ne 0 ]; then
	echo "FAIL: $name: libFuzzer exited $rc; full log:" >&2
	tail -n 200 "$work/log" >&2
	for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
		[ -e "$f" ] && echo "FAIL: $name: reproduce with: $fuzzer $f" >&2
	done
	exit 1
fi
runs=$(grep -a -E '^stat::number_of_executed_units:' "$work/log" | awk '{print $2}')
echo "PASS: $name: ${runs:-?} inputs in ${secs}s, no failure"
exit 0
