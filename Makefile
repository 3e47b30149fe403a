# A thin wrapper over CMake: the two commands from README.md, and a few more.
#   make        build (build/)
#   make test   install missing packages, build, run every test (also under ASan+UBSan,
#               and a short fuzz smoke run)
#   make fuzz   run every fuzz target long (FUZZ_EXECS runs, default 10^7, each)
#   make run    install missing packages, build, start mailsink (SMTP on 127.0.0.1:1025,
#               web UI and API on http://127.0.0.1:8025/)

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all deps build test test-plain test-asan fuzz-smoke fuzz run install clean format

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	$(MAKE) test-plain test-asan fuzz-smoke

test-plain:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSMTPD_SANITIZE=ON -DCMAKE_C_COMPILER=clang
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L sanitize

fuzz-smoke:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSMTPD_FUZZ=ON -DSMTPD_TESTS=OFF -DCMAKE_C_COMPILER=clang
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash tests/fuzz/smoke.sh $(FUZZ_BUILD)

# Long fuzzing: every target for FUZZ_EXECS runs (default 10^7) or FUZZ_MINUTES
# (default 240) each, whichever ends first, corpora kept under
# $(FUZZ_BUILD)/fuzz-long/ between runs; see tests/fuzz/long.sh.
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSMTPD_FUZZ=ON -DSMTPD_TESTS=OFF -DCMAKE_C_COMPILER=clang
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash tests/fuzz/long.sh $(FUZZ_BUILD)

run: deps
	$(MAKE) build
	@echo "mailsink: send mail to 127.0.0.1:1025 (e.g. swaks --server 127.0.0.1:1025 --to you@example.com);"
	@echo "          see it at http://127.0.0.1:8025/ (web UI, Mailpit-compatible API under /api/v1/)"
	@echo "          or with '$(BUILD)/mailsink list' / 'show ID' / 'raw ID'. Ctrl-C stops."
	$(BUILD)/mailsink

install: build
	cmake --install $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
