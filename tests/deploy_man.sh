#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The man page stays true to the binary: regenerates it from LIFEMON --help (scripts/
# gen-man.sh, help2man) and compares with docs/lifemon.8, all but the generator and date
# lines; then checks that groff formats it without a warning. Runs LIFEMON --help and
# --version only.
#   deploy_man.sh SOURCE_DIR LIFEMON
set -euo pipefail

src=$1
lifemon=$2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$src/scripts/gen-man.sh" "$lifemon" "$tmp"
if ! diff -u <(tail -n +3 "$src/docs/lifemon.8") <(tail -n +3 "$tmp") >&2; then
	echo "FAIL: deploy_man: docs/lifemon.8 is not what lifemon --help and docs/lifemon.h2m" \
		"make now (- committed, + generated): run make man and commit it" >&2
	exit 1
fi
out=$(groff -man -Tutf8 -ww -z "$src/docs/lifemon.8" 2>&1)
if [ -n "$out" ]; then
	echo "FAIL: deploy_man: groff warns about docs/lifemon.8: $out" >&2
	exit 1
fi
echo "deploy_man: docs/lifemon.8 matches lifemon --help; groff clean"
