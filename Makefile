# SPDX-License-Identifier: GPL-2.0
# Thin wrapper over CMake presets, so `make run` and `make test` work on a fresh machine.
BUILD_DIR := build
JOBS ?= $(shell nproc)
ARGS ?=
# make install: where, and under which root (packagers stage into DESTDIR)
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps deps-build build run test test-asan test-tsan test-vm install deb man clean

all: build

# Everything the tests and benchmarks need, or (deps-build) only what building needs: as root
# it installs what is missing; otherwise it names the missing packages in one line and stops.
deps:
	@scripts/install-deps.sh

deps-build:
	@scripts/install-deps.sh --build

build: deps-build
	cmake --preset dev
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: deps build
	$(BUILD_DIR)/lifemon --stdout $(ARGS)

# The whole suite three times: the plain build, ASan+UBSan, TSan (as CI runs it).
test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure
	$(MAKE) --no-print-directory test-asan test-tsan

# Sanitizer builds of lifemon and the modules; the integration tests drive the sanitized binary.
# The fuzz tests run once, in the plain pass: the fuzzers are ASan+UBSan builds themselves. So
# does the kernel matrix (label vm): its guests run the plain build's lifemon. So do the bench
# smoke tests (label bench): they check that each bench tool still runs. So do the deploy tests
# (label deploy): they check the package, unit and manifests, which hold no sanitized code, and
# the image test (label image): the image builds its own release binary from the sources.
# The TSan pass also leaves out the unit tests of single-threaded code (label one_thread).
test-asan:
	cmake --preset asan
	cmake --build build-asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ctest --test-dir build-asan --output-on-failure -LE 'fuzz|vm|bench|long|deploy|image'

test-tsan:
	cmake --preset tsan
	cmake --build build-tsan -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan --output-on-failure -LE 'fuzz|vm|bench|long|deploy|image|one_thread'

# Only the kernel matrix: Debian 12's kernels booted in qemu with this build's lifemon inside.
test-vm: deps build
	ctest --test-dir $(BUILD_DIR) -L vm --output-on-failure

# The release build (no fault injection) installed under $(DESTDIR)$(PREFIX): the binary, man
# page and docs under PREFIX, the systemd unit under PREFIX/lib/systemd/system (/lib/systemd/
# system for /usr) and the arguments file under PREFIX/etc/default (/etc/default for /usr).
install: deps-build
	cmake --preset release -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build build-release -j$(JOBS) --target lifemon
	DESTDIR=$(DESTDIR) cmake --install build-release

# The Debian package, from the release build with prefix /usr: build-deb/lifemon_*.deb.
deb: deps-build
	scripts/make-deb.sh build-deb

# Regenerates docs/lifemon.8 from lifemon --help and docs/lifemon.h2m (test deploy_man checks it).
man: build
	scripts/gen-man.sh $(BUILD_DIR)/lifemon docs/lifemon.8

clean:
	rm -rf build build-*
