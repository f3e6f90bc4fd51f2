#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Writes lifemon's man page: Debian's help2man turns `LIFEMON --help` and `--version` into
# roff, with the hand-written sections of docs/lifemon.h2m. Runs LIFEMON twice (no root, no
# BPF) through a wrapper in a temporary directory; starts nothing else.
#   gen-man.sh LIFEMON OUT
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 LIFEMON OUT" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v help2man >/dev/null; then
	echo "gen-man: help2man missing: sudo apt-get install --no-install-recommends help2man" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# argp's --help, made the way help2man reads it: an option as wide as argp's option column
# is followed by one space where help2man needs two to find its description, and argp
# indents group headers by one space where help2man wants column 0 to make a subsection.
cat >"$tmp/lifemon" <<'WRAP'
#!/bin/sh
"$LM_GEN_MAN_BIN" "$@" | sed -E 's/^( +(-[^ ,], )?--[a-z-]+(=[^ ]+)?) ([^ ])/\1  \4/
s/^ ([A-Z][^:]*:)$/\1/'
WRAP
chmod 755 "$tmp/lifemon"
# -N: no "see the Texinfo manual" paragraph; lifemon has none.
LM_GEN_MAN_BIN=$(realpath "$1") help2man -N -s 8 -m "System Administration Utilities" \
	-i "$src/docs/lifemon.h2m" -o "$tmp/lifemon.8" "$tmp/lifemon"
# argp repeats the program's one-line summary as the first line of --help's body; NAME
# already says it
sed -i '/^\.SH DESCRIPTION$/,/^\.TP$/{/^lifemon \\fB\\-\\-\\fR /d}' "$tmp/lifemon.8"
mv "$tmp/lifemon.8" "$2"
