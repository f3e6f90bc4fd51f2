#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# What a fresh machine sees before CMake runs: scripts/install-deps.sh and `make build` with
# a dpkg-query in PATH that reports some packages missing (libbpf-dev and cmake for the build,
# chromium for the tests), run without root (as nobody when the test is root) so that the
# script must stop with one line naming the missing packages and the command that installs
# them, and CMake never runs. apt-get in PATH fails the test if anything calls it. Works on
# copies of the Makefile and the script in a temporary directory; starts only make and bash.
#   deploy_deps.sh SOURCE_DIR
set -euo pipefail

src=$1
name=deploy_deps
fails=0
fail() {
	echo "FAIL: $name: $*" >&2
	fails=$((fails + 1))
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/src/scripts"
cp "$src/Makefile" "$tmp/src/"
cp "$src/scripts/install-deps.sh" "$tmp/src/scripts/"
cat >"$tmp/bin/dpkg-query" <<'SHIM'
#!/bin/sh
# the package is the last argument
for p; do :; done
case "$p" in libbpf-dev | cmake | chromium) [ -n "$LM_ALL_PRESENT" ] || exit 1 ;; esac
printf 'install ok installed'
SHIM
for t in apt-get cmake; do
	printf '#!/bin/sh\necho "%s must not run" >&2\nexit 99\n' "$t" >"$tmp/bin/$t"
done
chmod 755 "$tmp/bin/"*
as=()
[ "$(id -u)" -eq 0 ] && as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
run() { "${as[@]}" env PATH="$tmp/bin:/usr/bin:/bin" LM_ALL_PRESENT="${all:-}" "$@"; }

# --build: only the build set is missing; one line, exit 2
rc=0
run bash "$tmp/src/scripts/install-deps.sh" --build >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "--build without root: exit $rc, want 2"
[ "$(wc -l <"$tmp/err")" = 1 ] || fail "--build: stderr is not one line: $(cat "$tmp/err")"
grep -q 'libbpf-dev' "$tmp/err" && grep -q 'cmake' "$tmp/err" ||
	fail "--build does not name libbpf-dev and cmake: $(cat "$tmp/err")"
grep -q 'chromium' "$tmp/err" && fail "--build names a test-only package: $(cat "$tmp/err")"
grep -q 'apt-get install --no-install-recommends' "$tmp/err" ||
	fail "--build gives no command that installs them: $(cat "$tmp/err")"
echo "$name: install-deps.sh --build said: $(cat "$tmp/err")"

# everything: the test packages too
rc=0
run bash "$tmp/src/scripts/install-deps.sh" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q chromium "$tmp/err" ||
	fail "install-deps.sh (all): exit $rc, stderr: $(cat "$tmp/err")"

# nothing missing: fine without root
rc=0
all=1 run bash "$tmp/src/scripts/install-deps.sh" --build >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && grep -q 'packages present' "$tmp/out" ||
	fail "all present, without root: exit $rc: $(cat "$tmp/out" "$tmp/err")"

# make build stops at the packages, before CMake's "Package 'libbpf' ... not found"
rc=0
run make -C "$tmp/src" build >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" != 0 ] || fail "make build went on with packages missing"
grep -q '^install-deps: missing .*libbpf-dev' "$tmp/err" ||
	fail "make build did not name the missing packages: $(cat "$tmp/out" "$tmp/err")"
grep -q 'must not run' "$tmp/err" && fail "make build ran apt-get or cmake: $(cat "$tmp/err")"

if [ "$fails" -ne 0 ]; then
	exit 1
fi
echo "$name: ok"
