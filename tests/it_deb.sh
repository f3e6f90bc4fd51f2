#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The Debian package, built and installed for real: `make deb`'s script builds it in the build
# directory; its control data and file list are checked (Depends against the packages that
# own the libraries the packaged binary links, conffiles, modes, the shipped unit and default
# file equal to deploy/'s); then `dpkg -i` on this machine, the installed /usr/bin/lifemon is
# run (--version, and a run that reports an exec of a process the test starts), the installed
# unit passes `systemd-analyze verify`, and `dpkg -r` then `dpkg --purge` leave the machine as
# it was (files, dpkg's database, systemd's enablement state). Refuses to run on a machine
# where some other lifemon is installed. Starts lifemon and dpkg, stops lifemon by pid.
# Root only: without root it skips (exit 77), or fails with CI=true.
#   it_deb.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
work=$2/deb
name=it_deb
fails=0
installed=0
lm_pid=

fail() {
	echo "FAIL: $name: $*" >&2
	fails=$((fails + 1))
}

die() {
	fail "$*"
	exit 1
}

skip() {
	[ "${CI:-}" = true ] && die "$1 (CI=true: not skipped)"
	echo "SKIP: $name: $1" >&2
	exit 77
}

cleanup() {
	if [ -n "$lm_pid" ] && kill -0 "$lm_pid" 2>/dev/null; then
		kill -KILL "$lm_pid" 2>/dev/null || true
	fi
	if [ "$installed" = 1 ]; then
		echo "$name: purging the package it installed" >&2
		dpkg --purge lifemon >/dev/null 2>&1 || echo "$name: dpkg --purge lifemon failed" >&2
	fi
}
trap cleanup EXIT
# set -e ends the test at an unexpected failure: say where
trap 'echo "FAIL: $name: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, and lifemon loads BPF programs)"
[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF at /sys/kernel/btf/vmlinux"

# the package's paths, and where dpkg and systemd keep state about it
files=(/usr/bin/lifemon /lib/systemd/system/lifemon.service /etc/default/lifemon
	/usr/share/man/man8/lifemon.8.gz /usr/share/doc/lifemon/README.md
	/usr/share/doc/lifemon/copyright)
status=$(dpkg-query -W -f='${db:Status-Abbrev}' lifemon 2>/dev/null || true)
case "$status" in
"" | "un "*) ;;
*) die "a lifemon package is already known to dpkg (status '$status'), not installed by this" \
	"test: remove it yourself (dpkg --purge lifemon) to run it_deb" ;;
esac
for f in "${files[@]}"; do
	[ ! -e "$f" ] || die "$f exists but no lifemon package is installed: dpkg -i would" \
		"overwrite it; move it away to run it_deb"
done

state() {
	for f in "${files[@]}" /usr/share/doc/lifemon /var/log/lifemon; do
		[ -e "$f" ] && echo "present $f"
	done
	ls /var/lib/dpkg/info/ | grep '^lifemon\.' || true
	# the helpers' directories may not exist yet: find then fails, and that is no state
	find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled \
		/var/lib/systemd/deb-systemd-helper-masked -printf '%p -> %l\n' 2>/dev/null | sort ||
		true
}

rm -rf "$work"
mkdir -p "$work"
deb=$("$src/scripts/make-deb.sh" "$work/build" 2>"$work/make-deb.log" | tail -1) ||
	die "make-deb.sh failed: $(tail -5 "$work/make-deb.log")"
echo "$name: built $deb ($(stat -c %s "$deb") bytes)"

# --- control data ---
field() { dpkg-deb -f "$deb" "$1"; }
dpkg-deb -x "$deb" "$work/root"
version=$("$work/root/usr/bin/lifemon" --version | sed -n 's/^lifemon //p')
[ "$(field Package)" = lifemon ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version-1" ] || fail "Version: $(field Version), binary says $version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] ||
	fail "Architecture: $(field Architecture)"
[ "$(field Section)" = admin ] || fail "Section: $(field Section)"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Description)" ] || fail "no Description"

# Depends must name exactly the packages that own the libraries the binary links (NEEDED)
want=$(readelf -d "$work/root/usr/bin/lifemon" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' |
	while read -r so; do
		path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|AArch64/ { print $NF; exit }')
		[ -n "$path" ] || { echo "UNRESOLVED:$so"; continue; }
		# Debian's merged /usr: dpkg knows a library under the path its package ships
		{ dpkg -S "$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null ||
			dpkg -S "${path#/usr}" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null ||
			echo "UNOWNED:$path"; } | head -1 | sed 's/:.*//; s/,.*//'
	done | sort -u)
have=$(field Depends | tr ',' '\n' | sed -E 's/^ *//; s/ .*//; s/:.*//' | sort -u)
[ "$want" = "$have" ] || fail "Depends names {$(echo $have)}, the binary links {$(echo $want)}"
echo "$name: Depends: $(field Depends)"

[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/default/lifemon ] ||
	fail "conffiles: '$(dpkg-deb -I "$deb" conffiles 2>&1)', want /etc/default/lifemon"
dpkg-deb -e "$deb" "$work/control"
for s in postinst prerm postrm; do
	[ -x "$work/control/$s" ] || fail "no executable $s"
	sh -n "$work/control/$s" || fail "$s: not valid sh"
done

