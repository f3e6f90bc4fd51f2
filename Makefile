# SPDX-License-Identifier: GPL-2.0
# Thin wrapper over CMake presets, so `make run` and `make test` work on a fresh machine.
BUILD_DIR := build
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps build run test test-asan test-tsan test-vm clean

all: build

deps:
	@scripts/install-deps.sh

build:
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
# smoke tests (label bench): they check that each bench tool still runs. So does the image test
# (label image): the image builds its own release binary from the sources.
test-asan:
	cmake --preset asan
	cmake --build build-asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ctest --test-dir build-asan --output-on-failure -LE 'fuzz|vm|bench|long|image'

test-tsan:
	cmake --preset tsan
	cmake --build build-tsan -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan --output-on-failure -LE 'fuzz|vm|bench|long|image'

# Only the kernel matrix: Debian 12's kernels booted in qemu with this build's lifemon inside.
test-vm: deps build
	ctest --test-dir $(BUILD_DIR) -L vm --output-on-failure

clean:
	rm -rf build build-*
