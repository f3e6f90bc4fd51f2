# SPDX-License-Identifier: GPL-2.0
# Thin wrapper over CMake presets, so `make run` and `make test` work on a fresh machine.
BUILD_DIR := build
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps build run test clean

all: build

deps:
	@scripts/install-deps.sh

build:
	cmake --preset dev
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: deps build
	$(BUILD_DIR)/lifemon --stdout $(ARGS)

test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure

clean:
	rm -rf build build-*