# --- contents: these files and no others, owned by root, with these modes ---
list=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort)
expect=$(printf '%s\n' "-rwxr-xr-x root/root ./usr/bin/lifemon" \
	"-rw-r--r-- root/root ./lib/systemd/system/lifemon.service" \
	"-rw-r--r-- root/root ./etc/default/lifemon" \
	"-rw-r--r-- root/root ./usr/share/man/man8/lifemon.8.gz" \
	"-rw-r--r-- root/root ./usr/share/doc/lifemon/README.md" \
	"-rw-r--r-- root/root ./usr/share/doc/lifemon/copyright" | sort)
if [ "$list" != "$expect" ]; then
	fail "contents differ from the expected list:"
	diff <(echo "$expect") <(echo "$list") | sed 's/^/    /' >&2 || true
fi
cmp -s "$work/root/lib/systemd/system/lifemon.service" "$src/deploy/systemd/lifemon.service" ||
	fail "the packaged unit is not deploy/systemd/lifemon.service"
cmp -s "$work/root/etc/default/lifemon" "$src/deploy/default/lifemon" ||
	fail "the packaged /etc/default/lifemon is not deploy/default/lifemon"
zcat "$work/root/usr/share/man/man8/lifemon.8.gz" | cmp -s - "$src/docs/lifemon.8" ||
	fail "the packaged man page is not docs/lifemon.8"
head -1 "$work/root/usr/share/doc/lifemon/copyright" |
	grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
	fail "copyright is not in Debian's machine-readable format"
grep -q '^ *GNU GENERAL PUBLIC LICENSE' "$work/root/usr/share/doc/lifemon/copyright" ||
	fail "copyright does not carry the licence text"
readelf -S "$work/root/usr/bin/lifemon" | grep -q '\.debug_info' && fail "binary not stripped"

# --- install for real ---
before=$(state)
installed=1
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || die "dpkg -i failed: $(tail -5 "$work/dpkg-i.log")"
status=$(dpkg-query -W -f='${db:Status-Abbrev}' lifemon)
[ "$status" = "ii " ] || fail "after dpkg -i, status '$status'"
for f in "${files[@]}"; do
	dpkg -S "$f" >/dev/null 2>&1 || fail "dpkg does not list $f as lifemon's"
done
out=$(/usr/bin/lifemon --version) || fail "/usr/bin/lifemon --version failed"
[ "$out" = "lifemon $version" ] || fail "/usr/bin/lifemon --version: '$out'"
[ "$(man -w lifemon 2>/dev/null)" = /usr/share/man/man8/lifemon.8.gz ] ||
	fail "man -w lifemon: '$(man -w lifemon 2>&1)'"
out=$(systemd-analyze verify /lib/systemd/system/lifemon.service 2>&1) ||
	fail "systemd-analyze verify of the installed unit failed"
[ -z "$out" ] || fail "systemd-analyze verify of the installed unit said: $out"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
/usr/bin/lifemon --listen "127.0.0.1:$port" --stdout >"$work/stdout" 2>"$work/stderr" &
lm_pid=$!
for i in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	kill -0 "$lm_pid" 2>/dev/null || break
	sleep 0.1
done
marker=lm-it-deb-$$-$RANDOM
/bin/sh -c 'exit 0' "$marker"
seen=0
for i in $(seq 100); do
	if grep -q "\"type\":\"EXEC\".*\"$marker\"" "$work/stdout"; then
		seen=1
		break
	fi
	sleep 0.1
done
[ "$seen" = 1 ] ||
	fail "the installed lifemon reported no EXEC of $marker: $(tail -3 "$work/stderr")"
rc=0
kill -TERM "$lm_pid"
wait "$lm_pid" || rc=$?
lm_pid=
[ "$rc" = 0 ] || fail "the installed lifemon exited $rc on SIGTERM: $(tail -3 "$work/stderr")"
echo "$name: installed /usr/bin/lifemon $version ran: EXEC of $marker seen, exit $rc"

# --- remove keeps the conffile, purge removes everything ---
dpkg -r lifemon >"$work/dpkg-r.log" 2>&1 || fail "dpkg -r failed: $(tail -5 "$work/dpkg-r.log")"
status=$(dpkg-query -W -f='${db:Status-Abbrev}' lifemon 2>/dev/null || true)
[ "$status" = "rc " ] || fail "after dpkg -r, status '$status', want rc (conffiles kept)"
[ -f /etc/default/lifemon ] || fail "dpkg -r removed the conffile /etc/default/lifemon"
[ ! -e /usr/bin/lifemon ] || fail "dpkg -r left /usr/bin/lifemon"
dpkg --purge lifemon >"$work/dpkg-purge.log" 2>&1 ||
	fail "dpkg --purge failed: $(tail -5 "$work/dpkg-purge.log")"
installed=0
status=$(dpkg-query -W -f='${db:Status-Abbrev}' lifemon 2>/dev/null || true)
case "$status" in
"" | "un "*) ;;
*) fail "after dpkg --purge, status '$status'" ;;
esac
after=$(state)
if [ "$before" != "$after" ]; then
	fail "the machine differs after the purge:"
	diff <(echo "$before") <(echo "$after") | sed 's/^/    /' >&2 || true
fi

if [ "$fails" -ne 0 ]; then
	echo "$name: $fails problem(s)" >&2
	exit 1
fi
echo "$name: ok: built, checked, installed, ran, removed, purged; machine as before"
