# Familiar entry points over Meson. `make check` and `make dev` install the
# Debian packages they need first, so a fresh Debian 12 machine needs
# nothing else.

BUILD      ?= build
ASAN_BUILD ?= build-asan
VG_BUILD   ?= build-vg
FUZZ_BUILD ?= build-fuzz
STATIC_BUILD ?= build-static
FUZZ_SECONDS ?= 60
MESON_ASAN = -Dbuildtype=debug -Dtorture=true -Db_sanitize=address,undefined -Db_lundef=false \
	     -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all

.PHONY: all build deps check unit e2e valgrind dev bench fuzz static clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dbuildtype=release

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) $(MESON_ASAN)

# Everything: banned-function check, unit tests and end-to-end tests,
# all under AddressSanitizer + UndefinedBehaviorSanitizer. The release
# build is compiled too (not run): its -O3 warnings (-Wnull-dereference)
# differ from the debug build's, and `make dev` uses it.
check: deps $(ASAN_BUILD)/build.ninja $(BUILD)/build.ninja
	scripts/check-banned
	scripts/check-portable
	ninja -C $(BUILD)
	ninja -C $(ASAN_BUILD)
	scripts/run-tests $(ASAN_BUILD)

unit: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	scripts/run-tests $(ASAN_BUILD) --unit-only

e2e: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	scripts/run-tests $(ASAN_BUILD) --e2e-only

$(VG_BUILD)/build.ninja:
	meson setup $(VG_BUILD) -Dbuildtype=debug

valgrind: deps $(VG_BUILD)/build.ninja
	ninja -C $(VG_BUILD)
	scripts/run-tests $(VG_BUILD) --unit-only --valgrind

# The whole fleet on loopback; Ctrl-C stops it.
dev: deps build
	$(BUILD)/src/devopsdefender dev

# The agent's figures are for the release binary when `make static` has
# built it, else for the dynamic build.
bench: deps build
	bench/run $(BUILD)
	bench/cp_memory $(BUILD)
	if [ -x $(STATIC_BUILD)/src/devopsdefender ]; then \
		bench/agent_bench $(BUILD) --bin $(STATIC_BUILD)/src/devopsdefender; \
	else bench/agent_bench $(BUILD); fi
	$(BUILD)/bench/attest_bench
	$(BUILD)/bench/noise_bench
	$(BUILD)/bench/gw_bench
	$(BUILD)/bench/collector_bench --plan distinct
	bench/shell_bench $(BUILD)

# Release: one static binary on musl, its libraries built from Debian's
# source packages (docs/release.md). Not part of `check`: a cold build
# compiles OpenSSL and curl (about 10 minutes here); reruns are quick.
static:
	scripts/build-static $(STATIC_BUILD)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dbuildtype=debug -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(VG_BUILD) $(FUZZ_BUILD)
