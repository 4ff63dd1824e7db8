# Entry points. `make run` builds and starts the service; `make test` builds and runs every test.
# SPDX-License-Identifier: GPL-3.0-or-later
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-unit test-asan test-fuzz test-image demo format check-format bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DWA_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@scripts/run.sh $(BUILD)

# Everything CI runs: warnings-as-errors build with unit + interop tests, the unit suite again
# under ASan+UBSan (with the fuzz corpora replayed), each fuzz target for WA_FUZZ_SECONDS, format.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE interop
	@# Interop tests drive real Baileys clients with timeouts: one at a time, so that they do not
	@# starve each other on a 2-core machine; a test that fails is run once more (and both runs
	@# are printed), as a failure that does not repeat is load, not behaviour.
	@cd $(BUILD) && ctest --output-on-failure -j1 -L interop --repeat until-pass:2
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory check-format

test-asan: deps
	@cmake -S . -B build-asan -DWA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ctest --output-on-failure -j$(JOBS) -L unit

test-fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DWA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@cd build-fuzz && ctest --output-on-failure -j$(JOBS) -L fuzz

check-format:
	@files=$$(git ls-files '*.c' '*.h' | grep -v '\.pb-c\.'); \
	  clang-format --dry-run --Werror $$files && echo "format: ok"

format:
	@git ls-files '*.c' '*.h' | grep -v '\.pb-c\.' | xargs clang-format -i

# wasim + wagate: create a session, pair it with the simulated phone, print each step.
demo: build
	@scripts/demo.sh $(BUILD)

# The runtime image (deploy/Dockerfile) rebuilt in a Debian 12 chroot and run (root, debootstrap).
test-image: build
	@scripts/test-image.sh $(BUILD)

bench: build
	@scripts/bench.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz
